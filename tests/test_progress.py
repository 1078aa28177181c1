"""Issue 16.6: byte bars while weights are hashed and the zip is written, a spinner naming the
other long steps; on a terminal only, nothing extra when piped or with -q/--json.

The bars are fed through a per-chunk callback: the unit tests check the sequence it sees
(every byte once, in chunks, then finish), the CLI tests what a user sees in a pipe and on a
pseudo-terminal.
"""

from __future__ import annotations

import fcntl
import json
import os
import pty
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import run_cli
from gasbuild.blobs import CHUNK, PROGRESS_FROM_BYTES, measure_file
from gasbuild.cache import Cache
from gasbuild.stages import package
from gasbuild.stages.fetch import hash_local, progress_label


class Recorder:
    """A progress factory that remembers every bar, its advances and whether it finished."""

    def __init__(self) -> None:
        self.bars: list[RecordedBar] = []

    def __call__(self, label: str, total: int | None) -> RecordedBar:
        bar = RecordedBar(label, total)
        self.bars.append(bar)
        return bar


class RecordedBar:
    def __init__(self, label: str, total: int | None) -> None:
        self.label, self.total = label, total
        self.steps: list[int] = []
        self.finished = 0

    def advance(self, n: int) -> None:
        assert not self.finished, "advanced after finish"
        self.steps.append(n)

    def finish(self) -> None:
        self.finished += 1


def _assert_whole(bar: RecordedBar, size: int) -> None:
    """Every byte reported once, per chunk (never per byte), then one finish."""
    assert sum(bar.steps) == size == bar.total
    assert all(0 < n <= CHUNK for n in bar.steps)
    assert len(bar.steps) == -(-size // CHUNK)  # one call per chunk read
    assert bar.finished == 1


@settings(max_examples=12, deadline=None)
@given(size=st.sampled_from([0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 17]))
def test_measure_file_reports_each_chunk_once(
    tmp_path_factory: pytest.TempPathFactory, size: int
) -> None:
    path = tmp_path_factory.mktemp("m") / "w.bin"
    path.write_bytes(os.urandom(size))
    seen: list[int] = []
    blob = measure_file(path, seen.append)
    assert sum(seen) == blob.size == size
    assert all(0 < n <= CHUNK for n in seen)
    assert blob == measure_file(path)  # the callback changes nothing measured


def _sparse(path: Path, size: int) -> Path:
    """A file of ``size`` zero bytes, dated a minute ago (past the stat cache's racy window)."""
    with path.open("wb") as f:
        f.truncate(size)
    past = time.time() - 60
    os.utime(path, (past, past))
    return path


def test_hashing_large_weights_shows_one_bar_and_a_cache_hit_none(tmp_path: Path) -> None:
    size = PROGRESS_FROM_BYTES + 3 * CHUNK + 5
    weights = _sparse(tmp_path / "image.safetensors", size)
    cache = Cache(tmp_path / "cache")
    bars = Recorder()
    blob, hit = hash_local(weights, cache, key="models.image.weights", location=None, progress=bars)
    assert not hit and blob.size == size
    (bar,) = bars.bars
    assert bar.label == "image: hashing image.safete…"  # cut to 28, marked
    _assert_whole(bar, size)
    _, hit = hash_local(weights, cache, key="models.image.weights", location=None, progress=bars)
    assert hit and len(bars.bars) == 1  # the stat cache answered: nothing read, no bar


def test_a_small_file_gets_no_bar(tmp_path: Path) -> None:
    small = tmp_path / "model.py"
    small.write_text("x = 1\n")
    bars = Recorder()
    hash_local(
        small,
        Cache(tmp_path / "cache"),
        key="models.image.architecture",
        location=None,
        progress=bars,
    )
    assert bars.bars == []


@settings(max_examples=20, deadline=None)
@given(key=st.text(min_size=1, max_size=40), name=st.text(min_size=1, max_size=80))
def test_bar_labels_leave_room_for_the_bar(key: str, name: str) -> None:
    label = progress_label(key, "hashing", name)
    assert len(label) <= 28


def test_writing_a_zip_reports_the_payload(tmp_path: Path) -> None:
    weights = tmp_path / "w.bin"
    weights.write_bytes(os.urandom(2 * CHUNK + 3))
    entries = [
        package.Entry.text("model.py", b"x = 1\n"),
        package.Entry.file("model.safetensors", measure_file(weights)),
    ]
    seen: list[int] = []
    result = package.write_zip(tmp_path / "out.zip", entries, progress=seen.append)
    assert sum(seen) == package.payload_size(entries) == 6 + 2 * CHUNK + 3
    assert all(0 < n <= CHUNK for n in seen)
    assert seen[0] == 6  # the text entry, then the file per chunk
    assert result == package.write_zip(tmp_path / "again.zip", entries)  # same bytes


def test_the_package_stage_finishes_its_bar(tmp_path: Path) -> None:
    from gasbuild import plan

    weights = _sparse(tmp_path / "w.bin", PROGRESS_FROM_BYTES + 1)
    entries = [package.Entry.file("model.safetensors", measure_file(weights))]
    bars = Recorder()
    plan._package(entries, tmp_path / "image_detector.zip", Cache(tmp_path / "cache"), bars)
    (bar,) = bars.bars
    assert bar.label == "writing image_detector.zip"
    _assert_whole(bar, PROGRESS_FROM_BYTES + 1)


# -- what a user sees --------------------------------------------------------------------


@pytest.fixture(scope="module")
def big_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project as `init` leaves it, with weights large enough for bars (40 MiB)."""
    import torch
    from safetensors.torch import load_file, save_file

    root = tmp_path_factory.mktemp("progress") / "detector"
    assert run_cli("init", "-C", str(root)).returncode == 0
    weights = root / "weights" / "image.safetensors"
    tensors = load_file(weights)
    tensors["padding"] = torch.zeros(10 << 20)  # 40 MiB: above PROGRESS_FROM_BYTES
    save_file(tensors, weights)
    return root


def _on_a_terminal(
    args: list[str], cwd: Path, timeout: float = 300, interrupt_on: bytes | None = None
) -> tuple[int, str]:
    """Run gasbuild with stdin, stdout and stderr on a pseudo-terminal of 80 columns; with
    ``interrupt_on``, press Ctrl-C (SIGINT to its process group) once that text showed."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"} | {"TERM": "xterm"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "gasbuild", *args],
        cwd=cwd,
        env=env,
        stdin=slave,
        stdout=slave,
        stderr=slave,
        close_fds=True,
        start_new_session=True,  # its own group, as a shell's foreground job
    )
    os.close(slave)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    data = os.read(master, 1 << 16)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not data:
                    break
                chunks.append(data)
                if interrupt_on is not None and interrupt_on in b"".join(chunks):
                    time.sleep(1.0)  # well inside the step
                    os.killpg(proc.pid, signal.SIGINT)
                    interrupt_on = None
            elif proc.poll() is not None:
                break
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)
        os.close(master)
    return proc.returncode, b"".join(chunks).decode("utf-8", "replace")


