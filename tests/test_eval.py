"""gasbuild eval / predict: the benchmark's arithmetic, its preprocessing, and whole runs.

A tiny detector (one linear layer on the input's mean magnitude) is trained here to separate
generated real/synthetic data of all three modalities, built into real safetensors zips by
gasbuild, and scored through the CLI in the sandbox.
"""

from __future__ import annotations

import json
import math
import wave
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gasbuild.cli import _run, cli
from gasbuild.eval import audio, media, metrics
from gasbuild.eval.data import DataError, discover

torch = pytest.importorskip("torch")
cv2 = pytest.importorskip("cv2")
Image = pytest.importorskip("PIL.Image")

MODEL_PY = """\
import torch
from safetensors.torch import load_file


class Detector(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.classifier = torch.nn.Linear(1, 2)

    def forward(self, x):
        x = x.float()
        if x.dim() > 2:
            x = x / 255.0
        return self.classifier(x.abs().flatten(1).mean(dim=1, keepdim=True))


def load_model(weights_path, num_classes=2):
    model = Detector()
    model.load_state_dict(load_file(weights_path))
    return model
"""

MANIFEST = """\
[eval]
data = "data"
{gate}

[models.image]
architecture = {{ file = "model.py" }}
weights = {{ path = "image.safetensors" }}
preprocessing = {{ resize = [32, 32] }}

[models.video]
architecture = {{ file = "model.py" }}
weights = {{ path = "video.safetensors" }}
preprocessing = {{ resize = [16, 16], num_frames = 4 }}

[models.audio]
architecture = {{ file = "model.py" }}
weights = {{ path = "audio.safetensors" }}
"""

# Mean magnitude of a sample's input, per class: what the detector learns to tell apart.
LEVELS = {"image": (0.25, 0.7), "video": (0.25, 0.7), "audio": (0.05, 0.3)}
PER_CLASS = 12


# ---------------------------------------------------------------------------------------------
# Metrics against hand computation


def _from_p(p: float) -> metrics.Prediction:
    return metrics.process_output(np.array([math.log(p / (1 - p))], dtype=np.float32))


def test_metrics_on_a_hand_computed_case() -> None:
    labels = [0, 0, 1, 1, 1]
    preds = [_from_p(p) for p in (0.2, 0.6, 0.9, 0.4, 0.7)]
    scores = metrics.score(labels, preds)
    # tp = 2 (0.9, 0.7), tn = 1 (0.2), fp = 1 (0.6), fn = 1 (0.4)
    assert scores.mcc == pytest.approx((2 * 1 - 1 * 1) / math.sqrt(3 * 3 * 2 * 2))
    assert scores.brier == pytest.approx((0.04 + 0.36 + 0.01 + 0.36 + 0.09) / 5, abs=1e-6)
    expected = math.sqrt(((1 / 6 + 1) / 2) ** 1.2 * ((0.25 - 0.172) / 0.25) ** 1.8)
    assert scores.sn34_score == pytest.approx(expected, abs=1e-6)
    assert scores.accuracy == pytest.approx(3 / 5)


def test_process_output_as_the_benchmark() -> None:
    two = metrics.process_output(np.array([1.0, 3.0], dtype=np.float32))
    assert two.predicted == 1 and two.p_ai == pytest.approx(1 / (1 + math.exp(-2)), rel=1e-6)
    three = metrics.process_output(np.array([2.0, 1.0, 1.5], dtype=np.float32))
    assert three.predicted == 0 and three.p_ai == pytest.approx(1 - three.probs[0])
    one = metrics.process_output(np.array([0.0], dtype=np.float32))
    assert one.predicted == 0 and one.p_ai == 0.5  # p > 0.5 is AI; exactly 0.5 is real


