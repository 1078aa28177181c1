"""Weight conversion: checkpoints and shards to one deterministic safetensors file, safely."""

from __future__ import annotations

import argparse
import builtins
import json
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from safetensors.torch import load_file, save_file

from gasbuild.errors import BuildError
from gasbuild.stages.convert import (
    ConversionError,
    ConvertOptions,
    convert,
    index_shards,
    index_weight_map,
    needs_conversion,
    rewrite_names,
    weights_kind,
)

KEY = "models.image.weights"
NONE = ConvertOptions()


def _state_dict() -> dict[str, torch.Tensor]:
    return {
        "conv.weight": torch.arange(12, dtype=torch.float32).reshape(2, 2, 3),
        "conv.bias": torch.tensor([0.5, -1.5]),
        "bn.num_batches_tracked": torch.tensor(7, dtype=torch.int64),
        "mask": torch.tensor([True, False]),
    }


def _save(obj: Any, path: Path, **kwargs: Any) -> Path:
    torch.save(obj, path, **kwargs)
    return path


def _run(
    files: list[Path], tmp_path: Path, options: ConvertOptions = NONE, **kwargs: Any
) -> tuple[dict[str, torch.Tensor], Any]:
    out = tmp_path / "out" / "model.safetensors"
    result = convert(files, options, out, key=KEY, **kwargs)
    return load_file(out), result


def _fails(files: list[Path], tmp_path: Path, options: ConvertOptions = NONE, **kw: Any) -> str:
    """Convert expecting a ConversionError; return its one-line text, checked to be one line."""
    out = tmp_path / "failed" / "model.safetensors"
    with pytest.raises(ConversionError) as info:
        convert(files, options, out, key=KEY, **kw)
    text = str(info.value)
    assert text.startswith(f"{KEY}: ")
    assert "\n" not in info.value.message and "Traceback" not in text
    assert len(text) < 600, text
    assert not out.exists()
    assert not (out.parent.exists() and list(out.parent.iterdir()))
    return text


def _assert_same(got: dict[str, torch.Tensor], want: dict[str, torch.Tensor]) -> None:
    assert sorted(got) == sorted(want)
    for name, tensor in want.items():
        assert got[name].dtype == tensor.dtype, name
        assert torch.equal(got[name], tensor), name


# ------------------------------------------------------------------------------------------------
# Kinds and options


def test_weights_kind_by_name() -> None:
    assert weights_kind("model.safetensors.index.json") == "index"
    assert weights_kind("pytorch_model.bin.index.json") == "index"
    assert weights_kind("model.SafeTensors") == "safetensors"
    for suffix in (".pt", ".pth", ".bin", ".ckpt"):
        assert weights_kind(f"m{suffix}") == "checkpoint"
    with pytest.raises(ConversionError, match="not a weights file"):
        weights_kind("model.onnx")


def test_needs_conversion() -> None:
    assert needs_conversion("m.pt", NONE)
    assert needs_conversion("model.safetensors.index.json", NONE)
    assert not needs_conversion("model.safetensors", NONE)
    assert needs_conversion("model.safetensors", ConvertOptions(dtype="float16"))
    assert needs_conversion("model.safetensors", ConvertOptions(strip_prefix=("module.",)))


def test_params_are_json_and_alias_free() -> None:
    options = ConvertOptions("model", ("module.",), (("a.", "b."),), "fp16")
    params = options.params()
    assert json.loads(json.dumps(params)) == params
    assert params["dtype"] == "float16"
    assert params == ConvertOptions("model", ("module.",), (("a.", "b."),), "float16").params()
    assert NONE.params() != params


def test_options_refuse_a_bare_string_prefix() -> None:
    with pytest.raises(TypeError):
        ConvertOptions(strip_prefix="module.")  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------------
# Plain checkpoints


@pytest.mark.parametrize("suffix", [".pt", ".pth", ".bin", ".ckpt"])
def test_plain_state_dict(tmp_path: Path, suffix: str) -> None:
    sd = _state_dict()
    got, result = _run([_save(sd, tmp_path / f"model{suffix}")], tmp_path)
    _assert_same(got, sd)
    assert (result.tensors, result.renamed, result.cast, result.unshared) == (4, 0, 0, 0)
    assert result.dropped == ()


