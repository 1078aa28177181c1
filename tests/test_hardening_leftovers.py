"""Issue 15: a SIGKILLed build's temp files are swept by the next build, and only those.

A real child process writes a zip (and a download into the cache) and is killed mid-write;
the next build removes what it left, while the temp files of a writer still alive stay.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from gasbuild.cli import _run, cli

QUICKSTART = Path(__file__).resolve().parent.parent / "examples" / "quickstart"
REPO = Path(__file__).resolve().parent.parent

# Writes a zip whose second entry never ends (a generator that waits), so the temp file
# ``.image_detector.zip.<pid>.<random>.tmp`` stays open until the process dies; a download
# temp file in the cache's tmp/ is made the same way.
WRITER = textwrap.dedent(
    """
    import os, sys, tempfile, time
    from pathlib import Path
    from gasbuild.blobs import temp_name_prefix
    from gasbuild.stages.package import Entry, write_zip

    out, cache_tmp = Path(sys.argv[1]), Path(sys.argv[2])
    cache_tmp.mkdir(parents=True, exist_ok=True)
    tempfile.mkstemp(dir=cache_tmp, prefix=temp_name_prefix(Path("download")), suffix=".tmp")
    (cache_tmp / f"convert-0123456789abcdef-{os.getpid()}.safetensors").write_bytes(b"x")

    def entries():
        yield Entry.text("model.py", b"x" * 1000)
        print("writing", flush=True)
        while True:
            time.sleep(1)

    write_zip(out, entries())
    """
)


def _start_writer(dist: Path, cache_tmp: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    child = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(dist / "image_detector.zip"), str(cache_tmp)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "writing"
    return child


def _leftovers(dist: Path, cache_tmp: Path) -> list[str]:
    names = [p.name for p in dist.glob(".*.tmp")]
    return sorted(names + [p.name for p in cache_tmp.iterdir()] if cache_tmp.is_dir() else names)


def test_next_build_sweeps_a_killed_builds_temp_files(
    tmp_path: Path, _isolated_cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "project"
    shutil.copytree(QUICKSTART, root, ignore=shutil.ignore_patterns("dist", "gas.lock"))
    dist, cache_tmp = root / "dist", _isolated_cache / "tmp"
    args = ["build", "-C", str(root), "--no-smoke", "--only", "image"]
    assert _run(cli, args, "gasbuild") == 0  # the zip exists: the next build is a no-op

    child = _start_writer(dist, cache_tmp)
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    assert len(_leftovers(dist, cache_tmp)) == 3  # zip temp, download temp, conversion

    assert _run(cli, args, "gasbuild") == 0
    capsys.readouterr()
    assert _leftovers(dist, cache_tmp) == []
    assert (dist / "image_detector.zip").is_file()


def test_a_live_writers_temp_files_are_kept(
    tmp_path: Path, _isolated_cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "project"
    shutil.copytree(QUICKSTART, root, ignore=shutil.ignore_patterns("dist", "gas.lock"))
    dist, cache_tmp = root / "dist", _isolated_cache / "tmp"
    dist.mkdir()
    child = _start_writer(dist, cache_tmp)
    try:
        before = _leftovers(dist, cache_tmp)
        args = ["build", "-C", str(root), "--no-smoke", "--only", "image"]
        assert _run(cli, args, "gasbuild") == 0
        capsys.readouterr()
        assert set(before) <= set(_leftovers(dist, cache_tmp))
    finally:
        child.kill()
        child.wait(timeout=30)