def test_empty_run_scores_as_recording_py() -> None:
    assert metrics.score([], []) == metrics.Scores(0, 0.0, 0.0, 0.25, 0.0)
    assert metrics.sn34(-1.0, 0.25) == pytest.approx(1e-6)  # the floor, square-rooted


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 1), st.floats(0.0, 1.0)), min_size=1, max_size=40))
def test_metrics_match_independent_formulas(rows: list[tuple[int, float]]) -> None:
    labels = [label for label, _ in rows]
    probs = [p for _, p in rows]
    predicted = [int(p > 0.5) for p in probs]
    preds = [metrics.Prediction(int(p > 0.5), p, (p,)) for p in probs]
    scores = metrics.score(labels, preds)
    y, yhat = np.array(labels, float), np.array(predicted, float)
    if y.std() > 0 and yhat.std() > 0:  # MCC is Pearson's r of two binary vectors
        assert scores.mcc == pytest.approx(float(np.corrcoef(y, yhat)[0, 1]), abs=1e-9)
    else:
        assert scores.mcc == 0.0
    clipped = np.clip(np.array(probs), 1e-7, 1 - 1e-7)
    assert scores.brier == pytest.approx(float(np.mean((clipped - y) ** 2)), abs=1e-12)
    assert 1e-6 - 1e-12 <= scores.sn34_score <= 1.0
    assert scores.accuracy == pytest.approx(float(np.mean(y == yhat)))


# ---------------------------------------------------------------------------------------------
# Preprocessing


@settings(max_examples=25, deadline=None)
@given(st.integers(4, 90), st.integers(4, 90), st.integers(2, 40), st.integers(2, 40))
def test_center_crop_resize_matches_resize_shortest_edge(h: int, w: int, th: int, tw: int) -> None:
    image = np.random.default_rng(h * w).integers(0, 256, (h, w, 3), dtype=np.uint8)
    scale = min(h / th, w / tw)
    ch, cw = min(round(scale * th), h), min(round(scale * tw), w)
    if ch < 1 or cw < 1:  # cv2.resize raises on an empty crop: the benchmark skips the sample
        with pytest.raises(media.MediaError):
            media.center_crop_resize(image, (th, tw))
        return
    i, j = (h - ch) // 2, (w - cw) // 2
    want = cv2.resize(image[i : i + ch, j : j + cw], (tw, th), interpolation=cv2.INTER_LINEAR)
    assert np.array_equal(media.center_crop_resize(image, (th, tw)), want)


def test_audio_crop_pad_and_stereo_mix() -> None:
    long = np.arange(100_000, dtype=np.float32)
    assert audio.fit_length(long, 96_000)[0] == 2_000  # centre crop
    short = audio.fit_length(np.ones(10, np.float32), 96_000)
    assert short.shape == (96_000,) and short[:10].sum() == 10 and short[10:].sum() == 0
    stereo = np.array([[0.5, 0.25]], dtype=np.float32)
    assert audio.downmix(stereo)[0] == pytest.approx(0.75 * math.sqrt(0.5))


def test_resampler_keeps_a_tone() -> None:
    rate = 22_050
    t = np.arange(rate) / rate
    out = audio.resample(np.sin(2 * np.pi * 440 * t).astype(np.float32), rate, 16_000)
    assert abs(out.shape[0] - 16_000) <= 1
    want = np.sin(2 * np.pi * 440 * np.arange(out.shape[0]) / 16_000)
    assert np.max(np.abs(out[100:-100] - want[100:-100])) < 1e-2


def test_frames_in_numeric_order(tmp_path: Path) -> None:
    for name in ("10.png", "2.png", "1.png", "cover.png"):
        (tmp_path / name).write_bytes(b"")
    assert [p.name for p in media.clip_frames(tmp_path)] == [
        "1.png",
        "2.png",
        "10.png",
        "cover.png",
    ]


# ---------------------------------------------------------------------------------------------
# Data layout


def test_layout_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no image folder"):
        discover(tmp_path, "image")
    (tmp_path / "image" / "real").mkdir(parents=True)
    with pytest.raises(DataError, match="no image sample in this class folder"):
        discover(tmp_path, "image")
    (tmp_path / "image" / "fake").mkdir()
    with pytest.raises(DataError, match="unknown class folder fake"):
        discover(tmp_path, "image")