def test_legacy_non_zip_checkpoint(tmp_path: Path) -> None:
    sd = _state_dict()
    path = _save(sd, tmp_path / "old.pth", _use_new_zipfile_serialization=False)
    got, _ = _run([path], tmp_path)
    _assert_same(got, sd)


def test_format_is_read_from_content_not_name(tmp_path: Path) -> None:
    """Fetched files sit in the cache under their digest, with no suffix."""
    sd = _state_dict()
    ckpt = _save(sd, tmp_path / "ab12")
    save_file(sd, tmp_path / "cd34")
    _assert_same(_run([ckpt], tmp_path)[0], sd)
    _assert_same(_run([tmp_path / "cd34"], tmp_path, ConvertOptions(dtype="float32"))[0], sd)


def test_parameters_and_ordered_dicts(tmp_path: Path) -> None:
    model = torch.nn.Linear(3, 2)
    path = _save(model.state_dict(), tmp_path / "lin.pt")
    got, _ = _run([path], tmp_path)
    _assert_same(got, {k: v.detach() for k, v in model.state_dict().items()})
    params = {k: v for k, v in model.named_parameters()}  # nn.Parameter values
    got, _ = _run([_save(params, tmp_path / "params.pt")], tmp_path)
    assert torch.equal(got["weight"], model.weight.detach())


def test_labels_name_files_in_messages(tmp_path: Path) -> None:
    path = tmp_path / "objects" / "deadbeef"
    path.parent.mkdir()
    path.write_bytes(b"")
    text = _fails([path], tmp_path, labels=["model.pt"])
    assert "model.pt" in text and "deadbeef" not in text


# ------------------------------------------------------------------------------------------------
# Finding the state dict


def test_lightning_checkpoint_with_state_dict_key(tmp_path: Path) -> None:
    sd = _state_dict()
    ckpt = {"state_dict": sd, "epoch": 3, "global_step": 120, "optimizer_states": [{}]}
    path = _save(ckpt, tmp_path / "last.ckpt")
    got, _ = _run([path], tmp_path, ConvertOptions(state_dict_key="state_dict"))
    _assert_same(got, sd)


def test_missing_state_dict_key_is_suggested(tmp_path: Path) -> None:
    path = _save({"state_dict": _state_dict(), "epoch": 3}, tmp_path / "last.ckpt")
    text = _fails([path], tmp_path)
    assert 'state_dict_key = "state_dict"' in text


def test_suggestion_prefers_known_names_and_lists_others(tmp_path: Path) -> None:
    ckpt = {"aux": {"x": torch.ones(1)}, "ema": _state_dict(), "model": _state_dict()}
    text = _fails([_save(ckpt, tmp_path / "c.pt")], tmp_path)
    assert 'state_dict_key = "model"' in text
    assert "'ema'" in text and "'aux'" in text


def test_dotted_state_dict_key(tmp_path: Path) -> None:
    sd = _state_dict()
    ckpt = {"model": {"ema": sd, "step": 5}, "args": {"lr": 0.1}}
    path = _save(ckpt, tmp_path / "c.pt")
    got, _ = _run([path], tmp_path, ConvertOptions(state_dict_key="model.ema"))
    _assert_same(got, sd)
    text = _fails([path], tmp_path)
    assert 'state_dict_key = "model.ema"' in text


def test_state_dict_key_that_itself_has_a_dot(tmp_path: Path) -> None:
    sd = _state_dict()
    path = _save({"model.ema": sd}, tmp_path / "c.pt")
    got, _ = _run([path], tmp_path, ConvertOptions(state_dict_key="model.ema"))
    _assert_same(got, sd)


def test_wrong_state_dict_key_lists_available_keys(tmp_path: Path) -> None:
    path = _save({"state_dict": _state_dict(), "epoch": 3}, tmp_path / "c.ckpt")
    text = _fails([path], tmp_path, ConvertOptions(state_dict_key="model"))
    assert "no 'model' in the checkpoint" in text
    assert "'state_dict', 'epoch'" in text
    text = _fails([path], tmp_path, ConvertOptions(state_dict_key="state_dict.ema"))
    assert "no 'ema' in 'state_dict'" in text
    text = _fails([path], tmp_path, ConvertOptions(state_dict_key="epoch.x"))
    assert "'epoch' is an int, not a dict" in text


