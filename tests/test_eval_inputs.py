"""What an eval reads, beyond frame folders on a local disk: video files decoded by OpenCV's
bundled FFmpeg, data behind fsspec URLs (s3 through moto's real server on loopback, file://,
hf:// offline), the layout errors, and the eval figures a push receipt records.

The detector and its training come from test_eval.py (one linear layer on the input's mean
magnitude); the zips are real gasbuild builds, scored through the CLI in the sandbox.
"""

from __future__ import annotations

import io
import json
import os
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_eval import LEVELS, MODEL_PY, train_weights

from conftest import run_cli
from gasbuild.cli import _run, cli
from gasbuild.eval import engine, media
from gasbuild.eval.data import Sample

cv2 = pytest.importorskip("cv2")
Image = pytest.importorskip("PIL.Image")

MANIFEST = """\
{head}
[models.image]
architecture = {{ file = "model.py" }}
weights = {{ path = "image.safetensors" }}
preprocessing = {{ resize = [32, 32] }}

[models.video]
architecture = {{ file = "model.py" }}
weights = {{ path = "video.safetensors" }}
preprocessing = {{ resize = [16, 16], num_frames = 4 }}
"""

# (extension, fourcc) that OpenCV's bundled FFmpeg writes: mp4v for mp4/mov/mkv, VP80 for
# webm, MJPG for avi. A pair this build cannot write is skipped (see ``writable``).
FORMATS = (("mp4", "mp4v"), ("mov", "mp4v"), ("webm", "VP80"), ("mkv", "mp4v"), ("avi", "MJPG"))
SIZE = (16, 16)
CODEC_TOLERANCE = 12.0  # mean absolute difference per channel value, lossy codecs at defaults
PER_CLASS = 8


@pytest.fixture(autouse=True, scope="module")
def _opencv_decodes() -> Iterator[None]:
    """The OpenCV path, which these tests compare against cv2's own decoding, even where decord
    (which media.py prefers, as the benchmark does) happens to be installed."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(sys.modules, "decord", None)
        yield


# ---------------------------------------------------------------------------------------------
# Clips


def frames_at(
    levels: list[float], rng: np.random.Generator, shape: tuple[int, int] = (30, 40)
) -> list[Any]:
    """One RGB frame per level: that mean value, a gentle wave and some noise (codec-friendly)."""
    h, w = shape
    xx = np.mgrid[0:h, 0:w][1]
    out = []
    for i, level in enumerate(levels):
        wave = 15 * np.sin(xx / 6.0 + i)[..., None] * np.array([1.0, 0.5, -1.0])
        out.append(np.clip(level + wave + rng.normal(0, 5, (h, w, 3)), 0, 255).astype(np.uint8))
    return out


def write_clip(path: Path, frames: list[Any], fps: float, fourcc: str) -> bool:
    """Encode RGB frames with cv2.VideoWriter; False when this OpenCV cannot write the pair."""
    path.parent.mkdir(parents=True, exist_ok=True)
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (w, h))
    if not writer.isOpened():
        return False
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    return path.is_file() and path.stat().st_size > 0


def read_back(path: Path) -> list[Any]:
    """Every frame as cv2 itself decodes the file, RGB: what the eval must feed, exactly."""
    capture = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    capture.release()
    return frames


def expected_input(frames: list[Any], indices: list[int], num_frames: int) -> Any:
    """The benchmark's clip: the chosen frames, the last repeated, each crop-resized; TCHW."""
    chosen = [frames[i] for i in indices]
    chosen += [chosen[-1]] * (num_frames - len(chosen))
    resized = [media.center_crop_resize(f, SIZE) for f in chosen]
    return np.transpose(np.stack(resized), (0, 3, 1, 2))


def save_frame_folder(folder: Path, frames: list[Any]) -> None:
    """Frames as lossless PNGs, named so that the numeric order is the clip's order."""
    folder.mkdir(parents=True, exist_ok=True)
    for index, frame in enumerate(frames):
        Image.fromarray(frame).save(folder / f"{index}.png")


def writable(tmp: Path) -> list[tuple[str, str]]:
    usable = []
    for ext, fourcc in FORMATS:
        probe = tmp / f"probe-{fourcc}.{ext}"
        if write_clip(probe, frames_at([100.0], np.random.default_rng(0)), 10, fourcc):
            usable.append((ext, fourcc))
        probe.unlink(missing_ok=True)
    return usable