# ---------------------------------------------------------------------------------------------
# Whole runs


def _write_wav(path: Path, samples: np.ndarray, rate: int, channels: int) -> None:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(channels)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes((samples * 32767).astype("<i2").tobytes())


def make_data(root: Path) -> None:
    """A few dozen files per modality: pixel/amplitude level decides the class."""
    rng = np.random.default_rng(0)
    for index, klass in enumerate(("real", "synthetic")):
        for i in range(PER_CLASS):
            level = LEVELS["image"][index] + rng.uniform(-0.1, 0.1)
            shape = (20 + i, 30 + 2 * i)
            pixels = np.clip(rng.normal(level * 255, 20, (*shape, 3)), 0, 255).astype(np.uint8)
            folder = root / "image" / klass / ("a" if i % 2 else "b")
            folder.mkdir(parents=True, exist_ok=True)
            mode = ("RGB", "L", "RGBA")[i % 3]
            Image.fromarray(pixels).convert(mode).save(folder / f"{i}.png")
            clip = root / "video" / klass / f"clip{i}"
            clip.mkdir(parents=True)
            for f in range(2 + i % 4):  # short clips repeat their last frame
                frame = np.clip(rng.normal(level * 255, 20, (24, 18, 3)), 0, 255)
                Image.fromarray(frame.astype(np.uint8)).save(clip / f"{f}.png")
            amp = LEVELS["audio"][index] * rng.uniform(0.8, 1.2)
            rate, channels = ((16_000, 1), (22_050, 2), (8_000, 1))[i % 3]
            n = int(rate * rng.uniform(5.7, 7.0))  # padding to 6 s barely dilutes the level
            wave_ = (amp + 0.01 * rng.normal(size=n * channels)).clip(-1, 1)
            (root / "audio" / klass).mkdir(parents=True, exist_ok=True)
            _write_wav(root / "audio" / klass / f"{i}.wav", wave_, rate, channels)
    (root / "image" / "real" / "a" / "broken.png").write_bytes(b"\x89PNG not really")


def train_weights(path: Path, levels: tuple[float, float]) -> None:
    """Logistic regression on the mean magnitude, a few hundred steps: well above chance."""
    from safetensors.torch import save_file

    generator = torch.Generator().manual_seed(0)
    head = torch.nn.Linear(1, 2)
    optimiser = torch.optim.Adam(head.parameters(), lr=0.1)
    for _ in range(300):
        labels = torch.randint(0, 2, (64,), generator=generator)
        centres = torch.tensor(levels)[labels]
        x = (centres + (torch.rand(64, generator=generator) - 0.5) * 0.2).unsqueeze(1)
        loss = torch.nn.functional.cross_entropy(head(x), labels)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    state = {f"classifier.{k}": v.detach().contiguous() for k, v in head.state_dict().items()}
    save_file(state, str(path))


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("evalproject")
    (root / "model.py").write_text(MODEL_PY)
    for modality, levels in LEVELS.items():
        train_weights(root / f"{modality}.safetensors", levels)
    (root / "gas.toml").write_text(MANIFEST.format(gate=""))
    make_data(root / "data")
    assert _run(cli, ["build", "-C", str(root), "--no-smoke"], "gasbuild") == 0
    return root


def _eval_json(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, dict[str, object]]:
    code = _run(cli, ["eval", *args, "--json"], "gasbuild")
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return {r["modality"]: r for r in json.loads(captured.out)["results"]}