def test_non_tensor_values_are_named(tmp_path: Path) -> None:
    ckpt = {"w": torch.ones(2), "epoch": 3, "name": "x", "cfg": {"a": 1}, "lr": 0.1}
    text = _fails([_save(ckpt, tmp_path / "c.pt")], tmp_path)
    assert "'epoch' (int), 'name' (str), 'cfg' (dict), ... (4 in all)" in text
    inner = {"model": {"w": torch.ones(2), "step": 1}}
    path = _save(inner, tmp_path / "d.pt")
    text = _fails([path], tmp_path, ConvertOptions(state_dict_key="model"))
    assert "'step' (int)" in text and "state_dict_key may point at the wrong entry" in text


@pytest.mark.parametrize(
    ("obj", "words"),
    [
        (torch.ones(3), "a single tensor"),
        ([torch.ones(3)], "a list"),
        ({"epoch": 3, "lr": 0.1}, "a dict with no tensors (keys: 'epoch', 'lr')"),
        ({}, "an empty dict"),
    ],
)
def test_what_was_found_instead(tmp_path: Path, obj: Any, words: str) -> None:
    text = _fails([_save(obj, tmp_path / "c.pt")], tmp_path)
    assert words in text


def test_non_string_names(tmp_path: Path) -> None:
    text = _fails([_save({0: torch.ones(1), "a": torch.ones(1)}, tmp_path / "c.pt")], tmp_path)
    assert "has non-string names: 0" in text


def test_empty_state_dict_under_key(tmp_path: Path) -> None:
    path = _save({"state_dict": {}}, tmp_path / "c.pt")
    text = _fails([path], tmp_path, ConvertOptions(state_dict_key="state_dict"))
    assert "empty" in text


def test_state_dict_key_on_safetensors_is_an_error(tmp_path: Path) -> None:
    save_file(_state_dict(), tmp_path / "m.safetensors")
    text = _fails([tmp_path / "m.safetensors"], tmp_path, ConvertOptions(state_dict_key="model"))
    assert "safetensors" in text


# ------------------------------------------------------------------------------------------------
# Names


def test_strip_dataparallel_prefix(tmp_path: Path) -> None:
    sd = _state_dict()
    path = _save({f"module.{k}": v for k, v in sd.items()}, tmp_path / "dp.pth")
    got, result = _run([path], tmp_path, ConvertOptions(strip_prefix=("module.",)))
    _assert_same(got, sd)
    assert result.renamed == 4


def test_rename_prefixes(tmp_path: Path) -> None:
    sd = {"encoder.a": torch.ones(1), "head.b": torch.zeros(1), "other": torch.ones(2)}
    options = ConvertOptions(
        strip_prefix=("module.",), rename=(("encoder.", "backbone."), ("head.", "fc."))
    )
    path = _save({f"module.{k}": v for k, v in sd.items()}, tmp_path / "m.pt")
    got, result = _run([path], tmp_path, options)
    assert sorted(got) == ["backbone.a", "fc.b", "other"]
    assert result.renamed == 3


def test_rename_safetensors_input(tmp_path: Path) -> None:
    save_file({"a.w": torch.ones(2)}, tmp_path / "m.safetensors")
    got, _ = _run([tmp_path / "m.safetensors"], tmp_path, ConvertOptions(rename=(("a.", "b."),)))
    assert list(got) == ["b.w"]


def test_rewrite_names_rules() -> None:
    names = ["module.model.fc.w", "module.model.fc.b", "module.head.w"]
    options = ConvertOptions(strip_prefix=("module.", "model."), rename=(("", "net."),))
    assert rewrite_names(names, options, key=KEY) == {
        "module.model.fc.w": "net.fc.w",
        "module.model.fc.b": "net.fc.b",
        "module.head.w": "net.head.w",
    }
    first_match = ConvertOptions(rename=(("a.", "x."), ("a.b", "y")))
    with pytest.raises(ConversionError, match="earlier rename takes every name"):
        rewrite_names(["a.b"], first_match, key=KEY)
    with pytest.raises(ConversionError, match="empty prefix"):
        rewrite_names(["a"], ConvertOptions(strip_prefix=("",)), key=KEY)


def test_collision_is_an_error() -> None:
    with pytest.raises(ConversionError) as info:
        rewrite_names(["module.w", "w"], ConvertOptions(strip_prefix=("module.",)), key=KEY)
    assert "'module.w' and 'w' would both be named 'w'" in str(info.value)
    with pytest.raises(ConversionError) as info:
        rewrite_names(["a.w", "b.w"], ConvertOptions(rename=(("a.", "x."), ("b.", "x."))), key=KEY)
    assert "'a.w' and 'b.w' would both be named 'x.w'" in str(info.value)


