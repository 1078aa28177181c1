"""Where an index's shards are fetched from, and how a weights source's kind is told."""

from __future__ import annotations

import pytest

from gasbuild.manifest import SourceSpec
from gasbuild.plan import _source_name, _weights_kind, sibling_url


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://host/m/model.safetensors.index.json", "https://host/m/shard-1.safetensors"),
        ("s3://bucket/a/b/index.json", "s3://bucket/a/b/shard-1.safetensors"),
        ("https://host/m/index.json?download=1", "https://host/m/shard-1.safetensors"),
        # hf:// with the revision after the file is moved to the repo, as HfFileSystem reads it
        (
            "hf://org/repo/sub/model.safetensors.index.json@main",
            "hf://org/repo@main/sub/shard-1.safetensors",
        ),
        ("hf://org/repo@abc/model.bin.index.json", "hf://org/repo@abc/shard-1.safetensors"),
    ],
)
def test_shards_are_fetched_from_beside_their_index(url: str, expected: str) -> None:
    assert sibling_url(url, "shard-1.safetensors") == expected


@pytest.mark.parametrize(
    ("spec", "name", "kind"),
    [
        (SourceSpec(path="w/model.safetensors"), "model.safetensors", "safetensors"),
        (SourceSpec(path="ckpt/last.ckpt"), "last.ckpt", "checkpoint"),
        (SourceSpec(path="pytorch_model.bin"), "pytorch_model.bin", "checkpoint"),
        (SourceSpec(url="hf://org/repo/model.pth@v1"), "model.pth", "checkpoint"),
        (
            SourceSpec(url="https://h/x/model.safetensors.index.json?dl=1"),
            "model.safetensors.index.json",
            "index",
        ),
        (SourceSpec(url="https://h/blob/123"), "123", "safetensors"),  # checked by its header
    ],
)
def test_the_weights_kind_comes_from_the_file_name(spec: SourceSpec, name: str, kind: str) -> None:
    assert _source_name(spec) == name
    assert _weights_kind(spec) == kind