def test_eval_beats_chance_then_hits_the_cache(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    first = _eval_json(capsys, "-C", str(project))
    assert set(first) == {"image", "video", "audio"}
    for modality, result in first.items():
        assert result["samples"] == 2 * PER_CLASS and result["errors"] == 0, modality
        assert result["accuracy"] >= 0.9 and result["mcc"] > 0.8, (modality, result)
        assert result["sn34_score"] > 0.5 and result["cached"] is False
    assert first["image"]["skipped"] == 1
    assert first["image"]["skipped_files"][0].startswith("image/real/a/broken.png")
    assert set(first["image"]["per_folder"]) == {"real/a", "real/b", "synthetic/a", "synthetic/b"}

    def no_child(*args: object, **kwargs: object) -> None:
        raise AssertionError("a cached eval started the model's child")

    def no_media(*args: object, **kwargs: object) -> None:
        raise AssertionError("a cached eval decoded media")

    monkeypatch.setattr("gasbuild.eval.engine.run_child", no_child)
    monkeypatch.setattr("gasbuild.eval.engine.preprocess", no_media)
    again = _eval_json(capsys, "-C", str(project))
    for modality, result in again.items():
        assert result["cached"] is True
        assert {k: v for k, v in result.items() if k != "cached"} == {
            k: v for k, v in first[modality].items() if k != "cached"
        }


def test_eval_a_zip_with_compare_and_limit(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    image = str(project / "dist" / "image_detector.zip")
    code = _run(
        cli,
        ["eval", image, "--data", str(project / "data"), "--compare", image, "--limit", "4"],
        "gasbuild",
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert captured.out.count("image_detector.zip") == 2
    assert max(len(line) for line in captured.out.splitlines()) <= 80


def test_predict_prints_probabilities(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    image = project / "dist" / "image_detector.zip"
    files = [project / "data" / "image" / k / "b" / "0.png" for k in ("real", "synthetic")]
    code = _run(cli, ["predict", str(image), *map(str, files), "--json"], "gasbuild")
    captured = capsys.readouterr()
    assert code == 0, captured.err
    rows = json.loads(captured.out)["files"]
    assert [r["verdict"] for r in rows] == ["real", "AI"]
    assert rows[0]["p_ai"] < 0.5 < rows[1]["p_ai"]
    assert sum(rows[0]["probs"]) == pytest.approx(1.0, abs=1e-6)


def test_missing_modality_folder_is_one_line(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "image").mkdir()
    image = str(project / "dist" / "audio_detector.zip")
    assert _run(cli, ["eval", image, "--data", str(tmp_path)], "gasbuild") == 2
    err = capsys.readouterr().err
    assert "no audio folder" in err and "Traceback" not in err


def test_push_gate_refuses_before_any_upload(
    project: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pytest.importorskip("bittensor_wallet")
    import click

    from fakes.gas_api import serve_gas_api
    from gasbuild.blobs import sha256_file
    from gasbuild.cli.push import register
    from gasbuild.manifest import Project
    from gasbuild.publish.push import PushItem, no_checks
    from gasbuild.publish.status import hotkey_name
    from gasbuild.submission import Modality, zip_name

    root = tmp_path / "gated"
    root.mkdir()
    for name in ("model.py", "image.safetensors", "video.safetensors", "audio.safetensors"):
        (root / name).write_bytes((project / name).read_bytes())
    (root / "gas.toml").write_text(MANIFEST.format(gate="min_score = 1.0"))
    (root / "data").symlink_to(project / "data")

    def built(proj: Project, only: frozenset[Modality] | None) -> list[PushItem]:
        path = project / "dist" / zip_name("image")
        return [
            PushItem(
                "image", path, sha256_file(path), path.stat().st_size, hotkey_name(proj, "image")
            )
        ]

    group, discriminator = click.Group("gasbuild"), click.Group("d")
    register(group, discriminator, checker=no_checks, builder=built)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    with serve_gas_api() as server:
        monkeypatch.setenv("GASBUILD_UPLOAD_URL", server.base_url)
        code = _run(group, ["push", "-C", str(root), "--yes"], "gasbuild")
        err = capsys.readouterr().err
        assert code == 2, err
        assert "push refused" in err and "min_score 1" in err and "sn34 score 0." in err
        assert server.calls == {}