def test_unmatched_prefix_is_an_error_that_shows_names(tmp_path: Path) -> None:
    names = [f"layer{i}.w" for i in range(5)]
    with pytest.raises(ConversionError) as info:
        rewrite_names(names, ConvertOptions(strip_prefix=("modul.",)), key=KEY)
    text = str(info.value)
    assert text.startswith(f"{KEY}: strip_prefix 'modul.' matches no tensor name")
    assert "'layer0.w', 'layer1.w', 'layer2.w', ... (5 in all)" in text
    with pytest.raises(ConversionError) as info:
        rewrite_names(names, ConvertOptions(rename=(("enc.", "x."),)), key=KEY)
    assert "rename 'enc.' -> 'x.' matches no tensor name" in str(info.value)
    path = _save({"w": torch.ones(1)}, tmp_path / "m.pt")
    _fails([path], tmp_path, ConvertOptions(strip_prefix=("module.",)))


_name = st.text(alphabet="ab._", min_size=1, max_size=6)


@given(
    prefix=st.text(alphabet="abm.", min_size=1, max_size=4),
    suffixes=st.lists(_name, min_size=1, max_size=8, unique=True),
)
def test_strip_then_readd_round_trips(prefix: str, suffixes: list[str]) -> None:
    names = [prefix + s for s in suffixes]
    options = ConvertOptions(strip_prefix=(prefix,), rename=(("", prefix),))
    assert rewrite_names(names, options, key=KEY) == {n: n for n in names}
    stripped = rewrite_names(names, ConvertOptions(strip_prefix=(prefix,)), key=KEY)
    assert list(stripped.values()) == suffixes


@given(
    names=st.lists(_name, min_size=1, max_size=8),
    strip=st.lists(st.text(alphabet="ab.", min_size=1, max_size=3), max_size=2),
    rename=st.lists(st.tuples(st.text(alphabet="ab.", max_size=3), _name), max_size=2),
)
def test_rewrite_is_injective_or_refuses(
    names: list[str], strip: list[str], rename: list[tuple[str, str]]
) -> None:
    options = ConvertOptions(strip_prefix=tuple(strip), rename=tuple(rename))
    try:
        mapping = rewrite_names(names, options, key=KEY)
    except ConversionError as exc:
        assert str(exc).startswith(f"{KEY}: ")
        return
    assert list(mapping) == list(dict.fromkeys(names))
    assert len(set(mapping.values())) == len(mapping)
    if not strip and not rename:
        assert all(old == new for old, new in mapping.items())


# ------------------------------------------------------------------------------------------------
# Tensors


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_dtype_cast_leaves_integers_alone(tmp_path: Path, dtype: str) -> None:
    sd = _state_dict() | {"d": torch.ones(2, dtype=torch.float64)}
    path = _save(sd, tmp_path / "m.pt")
    got, result = _run([path], tmp_path, ConvertOptions(dtype=dtype))
    target = getattr(torch, dtype)
    assert got["conv.weight"].dtype == target and got["d"].dtype == target
    assert torch.equal(got["conv.weight"], sd["conv.weight"].to(target))
    assert got["bn.num_batches_tracked"].dtype == torch.int64
    assert got["mask"].dtype == torch.bool
    assert result.cast == 3


def test_cast_to_the_same_dtype_counts_nothing(tmp_path: Path) -> None:
    path = _save(_state_dict(), tmp_path / "m.pt")
    _, result = _run([path], tmp_path, ConvertOptions(dtype="float32"))
    assert result.cast == 0


def test_unknown_dtype(tmp_path: Path) -> None:
    path = _save(_state_dict(), tmp_path / "m.pt")
    assert "dtype 'int8'" in _fails([path], tmp_path, ConvertOptions(dtype="int8"))


def test_tied_weights_keep_both_names(tmp_path: Path) -> None:
    emb = torch.randn(5, 3)
    sd = {"embed.weight": emb, "lm_head.weight": emb, "bias": torch.zeros(5)}
    path = _save(sd, tmp_path / "tied.pt")
    loaded = torch.load(path, weights_only=True)
    assert loaded["embed.weight"].data_ptr() == loaded["lm_head.weight"].data_ptr()
    got, result = _run([path], tmp_path)
    assert sorted(got) == ["bias", "embed.weight", "lm_head.weight"]
    assert torch.equal(got["embed.weight"], emb) and torch.equal(got["lm_head.weight"], emb)
    assert result.unshared == 1


