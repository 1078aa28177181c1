"""hf:// sources through huggingface_hub pointed at a loopback Hub (HF_ENDPOINT).

huggingface_hub reads HF_ENDPOINT when it is imported, so the fetch runs in a child process
that sets it first; the fake Hub runs in that same child, on 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from conftest import REPO

SCRIPT = """
import json, os, sys
sys.path.insert(0, {tests!r})
from fakes import hf_hub
server, base = hf_hub.start()
os.environ["HF_ENDPOINT"] = base
os.environ["HF_HUB_DISABLE_XET"] = "1"
os.environ["HF_HUB_OFFLINE"] = "0"
from pathlib import Path
from gasbuild.cache import Cache
from gasbuild.stages.fetch import FetchOptions, Pins, UrlSource
cache = Cache(Path({cache!r}))
src = UrlSource({url!r}, "models.image.weights")
first = src.fetch(cache, Pins(), FetchOptions(), None)
locked = {{"url": {url!r}, "sha256": first.blob.sha256, **first.record}}
before = len(hf_hub.Handler.requests)
second = src.fetch(cache, Pins(), FetchOptions(), locked)
print(json.dumps({{"record": first.record, "sha256": first.blob.sha256,
                  "data": first.blob.path.read_bytes().hex(), "second_hit": second.hit,
                  "requests_after_lock": len(hf_hub.Handler.requests) - before}}))
server.shutdown()
"""


def _fetch(tmp_path: Path, url: str) -> dict[str, object]:
    code = SCRIPT.format(tests=str(REPO / "tests"), cache=str(tmp_path / "cache"), url=url)
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def test_hf_branch_is_resolved_to_a_commit_and_locked(tmp_path: Path) -> None:
    from fakes.hf_hub import COMMIT, FILES

    out = _fetch(tmp_path, "hf://org/repo/w.safetensors")
    assert out["record"] == {"url": "hf://org/repo/w.safetensors", "revision": COMMIT}
    assert bytes.fromhex(str(out["data"])) == FILES["w.safetensors"]
    assert out["second_hit"] is True
    assert out["requests_after_lock"] == 0, "a locked hf source needs no request at all"


def test_hf_trailing_revision_form(tmp_path: Path) -> None:
    from fakes.hf_hub import COMMIT

    out = _fetch(tmp_path, "hf://org/repo/w.safetensors@main")
    assert out["record"]["revision"] == COMMIT  # type: ignore[index]


def test_normalise_hf_url() -> None:
    from gasbuild.stages.hfresolve import normalise_hf_url

    assert normalise_hf_url("hf://org/repo/a/b.bin@v1") == "hf://org/repo@v1/a/b.bin"
    assert normalise_hf_url("hf://datasets/org/repo/x@main") == "hf://datasets/org/repo@main/x"
    assert normalise_hf_url("hf://org/repo@v1/x") == "hf://org/repo@v1/x"
