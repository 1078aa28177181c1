"""The eval's pipes: batches reach the child unchanged, memory stays bounded, and what model code
writes back is checked before the parent believes it (docs/eval.md, "How it runs")."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gasbuild.cli import _run, cli
from gasbuild.eval import engine
from gasbuild.eval.data import Sample
from gasbuild.sandbox import eval_child

# ---------------------------------------------------------------------------------------------
# Parent -> child


def _drain(fd: int, into: list[tuple[int, Any]]) -> threading.Thread:
    """The child's side of the input pipe, on a thread: its own reader function."""

    def read() -> None:
        with os.fdopen(fd, "rb") as reader:
            while (item := eval_child.next_batch(reader, np)) is not None:
                into.append(item)

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    return thread


@settings(max_examples=20, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["uint8", "float32"]),
            st.lists(st.integers(1, 9), min_size=2, max_size=4),
        ),
        min_size=1,
        max_size=6,
    )
)
def test_batches_cross_the_pipe_unchanged(specs: list[tuple[str, list[int]]]) -> None:
    rng = np.random.default_rng(len(specs))
    sent = [
        (rng.random(shape) * 255).astype(dtype) if dtype == "uint8" else rng.random(shape)
        for dtype, shape in specs
    ]
    sent = [np.ascontiguousarray(a, dtype=a.dtype.name) for a in sent]
    read_fd, write_fd = os.pipe()
    received: list[tuple[int, Any]] = []
    reader = _drain(read_fd, received)
    feeder = engine._Feeder(write_fd)
    for index, array in enumerate(sent):
        assert feeder.put(index, array)
    feeder.close()
    reader.join()
    assert [i for i, _ in received] == list(range(len(sent)))
    for (_, got), want in zip(received, sent, strict=True):
        assert got.dtype == want.dtype and got.shape == want.shape
        assert np.array_equal(got, want)
        assert got.flags.writeable  # a model may work on its input in place


def test_feeder_keeps_memory_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    batch = np.zeros((4, 3, 64, 64), dtype=np.uint8)
    monkeypatch.setattr(engine, "MAX_AHEAD_BYTES", 3 * batch.nbytes)
    read_fd, write_fd = os.pipe()
    received: list[tuple[int, Any]] = []
    reader = _drain(read_fd, received)
    feeder = engine._Feeder(write_fd)
    for index in range(200):
        assert feeder.put(index, batch + index % 7)
        assert feeder._bytes <= 3 * batch.nbytes  # the bound under test
    feeder.close()
    reader.join()
    assert len(received) == 200 and int(received[-1][1][0, 0, 0, 0]) == 199 % 7


def test_feeder_stops_when_the_child_is_gone() -> None:
    read_fd, write_fd = os.pipe()
    os.close(read_fd)  # the child died
    feeder = engine._Feeder(write_fd)
    batch = np.ones((32, 3, 224, 224), dtype=np.uint8)
    accepted = [feeder.put(i, batch) for i in range(64)]
    feeder.close()
    assert feeder.broken and not all(accepted)


# ---------------------------------------------------------------------------------------------
# Child -> parent: model code can write anything on this pipe


def _results(lines: list[bytes], sizes: list[int]) -> engine._Results:
    read_fd, write_fd = os.pipe()
    results = engine._Results(read_fd, sizes, engine._max_line(max(sizes)))
    with os.fdopen(write_fd, "wb") as out:
        for line in lines:
            out.write(line)
    results.join()
    return results


def _line(message: dict[str, Any]) -> bytes:
    return (json.dumps(message) + "\n").encode()


def test_result_lines_are_checked_before_use() -> None:
    sizes = [2, 2, 2, 2]
    good = {"index": 0, "ms": 5.0, "logits": [[1.0, -1.0], [-1.0, 1.0]]}
    results = _results(
        [
            b"not json\n",
            _line({"index": 9, "ms": 1, "logits": [[0, 1]] * 2}),  # never sent
            _line({"index": True, "ms": 1, "logits": [[0, 1]] * 2}),
            b'{"index": 3, "logits": [' + b"0," * 10_000 + b"0]}\n",  # longer than honest
            _line(good),
            _line({"index": 1, "ms": 1, "logits": [[0, 1]] * 2}),
            _line({"index": 1, "ms": 1, "logits": [[1, 0]] * 2}),  # a second answer
            _line({"index": 2, "ms": 1, "logits": [[0, 1, 2, 3]] * 2}),
        ],
        sizes,
    )
    assert set(results.lines) == {0, 1, 2}
    output = engine.RunOutput()
    for index in range(4):
        members = [Sample(Path(f"{index}-{row}.png"), "real", ".") for row in range(2)]
        engine._collect(results.lines.get(index), members, output)
    first, second = output.scored[0], output.scored[1]
    assert first.prediction is not None and first.prediction.predicted == 0
    assert second.prediction is not None and second.prediction.predicted == 1
    assert output.forward_ms == 5.0  # only the batch that scored counts
    errors = [s.error for s in output.scored[2:]]
    assert errors[0] == errors[1] == "the child sent two results for this batch"
    assert errors[2] is not None and "malformed logits" in errors[2]
    assert errors[4] == errors[5] == "the child wrote no result for this batch"


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(st.sampled_from(["logits", "error", "ms", "index"]), _JSON), st.integers(1, 4)
)
def test_any_result_message_is_logits_or_a_reason(message: dict[str, Any], rows: int) -> None:
    logits, why = engine._logits(message, rows)
    if logits is None:
        assert why
    else:
        assert logits.dtype == np.float32 and logits.shape[0] == rows
        assert logits.ndim == 2 and logits.shape[1] in (1, 2, 3)