def test_views_and_non_contiguous_tensors(tmp_path: Path) -> None:
    qkv = torch.arange(24, dtype=torch.float32).reshape(6, 4)
    sd = {"qkv": qkv, "q": qkv[:2], "k_t": qkv[2:4].t(), "lone_t": torch.randn(3, 2).t()}
    assert not sd["k_t"].is_contiguous()
    got, result = _run([_save(sd, tmp_path / "views.pt")], tmp_path)
    for name, tensor in sd.items():
        assert torch.equal(got[name], tensor), name
    assert result.unshared == 3  # q and k_t share qkv's storage; lone_t is strided


def test_tensors_safetensors_cannot_store(tmp_path: Path) -> None:
    sparse = _save({"s": torch.eye(2).to_sparse()}, tmp_path / "s.pt")
    assert "'s' is a torch.sparse_coo tensor" in _fails([sparse], tmp_path)
    cplx = _save({"c": torch.ones(2, dtype=torch.complex128)}, tmp_path / "c.pt")
    assert "'c' has dtype torch.complex128" in _fails([cplx], tmp_path)


def test_same_input_gives_identical_bytes(tmp_path: Path) -> None:
    sd = _state_dict() | {"tied": _state_dict()["conv.weight"]}
    path = _save(sd, tmp_path / "m.pt")
    outs = [tmp_path / "a" / "model.safetensors", tmp_path / "b" / "model.safetensors"]
    for out in outs:
        convert([path], ConvertOptions(dtype="bfloat16"), out, key=KEY)
    assert outs[0].read_bytes() == outs[1].read_bytes()
    reordered = _save(dict(reversed(list(sd.items()))), tmp_path / "r.pt")
    third = tmp_path / "c" / "model.safetensors"
    convert([reordered], ConvertOptions(dtype="bfloat16"), third, key=KEY)
    assert third.read_bytes() == outs[0].read_bytes()
    assert oct(outs[0].stat().st_mode & 0o777) == "0o644"