@pytest.mark.parametrize(("ext", "fourcc"), FORMATS)
def test_video_file_is_decoded_as_cv2_reads_it(tmp_path: Path, ext: str, fourcc: str) -> None:
    rng = np.random.default_rng(1)
    originals = frames_at([40.0 + 30 * i for i in range(6)], rng)
    clip = tmp_path / f"clip.{ext}"
    if not write_clip(clip, originals, 10, fourcc):
        pytest.skip(f"this OpenCV cannot write {fourcc} into .{ext}")
    decoded = read_back(clip)
    assert len(decoded) == 6
    # the codec's loss is small, and every decoded frame is nearest its own original: order kept
    distance = np.array([[np.abs(d.astype(int) - o).mean() for o in originals] for d in decoded])
    assert list(distance.argmin(axis=1)) == list(range(6))
    assert distance.diagonal().max() < CODEC_TOLERANCE
    # the first num_frames frames, exactly as decoded; a short clip repeats its last frame
    first = media.load_video(clip, SIZE, 4, None)
    assert np.array_equal(first, expected_input(decoded, [0, 1, 2, 3], 4))
    padded = media.load_video(clip, SIZE, 9, None)
    assert np.array_equal(padded, expected_input(decoded, list(range(6)), 9))
    assert np.array_equal(padded[6], padded[5]) and np.array_equal(padded[8], padded[5])
    # the same frames as a frame folder give the same input
    save_frame_folder(tmp_path / "frames", decoded)
    assert np.array_equal(media.load_video(tmp_path / "frames", SIZE, 9, None), padded)


@settings(max_examples=12, deadline=None)
@given(
    fps=st.sampled_from([10, 24, 25, 30]),
    total=st.integers(1, 12),
    frame_rate=st.floats(1.0, 40.0),
    num_frames=st.integers(1, 6),
)
def test_frame_rate_samples_every_nth_frame(
    fps: int, total: int, frame_rate: float, num_frames: int
) -> None:
    """``process_video_bytes_sample``: every round(fps / frame_rate)-th frame, first num_frames."""
    with tempfile.TemporaryDirectory() as tmp:
        clip = Path(tmp) / "clip.mp4"
        levels = [20.0 + 18 * i for i in range(total)]
        assert write_clip(clip, frames_at(levels, np.random.default_rng(total)), fps, "mp4v")
        decoded = read_back(clip)
        step = max(1, round(fps / frame_rate))
        indices = list(range(0, len(decoded), step))[:num_frames]
        got = media.load_video(clip, SIZE, num_frames, frame_rate)
        assert np.array_equal(got, expected_input(decoded, indices, num_frames))


def test_declared_frame_rate_reaches_the_decoder(tmp_path: Path) -> None:
    """A zip whose model_config declares frame_rate is sampled at it (engine -> media)."""
    config = 'name: "v"\nmodality: "video"\npreprocessing:\n  resize: [16, 16]\n'
    config += "  num_frames: 3\n  frame_rate: 10.0\n"
    zip_path = tmp_path / "video_detector.zip"
    with zipfile.ZipFile(zip_path, "w") as archive:
        archive.writestr("model_config.yaml", config)
    info = engine.read_model_info(zip_path)
    assert (info.resize, info.num_frames, info.frame_rate) == (SIZE, 3, 10.0)
    clip = tmp_path / "clip.mp4"
    assert write_clip(
        clip, frames_at([10.0 * i for i in range(12)], np.random.default_rng(2)), 30, "mp4v"
    )
    got = engine.preprocess(Sample(clip, "real", "."), info)
    assert np.array_equal(got, expected_input(read_back(clip), [0, 3, 6], 3))