# ---------------------------------------------------------------------------------------------
# A whole run whose model forges result lines

HONEST = """\
import torch
from safetensors.torch import load_file


class Detector(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.classifier = torch.nn.Linear(1, 2)

    def forward(self, x):
        return self.classifier(x.float().mean(dim=(1, 2, 3)).unsqueeze(1) / 255.0)


def load_model(weights_path, num_classes=2):
    model = Detector()
    model.load_state_dict(load_file(weights_path))
    return model
"""
# The static checks refuse this file; the zip is edited after the build, as an attacker would.
FORGER = HONEST.replace(
    "    def forward(self, x):\n",
    """\
    def forward(self, x):
        import json, os, stat
        line = {"index": 0, "ms": 0.0, "logits": [[9.0, -9.0]] * x.shape[0]}
        for fd in range(3, 64):
            try:
                if stat.S_ISFIFO(os.fstat(fd).st_mode) and not getattr(self, "forged", 0):
                    os.write(fd, b"garbage\\n" + (json.dumps(line) + "\\n").encode())
            except OSError:
                pass
        self.forged = 1
""",
)


def _swap_model(zip_path: Path, source: str) -> None:
    import zipfile

    edited = zip_path.with_name("edited.zip")
    with zipfile.ZipFile(zip_path) as old, zipfile.ZipFile(edited, "w") as new:
        for info in old.infolist():
            data = source.encode() if info.filename == "model.py" else old.read(info)
            new.writestr(info, data, compress_type=info.compress_type)
    edited.replace(zip_path)


def test_forged_result_lines_only_fail_the_forgers_batch(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("torch")
    pytest.importorskip("cv2")
    image_module = pytest.importorskip("PIL.Image")
    from safetensors.numpy import save_file

    (tmp_path / "model.py").write_text(HONEST)
    weights = {
        "classifier.weight": np.array([[-8.0], [8.0]], np.float32),
        "classifier.bias": np.array([4.0, -4.0], np.float32),
    }
    save_file(weights, str(tmp_path / "w.safetensors"))
    (tmp_path / "gas.toml").write_text(
        '[models.image]\narchitecture = { file = "model.py" }\n'
        'weights = { path = "w.safetensors" }\npreprocessing = { resize = [8, 8] }\n'
    )
    for klass, level in (("real", 20), ("synthetic", 230)):
        folder = tmp_path / "data" / "image" / klass
        folder.mkdir(parents=True)
        for i in range(5):
            pixels = np.full((12, 10, 3), level + i, dtype=np.uint8)
            image_module.fromarray(pixels).save(folder / f"{i}.png")
    assert _run(cli, ["build", "-C", str(tmp_path), "--no-smoke"], "gasbuild") == 0
    zip_path = tmp_path / "dist" / "image_detector.zip"
    args = ["eval", str(zip_path), "--data", str(tmp_path / "data"), "--json", "--batch-size", "2"]
    capsys.readouterr()
    assert _run(cli, [*args, "--no-cache"], "gasbuild") == 0
    honest = json.loads(capsys.readouterr().out)["results"][0]
    assert honest["errors"] == 0 and honest["accuracy"] == 1.0

    _swap_model(zip_path, FORGER)
    assert _run(cli, [*args, "--no-cache"], "gasbuild") == 0
    result = json.loads(capsys.readouterr().out)["results"][0]
    # Batch 0 (two real images) got a forged answer, then its real one: neither is believed.
    assert result["errors"] == 2 and result["samples"] == 8
    assert result["per_class"]["real"]["errors"] == 2
    assert result["accuracy"] == 1.0  # every other batch scored on the model's own logits


# ---------------------------------------------------------------------------------------------
# The data digest's stat record


def test_sample_digests_come_from_one_record_while_stats_hold(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import hashlib
    import time

    from gasbuild.cache import Cache

    cache = Cache(tmp_path / "cache")
    root = tmp_path / "data"
    files = []
    for i in range(6):
        path = root / "image" / "real" / f"{i}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(bytes([i]) * (100 + i))
        files.append(path)
    fresh = files[5]  # written just now: racy, so never recorded
    past = time.time() - 3600
    for path in files[:5]:
        os.utime(path, (past, past))
    want = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in files}
    assert engine.sample_digests(cache, root, files) == want
    assert len(list((tmp_path / "cache" / "stat").rglob("*.json"))) == 1  # one write

    hashed: list[Path] = []
    real_sha256 = engine._sha256

    def counting(path: Path) -> str:
        hashed.append(path)
        return real_sha256(path)

    monkeypatch.setattr(engine, "_sha256", counting)
    assert engine.sample_digests(cache, root, files) == want
    assert hashed == [fresh]
    files[2].write_bytes(b"changed")
    os.utime(files[2], (past, past))
    hashed.clear()
    digests = engine.sample_digests(cache, root, files)
    assert sorted(hashed) == sorted([files[2], fresh])
    assert digests[files[2]] == hashlib.sha256(b"changed").hexdigest()