def test_failed_write_leaves_old_output_and_no_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gasbuild.stages import convert as convert_module

    out = tmp_path / "model.safetensors"
    out.write_bytes(b"old")
    path = _save(_state_dict(), tmp_path / "m.pt")

    def broken(tensors: Any, stream: Any, metadata: Any) -> int:
        stream.write(b"partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(convert_module, "write_safetensors", broken)
    with pytest.raises(BuildError, match="No space left on device"):
        convert([path], NONE, out, key=KEY)
    assert out.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.pt", "model.safetensors"]


# ------------------------------------------------------------------------------------------------
# Sharded checkpoints


def _write_index(folder: Path, weight_map: dict[str, str], name: str) -> Path:
    index = folder / name
    index.write_text(json.dumps({"metadata": {"total_size": 0}, "weight_map": weight_map}))
    return index


def _shards(tmp_path: Path, kind: str) -> tuple[Path, list[Path], dict[str, torch.Tensor]]:
    sd = _state_dict()
    names = sorted(sd)
    parts = {
        f"model-00001-of-00002.{kind}": {n: sd[n] for n in names[:2]},
        f"model-00002-of-00002.{kind}": {n: sd[n] for n in names[2:]},
    }
    weight_map: dict[str, str] = {}
    for shard, tensors in parts.items():
        if kind == "safetensors":
            save_file(tensors, tmp_path / shard)
        else:
            torch.save(tensors, tmp_path / shard)
        weight_map |= {n: shard for n in tensors}
    index_name = "model.safetensors.index.json" if kind == "safetensors" else "x.bin.index.json"
    index = _write_index(tmp_path, weight_map, index_name)
    return index, [tmp_path / s for s in index_shards(index, key=KEY)], sd


@pytest.mark.parametrize("kind", ["safetensors", "bin"])
def test_sharded_checkpoint(tmp_path: Path, kind: str) -> None:
    index, files, sd = _shards(tmp_path, kind)
    assert [f.name for f in files] == [
        f"model-00001-of-00002.{kind}",
        f"model-00002-of-00002.{kind}",
    ]
    got, result = _run(files, tmp_path, index=index)
    _assert_same(got, sd)
    assert result.tensors == 4


def test_sharded_with_options(tmp_path: Path) -> None:
    index, files, _ = _shards(tmp_path, "bin")
    got, result = _run(files, tmp_path, ConvertOptions(dtype="float16"), index=index)
    assert got["conv.weight"].dtype == torch.float16 and result.cast == 2


def test_duplicate_tensor_across_shards(tmp_path: Path) -> None:
    save_file({"a": torch.ones(1), "b": torch.ones(1)}, tmp_path / "s1.safetensors")
    save_file({"b": torch.zeros(1)}, tmp_path / "s2.safetensors")
    files = [tmp_path / "s1.safetensors", tmp_path / "s2.safetensors"]
    text = _fails(files, tmp_path)
    assert "tensor 'b' is in both" in text and "s1.safetensors" in text and "s2" in text


def test_index_lists_a_missing_tensor(tmp_path: Path) -> None:
    index, files, _ = _shards(tmp_path, "safetensors")
    weight_map = index_weight_map(index, key=KEY) | {"ghost.weight": files[0].name}
    index = _write_index(tmp_path, weight_map, "model.safetensors.index.json")
    assert "lists tensors no shard holds: 'ghost.weight'" in _fails(files, tmp_path, index=index)


def test_shard_holds_a_tensor_the_index_does_not_list(tmp_path: Path) -> None:
    index, files, _ = _shards(tmp_path, "safetensors")
    weight_map = index_weight_map(index, key=KEY)
    del weight_map["mask"]
    index = _write_index(tmp_path, weight_map, "model.safetensors.index.json")
    assert "does not list: 'mask'" in _fails(files, tmp_path, index=index)


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ("{not json", "not a readable JSON index"),
        ("[]", "no weight_map"),
        ('{"metadata": {}}', "no weight_map"),
        ('{"weight_map": {}}', "no weight_map"),
        ('{"weight_map": {"a": 3}}', "is not a file name"),
        ('{"weight_map": {"a": "../../etc/passwd.bin"}}', "is not a plain file name"),
        ('{"weight_map": {"a": "sub/s.safetensors"}}', "is not a plain file name"),
        ('{"weight_map": {"a": "..\\\\s.bin"}}', "is not a plain file name"),
        ('{"weight_map": {"a": ".hidden.bin"}}', "is not a plain file name"),
        ('{"weight_map": {"a": "s.pkl"}}', "neither .safetensors nor .bin"),
        ('{"weight_map": {"a": "s.bin", "b": "t.safetensors"}}', "mixes"),
    ],
)
def test_bad_index(tmp_path: Path, content: str, words: str) -> None:
    index = tmp_path / "model.safetensors.index.json"
    index.write_text(content)
    with pytest.raises(ConversionError) as info:
        index_shards(index, key=KEY)
    assert str(info.value).startswith(f"{KEY}: ")
    assert words in str(info.value)


def test_index_shards_unique_and_sorted(tmp_path: Path) -> None:
    weight_map = {"a": "s2.safetensors", "b": "s1.safetensors", "c": "s2.safetensors"}
    index = _write_index(tmp_path, weight_map, "i.index.json")
    assert index_shards(index, key=KEY) == ["s1.safetensors", "s2.safetensors"]


# ------------------------------------------------------------------------------------------------
# Refusing pickled code


class _RunsShell:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (f"touch {self.marker}",))


class _RunsExec:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (builtins.exec, (f"open({str(self.marker)!r}, 'w').write('pwned')",))


class _Custom:
    def __init__(self) -> None:
        self.lr = 0.1


def _malicious(tmp_path: Path, how: str, marker: Path) -> Path:
    payload = {"w": torch.ones(2), "x": _RunsShell(marker)}
    path = tmp_path / f"evil-{how}.bin"
    if how == "zip":
        torch.save(payload, path)
    elif how == "exec":
        torch.save({"w": torch.ones(2), "x": _RunsExec(marker)}, path)
    elif how == "legacy":
        torch.save(payload, path, _use_new_zipfile_serialization=False)
    else:  # a raw pickle, as pickle.dump writes it
        with path.open("wb") as f:
            pickle.dump({"x": _RunsShell(marker)}, f, protocol=2)
    return path