def test_truncated_video_file_is_a_media_error(tmp_path: Path) -> None:
    clip = tmp_path / "clip.mp4"
    assert write_clip(clip, frames_at([50.0, 90.0, 130.0], np.random.default_rng(3)), 10, "mp4v")
    (tmp_path / "cut.mp4").write_bytes(clip.read_bytes()[: clip.stat().st_size // 2])
    with pytest.raises(media.MediaError, match="cannot open this video"):
        media.load_video(tmp_path / "cut.mp4", SIZE, 4, None)


# ---------------------------------------------------------------------------------------------
# A built project (image and video models) and small datasets


def make_images(root: Path, per_class: int = 6, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    for index, klass in enumerate(("real", "synthetic")):
        folder = root / "image" / klass
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            level = (LEVELS["image"][index] + rng.uniform(-0.08, 0.08)) * 255
            pixels = np.clip(rng.normal(level, 15, (24 + i, 28, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(folder / f"{i}.png")


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("evalinputs")
    (root / "model.py").write_text(MODEL_PY)
    for modality in ("image", "video"):
        train_weights(root / f"{modality}.safetensors", LEVELS[modality])
    (root / "gas.toml").write_text(MANIFEST.format(head=""))
    assert _run(cli, ["build", "-C", str(root), "--no-smoke"], "gasbuild") == 0
    make_images(root / "data")
    return root


def eval_run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, Any, str]:
    """(exit code, the JSON on stdout, stderr) of ``gasbuild eval ... --json``."""
    code = _run(cli, ["eval", *args, "--json"], "gasbuild")
    captured = capsys.readouterr()
    return code, json.loads(captured.out), captured.err


def only_result(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, Any]:
    code, out, err = eval_run(capsys, *args)
    assert code == 0, err
    (result,) = out["results"]
    return dict(result)


FIGURES = ("samples", "errors", "skipped", "accuracy", "mcc", "brier", "sn34_score")


def test_video_files_score_exactly_as_their_frame_folders(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    usable = writable(tmp_path)
    assert ("mp4", "mp4v") in usable
    rng = np.random.default_rng(4)
    files, folders = tmp_path / "files", tmp_path / "folders"
    for index, klass in enumerate(("real", "synthetic")):
        for i in range(PER_CLASS):
            ext, fourcc = usable[i % len(usable)]
            level = (LEVELS["video"][index] + rng.uniform(-0.08, 0.08)) * 255
            length = 2 + i % 5  # 2..6 frames for num_frames = 4: some short, some cut
            clip = files / "video" / klass / f"clip{i}.{ext}"
            assert write_clip(clip, frames_at([level] * length, rng), 10, fourcc)
            decoded = read_back(clip)
            assert len(decoded) == length, clip.name
            save_frame_folder(folders / "video" / klass / f"clip{i}", decoded)
    video = str(project / "dist" / "video_detector.zip")
    from_files = only_result(capsys, video, "--data", str(files))
    from_folders = only_result(capsys, video, "--data", str(folders))
    assert from_files["samples"] == 2 * PER_CLASS and from_files["skipped"] == 0
    assert from_files["errors"] == 0 and from_files["accuracy"] >= 0.9
    assert from_files["data_sha256"] != from_folders["data_sha256"]
    # Brier is a sum over every P(AI): equal figures mean equal inputs, clip by clip
    assert {k: from_files[k] for k in FIGURES} == {k: from_folders[k] for k in FIGURES}


def test_corrupt_video_file_is_one_warning_line(project: Path, tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    data = tmp_path / "data"
    for index, klass in enumerate(("real", "synthetic")):
        for i in range(2):
            level = LEVELS["video"][index] * 255
            clip = data / "video" / klass / f"clip{i}.mp4"
            assert write_clip(clip, frames_at([level] * 5, rng), 10, "mp4v")
    good = (data / "video" / "real" / "clip0.mp4").read_bytes()
    (data / "video" / "real" / "truncated.mp4").write_bytes(good[: len(good) // 2])
    (data / "video" / "synthetic" / "junk.webm").write_bytes(b"\x1aE\xdf\xa3 not a webm")
    # a subprocess: FFmpeg and OpenCV write to file descriptor 2 from C, past any capture
    done = run_cli("eval", str(project / "dist" / "video_detector.zip"), "--data", str(data))
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert "Traceback" not in done.stderr
    for name in ("truncated.mp4", "junk.webm"):
        mentions = [line for line in lines if name in line]
        assert len(mentions) == 1 and mentions[0].startswith("warning: "), lines
        assert mentions[0].endswith("(skipped)")
    # nothing else but the per-class accuracy line: no FFmpeg or OpenCV chatter
    assert len(lines) == 3 and lines[-1].startswith("video: accuracy per class"), lines
    assert "video" in done.stdout and "4" in done.stdout


# ---------------------------------------------------------------------------------------------
# Data behind URLs


def test_s3_data_is_copied_once_then_read_from_the_cache(
    project: Path, s3_bucket: tuple[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    name, fs = s3_bucket
    fs.put(str(project / "data") + "/", f"{name}/sets/v1/", recursive=True)
    assert fs.find(f"{name}/sets/v1/image/real")
    image = str(project / "dist" / "image_detector.zip")
    local = only_result(capsys, image, "--data", str(project / "data"), "--no-cache")
    url = f"s3://{name}/sets/v1"
    first = only_result(capsys, image, "--data", url)
    assert first["data_sha256"] == local["data_sha256"]  # the same files, byte for byte
    assert {k: first[k] for k in FIGURES} == {k: local[k] for k in FIGURES}
    # the bucket is emptied: a second eval can only succeed from the cached copy
    fs.rm(f"{name}/sets", recursive=True)
    fs.invalidate_cache()
    assert not fs.find(f"{name}/sets")
    again = only_result(capsys, image, "--data", url)
    assert again["cached"] is True and again["data_sha256"] == first["data_sha256"]
    # gas.toml's [eval] data may name the URL too
    other = tmp_path / "urlproject"
    other.mkdir()
    for file in ("model.py", "image.safetensors", "video.safetensors"):
        (other / file).write_bytes((project / file).read_bytes())
    (other / "gas.toml").write_text(MANIFEST.format(head=f'[eval]\ndata = "{url}"\n'))
    configured = only_result(capsys, image, "-C", str(other))
    assert configured["data_sha256"] == first["data_sha256"]


@pytest.mark.parametrize("where", ["missing-bucket", "missing-prefix"])
def test_missing_s3_data_is_one_line_exit_2(
    project: Path, s3_bucket: tuple[str, Any], capsys: pytest.CaptureFixture[str], where: str
) -> None:
    name, fs = s3_bucket
    fs.pipe_file(f"{name}/other/image/real/0.png", b"x")
    url = f"s3://no-such-{name}/sets" if where == "missing-bucket" else f"s3://{name}/sets/v9"
    code, out, err = eval_run(capsys, str(project / "dist" / "image_detector.zip"), "--data", url)
    assert code == 2 and out["ok"] is False
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: data URL {url}: not found"), lines
    assert "<modality>/<class>" in lines[0]
    # nothing was kept: a later eval tries again
    assert not any((Path(os.environ["GASBUILD_CACHE_DIR"]) / "eval-data").glob("*/*"))


def test_a_signed_data_url_is_never_echoed_nor_cached(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--data`` is not checked like gas.toml's URLs (it is typed, not committed), but its
    query is masked in every message, and the cache keeps nothing of it."""
    secret = "Xamz0SignatureNotToBePrinted"
    image = str(project / "dist" / "image_detector.zip")
    url = f"{(project / 'data').as_uri()}?X-Amz-Signature={secret}"
    code, out, err = eval_run(capsys, image, "--data", url)
    assert code == 2 and out["ok"] is False and "X-Amz-Signature=***" in err
    assert secret not in err + json.dumps(out)
    cache = Path(os.environ["GASBUILD_CACHE_DIR"])
    assert all(secret.encode() not in p.read_bytes() for p in cache.rglob("*") if p.is_file())


def test_file_url_is_mirrored_like_any_url(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    image = str(project / "dist" / "image_detector.zip")
    local = only_result(capsys, image, "--data", str(project / "data"))
    mirrored = only_result(capsys, image, "--data", (project / "data").as_uri())
    assert mirrored["data_sha256"] == local["data_sha256"]
    mirrors = list((Path(os.environ["GASBUILD_CACHE_DIR"]) / "eval-data").iterdir())
    assert len(mirrors) == 1 and (mirrors[0] / ".complete").is_file()
    assert (mirrors[0] / "image" / "real" / "0.png").is_file()


def test_hf_url_offline_is_one_line_exit_2(project: Path) -> None:
    pytest.importorskip("huggingface_hub")
    url = "hf://datasets/example-org/example-set/eval"
    done = run_cli(
        "eval",
        str(project / "dist" / "image_detector.zip"),
        "--data",
        url,
        env={"HF_HUB_OFFLINE": "1", "HF_ENDPOINT": "http://127.0.0.1:9"},
    )
    assert done.returncode == 2
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: data URL {url}: cannot reach it")
    assert "offline" in lines[0] and "Traceback" not in done.stderr
    # online, but nothing listens where the hub should be
    done = run_cli(
        "eval",
        str(project / "dist" / "image_detector.zip"),
        "--data",
        url,
        env={"HF_HUB_OFFLINE": "0", "HF_ENDPOINT": "http://127.0.0.1:9"},
    )
    assert done.returncode == 2
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: data URL {url}: cannot reach it")


# ---------------------------------------------------------------------------------------------
# Layout errors through the CLI


@pytest.mark.parametrize(
    ("layout", "message"),
    [
        ({"audio/real/0.wav": b""}, "no image folder in the data directory"),
        ({"image/real/notes.txt": b"x"}, "image/real: no image sample in this class folder"),
        ({"image/real/0.png": None, "image/fakes/0.png": None}, "unknown class folder fakes"),
        ({"image/real/0.png": None, "image/synthetic/.hidden.png": None}, "no image sample"),
        ({"real/0.png": None}, "data holds class folders: pass the folder above it"),
    ],
)
def test_layout_errors_are_one_line_exit_2(
    project: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    layout: dict[str, bytes | None],
    message: str,
) -> None:
    png = io.BytesIO()
    Image.new("RGB", (8, 8)).save(png, format="PNG")
    for relative, content in layout.items():
        path = tmp_path / "data" / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(png.getvalue() if content is None else content)
    image = str(project / "dist" / "image_detector.zip")
    code, out, err = eval_run(capsys, image, "--data", str(tmp_path / "data"))
    assert code == 2 and out["ok"] is False
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], lines
    assert lines[0].endswith(")")  # the hint: what to do about it


# ---------------------------------------------------------------------------------------------
# The eval's figures in the push receipt and in `gasbuild status`

PUSH_MANIFEST = """\
[wallet]
name = "miner"
hotkey = "{hotkey}"
path = "{wallets}"

[eval]
data = "data"
{gate}

[models.image]
architecture = {{ file = "model.py" }}
weights = {{ path = "image.safetensors" }}
preprocessing = {{ resize = [32, 32] }}
"""


def _push_project(project: Path, root: Path, wallets: Path, hotkey: str, gate: str) -> Path:
    root.mkdir()
    for name in ("model.py", "image.safetensors"):
        (root / name).write_bytes((project / name).read_bytes())
    (root / "data").symlink_to(project / "data")
    (root / "dist").mkdir()  # as if built here: byte-identical to the build in ``project``
    (root / "dist" / "image_detector.zip").write_bytes(
        (project / "dist" / "image_detector.zip").read_bytes()
    )
    (root / "gas.toml").write_text(PUSH_MANIFEST.format(hotkey=hotkey, wallets=wallets, gate=gate))
    return root


def _push_json(group: Any, capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, Any]:
    code = _run(group, list(args), "gasbuild")
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return dict(json.loads(captured.out))


def test_push_receipt_records_the_gate_eval(
    project: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pytest.importorskip("bittensor_wallet")
    import click

    from fakes.gas_api import serve_gas_api
    from fakes.publishing import make_wallet
    from gasbuild.blobs import sha256_file
    from gasbuild.cli.push import register
    from gasbuild.manifest import Project
    from gasbuild.publish.push import PushItem, no_checks
    from gasbuild.publish.receipts import FORMAT_VERSION, ReceiptStore
    from gasbuild.publish.status import hotkey_name
    from gasbuild.submission import Modality

    zip_path = project / "dist" / "image_detector.zip"
    digest = sha256_file(zip_path)

    def built(proj: Project, only: frozenset[Modality] | None) -> list[PushItem]:
        path = proj.out_dir / zip_path.name
        size = path.stat().st_size
        return [PushItem("image", path, digest, size, hotkey_name(proj, "image"))]

    wallets = tmp_path / "wallets"
    addresses = make_wallet(wallets, "miner", ("gated", "ungated"))
    chain_file = tmp_path / "chain.json"
    chain_file.write_text(json.dumps({"registered": sorted(addresses.values())}))
    monkeypatch.setenv("GASBUILD_CHAIN", f"memory:{chain_file}")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    group, discriminator = click.Group("gasbuild"), click.Group("d")
    register(group, discriminator, checker=no_checks, builder=built)

    gated = _push_project(project, tmp_path / "gated", wallets, "gated", "min_score = 0.3")
    with serve_gas_api() as server:
        monkeypatch.setenv("GASBUILD_UPLOAD_URL", server.base_url)
        report = _push_json(group, capsys, "push", "-C", str(gated), "--yes", "--json")
        assert server.total_confirmations == 1
    (model,) = report["models"]
    receipt = ReceiptStore(gated / ".gasbuild").load(digest)
    assert receipt is not None and receipt.version == FORMAT_VERSION == 3
    assert receipt.eval is not None and model["eval"] == receipt.eval
    figures = receipt.eval
    assert set(figures) == {
        "sn34_score", "mcc", "brier", "accuracy", "samples", "errors", "data_sha256", "when",
    }  # fmt: skip
    assert 0.3 <= figures["sn34_score"] <= 1 and figures["samples"] == 12
    assert figures["accuracy"] >= 0.9 and len(figures["data_sha256"]) == 64 and figures["when"]
    on_disk = json.loads((gated / ".gasbuild" / "receipts" / f"{digest}.json").read_text())
    assert on_disk["eval"] == figures and on_disk["version"] == 3
    # the same figures as `gasbuild eval` reports for that zip and data
    scored = only_result(capsys, str(zip_path), "--data", str(project / "data"))
    assert {k: scored[k] for k in ("sn34_score", "mcc", "brier", "accuracy", "data_sha256")} == {
        k: figures[k] for k in ("sn34_score", "mcc", "brier", "accuracy", "data_sha256")
    }
    status = _push_json(group, capsys, "status", "-C", str(gated), "--json")["models"]
    assert status[0]["eval"] == f"{figures['sn34_score']:.4f}"
    assert status[0]["last_eval"] == figures
    # the receipt's copy stands in when the local eval record is gone
    (gated / ".gasbuild" / "eval" / f"{digest}.json").unlink()
    status = _push_json(group, capsys, "status", "-C", str(gated), "--json")["models"]
    assert status[0]["last_eval"] == figures

    # --no-eval and no eval of this zip here: the receipt says so (null), status too
    ungated = _push_project(project, tmp_path / "ungated", wallets, "ungated", "min_score = 0.3")
    with serve_gas_api() as server:
        monkeypatch.setenv("GASBUILD_UPLOAD_URL", server.base_url)
        args = ("push", "-C", str(ungated), "--yes", "--json", "--no-eval")
        report = _push_json(group, capsys, *args)
        assert server.total_confirmations == 1
    assert report["models"][0]["eval"] is None
    receipt = ReceiptStore(ungated / ".gasbuild").load(digest)
    assert receipt is not None and receipt.confirmed and receipt.eval is None
    assert not (ungated / ".gasbuild" / "eval").exists()
    status = _push_json(group, capsys, "status", "-C", str(ungated), "--json")["models"]
    assert status[0]["eval"] is None and status[0]["last_eval"] is None


def test_older_receipts_read_without_eval(tmp_path: Path) -> None:
    from gasbuild.publish.receipts import Receipt, ReceiptStore

    store = ReceiptStore(tmp_path)
    store.root.mkdir(parents=True)
    old = {"sha256": "a" * 64, "modality": "image", "hotkey_ss58": "5F", "netuid": 34}
    old.update({"size": 9, "model_id": "17", "confirmed": True, "version": 2})
    store.path("a" * 64).write_text(json.dumps(old))
    loaded = store.load("a" * 64)
    assert loaded is not None and loaded.eval is None and loaded.model_id == "17"
    assert loaded.version == 3 and loaded.confirmed
    loaded.eval = {"sn34_score": 0.5}
    store.save(loaded)
    assert Receipt.from_json(json.loads(store.path("a" * 64).read_text())).eval == loaded.eval
