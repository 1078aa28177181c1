"""Two builds at once on one cache both succeed; a build killed at any moment leaves nothing that
a later build would trust (real subprocesses, real SIGKILL)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import EXAMPLES

pytestmark = pytest.mark.slow


def _project(tmp_path: Path, name: str) -> Path:
    dest = tmp_path / name
    shutil.copytree(
        EXAMPLES / "quickstart", dest, ignore=shutil.ignore_patterns("dist", "gas.lock")
    )
    return dest


def _start(project: Path, cache: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "GASBUILD_CACHE_DIR": str(cache)}
    return subprocess.Popen(
        [sys.executable, "-m", "gasbuild", "build", "-C", str(project), "--no-smoke"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def _zips(project: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((project / "dist").glob("*.zip"))}


def test_two_builds_at_once_on_one_cache(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    same = _project(tmp_path, "same")
    other = _project(tmp_path, "other")
    procs = [_start(same, cache), _start(same, cache), _start(other, cache)]
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err.decode()
    assert _zips(same) == _zips(other)
    assert len(_zips(same)) == 3
    assert not list((same / "dist").glob(".*.tmp")), "no temp zip left"


@pytest.mark.parametrize("delay", [0.05, 0.3, 0.6, 0.9, 1.2, 1.6])
def test_sigkill_at_any_moment_leaves_nothing_trusted(tmp_path: Path, delay: float) -> None:
    reference = _project(tmp_path, "reference")
    ref = _start(reference, tmp_path / "ref-cache")
    assert ref.wait(timeout=300) == 0

    project = _project(tmp_path, "victim")
    cache = tmp_path / "cache"
    victim = _start(project, cache)
    time.sleep(delay)
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=60)

    after = _start(project, cache)
    _, err = after.communicate(timeout=300)
    assert after.returncode == 0, err.decode()
    assert _zips(project) == _zips(reference)
    assert (project / "gas.lock").read_bytes() == (reference / "gas.lock").read_bytes()


def _converting_project(tmp_path: Path, name: str, export: bool) -> Path:
    """The quickstart image model from a .pt checkpoint (converted), optionally exported."""
    import torch
    from safetensors.torch import load_file

    dest = tmp_path / name
    dest.mkdir()
    shutil.copy(EXAMPLES / "quickstart" / "models" / "image_model.py", dest)
    state = load_file(str(EXAMPLES / "quickstart" / "weights" / "image.safetensors"))
    torch.save({f"module.{k}": v for k, v in state.items()}, dest / "image.pt")
    fmt = 'format = "onnx"\n' if export else ""
    (dest / "gas.toml").write_text(
        "[models.image]\n"
        f"{fmt}"
        'architecture = { file = "image_model.py" }\n'
        'weights = { path = "image.pt", strip_prefix = "module." }\n'
        "preprocessing = { resize = [64, 64] }\n"
        "model = { width = 16 }\n"
    )
    return dest


@pytest.mark.parametrize("export", [False, True], ids=["convert", "convert+export"])
def test_two_builds_that_convert_and_export_at_once(tmp_path: Path, export: bool) -> None:
    """The convert and export stages take the cache's lock and re-check under it: both builds
    succeed with identical outputs, and no temp file is left behind."""
    cache = tmp_path / "cache"
    one = _converting_project(tmp_path, "one", export)
    two = _converting_project(tmp_path, "two", export)
    procs = [_start(one, cache), _start(two, cache)]
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err.decode()
    assert _zips(one) == _zips(two) and len(_zips(one)) == 1
    assert not list((cache / "tmp").glob("convert-*")), "no conversion temp file left"