@pytest.mark.parametrize(
    ("how", "refused"),
    [
        ("zip", "`posix.system`" if os.name == "posix" else "system`"),
        ("exec", "`builtins.exec`"),
        ("legacy", "system`"),
        ("raw", "system`"),
    ],
)
def test_malicious_pickle_is_refused_and_never_runs(tmp_path: Path, how: str, refused: str) -> None:
    marker = tmp_path / "PWNED"
    path = _malicious(tmp_path, how, marker)
    text = _fails([path], tmp_path, ConvertOptions(state_dict_key=None))
    assert refused in text
    assert "refused" in text and "never runs a checkpoint's pickled code" in text
    assert 'torch.save(model.state_dict(), "model.pt")' in text
    assert not marker.exists()


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_raw_pickle_with_a_newer_protocol(tmp_path: Path) -> None:
    marker = tmp_path / "PWNED"
    path = tmp_path / "evil.bin"
    with path.open("wb") as f:
        pickle.dump({"x": _RunsShell(marker)}, f, protocol=4)
    text = _fails([path], tmp_path)
    assert "not a checkpoint torch.save wrote" in text and "opcode 149" in text
    assert not marker.exists()


def test_env_cannot_turn_weights_only_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    marker = tmp_path / "PWNED"
    text = _fails([_malicious(tmp_path, "zip", marker)], tmp_path)
    assert "system`" in text and not marker.exists()


@pytest.mark.parametrize(
    ("message", "words"),
    [
        (  # torch's "must be imported" form
            "Weights only load failed. ``torch.distributed.tensor`` must be imported to load "
            "DTensors\n In PyTorch 2.6, we changed the default...\n\n\nCheck the documentation",
            "refused by the weights-only loader: ``torch.distributed.tensor`` must be imported",
        ),
        (  # an opcode-level refusal, after the "please file an issue" boilerplate
            "Weights only load failed. In PyTorch 2.6, we changed...\nPlease file an issue with "
            "the following: WeightsUnpickler error: \n\nCan only create new object for "
            "nn.Parameter or classes allowlisted via `add_safe_globals` but got <class 'X'>"
            "\n\nCheck the documentation of torch.load",
            "loader: Can only create new object for nn.Parameter",
        ),
    ],
)
def test_other_refusals_keep_the_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, message: str, words: str
) -> None:
    def refuse(*args: Any, **kwargs: Any) -> None:
        assert kwargs["weights_only"] is True
        raise pickle.UnpicklingError(message)

    monkeypatch.setattr(torch, "load", refuse)
    path = tmp_path / "m.pt"
    path.write_bytes(b"PK\x03\x04")
    text = _fails([path], tmp_path)
    assert words in text and "In PyTorch 2.6" not in text


def test_custom_class_in_the_checkpoint(tmp_path: Path) -> None:
    path = _save({"state_dict": _state_dict(), "hparams": _Custom()}, tmp_path / "c.ckpt")
    text = _fails([path], tmp_path, ConvertOptions(state_dict_key="state_dict"))
    assert f"`{__name__}._Custom`" in text


@pytest.mark.parametrize("how", ["zip", "legacy"])
def test_a_timm_train_checkpoint_with_its_argparse_namespace_converts(
    tmp_path: Path, how: str
) -> None:
    """timm's train.py saves ``args`` (a Namespace) beside the state dict: plain data."""
    args = argparse.Namespace(model="resnet18", lr=0.1, epochs=3, smoothing=None, aa=["x", 2])
    checkpoint = {"epoch": 3, "arch": "resnet18", "state_dict": _state_dict(), "args": args}
    path = _save(
        checkpoint, tmp_path / f"{how}.pth.tar", _use_new_zipfile_serialization=how == "zip"
    )
    tensors, _ = _run([path], tmp_path, ConvertOptions(state_dict_key="state_dict"))
    assert sorted(tensors) == sorted(_state_dict())


def test_a_namespace_does_not_let_a_payload_through(tmp_path: Path) -> None:
    marker = tmp_path / "PWNED"
    args = argparse.Namespace(model="resnet18", hook=_RunsShell(marker))
    path = _save({"state_dict": _state_dict(), "args": args}, tmp_path / "evil.pth")
    text = _fails([path], tmp_path, ConvertOptions(state_dict_key="state_dict"))
    assert "system`" in text and "refused" in text
    assert not marker.exists()