@pytest.mark.slow
def test_a_terminal_build_shows_the_bars(big_project: Path) -> None:
    code, text = _on_a_terminal(["build", "--no-smoke", "--no-cache"], big_project)
    assert code == 0, text
    assert "image: hashing image.safete…" in text
    assert "writing image_detector.zip" in text and "/40.0 MiB" in text
    assert "image: fetching and rendering" in text  # the step's spinner


@pytest.mark.slow
@pytest.mark.parametrize("flag", ["--json", "-q"])
def test_a_terminal_build_with_json_or_quiet_shows_none(big_project: Path, flag: str) -> None:
    code, text = _on_a_terminal(["build", "--no-smoke", "--no-cache", flag], big_project)
    assert code == 0, text
    assert "hashing" not in text and "MiB/" not in text and "\x1b[?25l" not in text, text


@pytest.mark.slow
def test_a_piped_build_shows_no_bar_nor_control_characters(big_project: Path) -> None:
    result = run_cli("build", "--no-smoke", "--no-cache", cwd=big_project)
    assert result.returncode == 0, result.stderr
    for stream in (result.stdout, result.stderr):
        assert "\x1b" not in stream and "\r" not in stream
    assert "hashing" not in result.stderr and "writing image_detector.zip" not in result.stderr
    as_json = run_cli("build", "--no-smoke", "--no-cache", "--json", cwd=big_project)
    assert json.loads(as_json.stdout)["models"][0]["size"] > PROGRESS_FROM_BYTES
    assert "\x1b" not in as_json.stderr


SPINNING_MODEL = """\
import torch


def load_model(weights_path, num_classes=2):
    while True:
        pass
"""


@pytest.mark.slow
def test_ctrl_c_during_the_smoke_test_says_interrupted(tmp_path: Path) -> None:
    """A smoke test that never ends, interrupted from the terminal: "interrupted", exit 130,
    not a timeout, and no live display left behind."""
    assert run_cli("init", "-C", str(tmp_path)).returncode == 0
    (tmp_path / "model.py").write_text(SPINNING_MODEL)
    code, text = _on_a_terminal(["build"], tmp_path, interrupt_on=b"smoke-testing")
    assert code == 130, text
    assert "interrupted" in text and "aborted" not in text
    assert "did not finish" not in text and "Traceback" not in text
    assert text.rstrip().endswith("interrupted")