def test_whole_module_pickle_is_refused(tmp_path: Path) -> None:
    text = _fails([_save(torch.nn.Linear(2, 2), tmp_path / "m.pt")], tmp_path)
    assert "`torch.nn.modules.linear.Linear`" in text


# ------------------------------------------------------------------------------------------------
# Damaged files


@pytest.mark.parametrize("damage", ["truncated", "random", "empty", "text", "safetensors"])
def test_damaged_file_is_one_line(tmp_path: Path, damage: str) -> None:
    good = _save(_state_dict(), tmp_path / "good.pt").read_bytes()
    path = tmp_path / "bad.pt"
    if damage == "truncated":
        path.write_bytes(good[: len(good) // 2])
    elif damage == "random":
        path.write_bytes(bytes(range(256)) * 4)
    elif damage == "empty":
        path.write_bytes(b"")
    elif damage == "text":
        path.write_text("version https://git-lfs.github.com/spec/v1\noid sha256:abc\n")
    else:
        save_file(_state_dict(), tmp_path / "ok.safetensors")
        path.write_bytes((tmp_path / "ok.safetensors").read_bytes()[:-8])
    text = _fails([path], tmp_path)
    assert "bad.pt" in text
    if damage == "text":
        assert "Git LFS pointer" in text and "git lfs pull" in text


def test_missing_file(tmp_path: Path) -> None:
    assert "cannot read the file" in _fails([tmp_path / "nope.pt"], tmp_path)


# ------------------------------------------------------------------------------------------------
# Import cost


def test_import_does_not_load_torch() -> None:
    code = (
        "import sys, gasbuild.stages.convert as c; "
        "assert c.weights_kind('a.pt') == 'checkpoint'; "
        "bad = [m for m in ('torch', 'safetensors') if m in sys.modules]; "
        "assert not bad, bad"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONSTARTUP"}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env
    )
    assert done.returncode == 0, done.stderr


def test_copied_shards_need_no_suffix(tmp_path: Path) -> None:
    index, files, sd = _shards(tmp_path, "bin")
    blobs = []
    for i, f in enumerate(files):
        blob = tmp_path / f"blob{i}"
        shutil.copyfile(f, blob)
        blobs.append(blob)
    got, _ = _run(blobs, tmp_path, index=index, labels=[f.name for f in files])
    _assert_same(got, sd)


def test_the_streaming_writer_reads_back_as_safetensors_for_every_dtype(tmp_path: Path) -> None:
    """Our writer (no bytes copy of the model) gives files the safetensors library reads, with
    every dtype, empty and scalar tensors, and the same bytes for the same tensors."""
    import io

    import torch
    from safetensors.torch import load_file

    from gasbuild.stages.convert import write_safetensors

    tensors = {
        "f32": torch.randn(3, 4),
        "bf16": torch.randn(5).to(torch.bfloat16),
        "f16": torch.randn(2, 2).half(),
        "i64": torch.arange(7),
        "u8": torch.arange(9, dtype=torch.uint8),
        "mask": torch.tensor([True, False, True]),
        "scalar": torch.tensor(2.5),
        "empty": torch.zeros(0, 4),
        "f8": torch.randn(4).to(torch.float8_e4m3fn),
    }
    path = tmp_path / "w.safetensors"
    with path.open("wb") as stream:
        written = write_safetensors(tensors, stream, {"format": "pt"})
    assert written == path.stat().st_size
    back = load_file(str(path))
    assert set(back) == set(tensors)
    for name, tensor in tensors.items():
        assert back[name].dtype == tensor.dtype and back[name].shape == tensor.shape
        assert torch.equal(_bytes_of(back[name]), _bytes_of(tensor))
    again = io.BytesIO()
    write_safetensors(dict(reversed(list(tensors.items()))), again, {"format": "pt"})
    assert again.getvalue() == path.read_bytes()


def _bytes_of(tensor: Any) -> Any:
    import torch

    flat = tensor.reshape(-1)
    return flat if flat.dtype == torch.uint8 else flat.view(torch.uint8)


def test_converting_without_torch_is_one_line_that_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _save(_state_dict(), tmp_path / "m.pt")
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` now raises ImportError
    with pytest.raises(ConversionError, match="needs torch, which is not installed") as info:
        convert([path], NONE, tmp_path / "out.safetensors", key=KEY)
    assert info.value.hint is not None and "gasbuild[torch]" in info.value.hint
