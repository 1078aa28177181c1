"""gasbuild eval against numbers from a run of the network's own code (gasbench, kept outside
this repository): each test pins a difference that run found and gasbuild now matches.

The expected values below are plain numbers recorded from gasbench's path (its ``ffmpeg -ac 1
-ar 16000 -f f32le`` decoder, ``process_model_output`` and ``Metrics``) on the inputs built
here from formulas; no gasbench code is involved.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest

from gasbuild.eval import audio, engine, media, metrics
from gasbuild.eval.data import Sample

cv2 = pytest.importorskip("cv2")
Image = pytest.importorskip("PIL.Image")
soundfile = pytest.importorskip("soundfile")

# ---------------------------------------------------------------------------------------------
# Audio: libswresample's resampler, as ffmpeg ran it


def signal(n: int, rate: int, channels: int) -> np.ndarray:
    """A tone plus a fast cosine per channel, float32 ``[n, channels]``."""
    t = np.arange(n)
    columns = [
        0.5 * np.sin(2 * np.pi * 440.0 * t / rate) + 0.25 * np.cos(0.9 * t + c)
        for c in range(channels)
    ]
    return np.stack(columns, 1).astype(np.float32)


# (rate, channels, input samples): output length and {index: ffmpeg's output sample}, with
# both edges (swresample mirrors the signal at the start and reflects it at the end).
FFMPEG_OUTPUT = {
    (8000, 1, 400): (800, {0: 0.25, 1: 0.27980172634124756, 2: 0.3247714638710022,
                           400: -0.14961501955986023, 798: -0.025669140741229057,
                           799: -0.026695724576711655}),
    (22050, 2, 2205): (1600, {0: 0.2629639506340027, 1: 0.07214370369911194,
                              2: -0.06844206899404526, 800: 0.31027185916900635,
                              1598: -0.5575871467590332, 1599: -0.1452244073152542}),
    (44100, 1, 4410): (1600, {0: 0.2662602365016937, 1: -0.11407119035720825,
                              2: 0.23227736353874207, 800: 0.13789725303649902,
                              1598: -0.003173074685037136, 1599: -0.09475831687450409}),
    (48000, 2, 960): (320, {0: 0.15557363629341125, 1: -0.13350525498390198,
                            2: 0.4895315170288086, 160: 0.5693649649620056,
                            318: -0.7549618482589722, 319: -0.5202768445014954}),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(FFMPEG_OUTPUT))
def test_numpy_resampler_matches_ffmpeg(case: tuple[int, int, int]) -> None:
    rate, channels, n = case
    length, expected = FFMPEG_OUTPUT[case]
    out = audio.to_mono_16k(signal(n, rate, channels), rate)
    assert out.dtype == np.float32 and out.shape == (length,)
    for index, value in expected.items():
        assert out[index] == pytest.approx(value, abs=1e-6), index


@pytest.mark.parametrize(
    ("rate", "length"),
    [(8000, 32), (11025, 32), (22050, 46), (32000, 66), (44100, 92), (48000, 100)],
)
def test_filter_length_as_swresample(rate: int, length: int) -> None:
    # ceil(32 / min(16000 * 0.97 / rate, 1)) rounded up to even: 44100 gives 90.9 -> 91 -> 92;
    # upsampling keeps 32 taps (no cutoff below the input's Nyquist frequency).
    bank, taps, center = audio.filter_bank(rate, 16_000)
    assert (taps, center) == (length, (length - 1) // 2)
    assert bank.dtype == np.float32 and bank.shape[1] == length
    assert float(bank[0].astype(np.float64).sum()) == pytest.approx(1.0, abs=1e-6)


def test_stereo_is_resampled_then_mixed_in_float32() -> None:
    stereo = np.array([[0.5, 0.25], [0.1, -0.3]], dtype=np.float32)
    c = np.float32(np.sqrt(0.5))
    assert np.array_equal(audio.downmix(stereo), stereo[:, 0] * c + stereo[:, 1] * c)
    at_16k = audio.to_mono_16k(stereo, 16_000)
    assert at_16k[0] == np.float32(0.5) * c + np.float32(0.25) * c


def test_integer_wav_scaled_as_swresample(tmp_path: Path) -> None:
    import wave

    path = tmp_path / "s24.wav"
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(3)
        out.setframerate(16_000)
        out.writeframes(bytes([0, 0, 0x80, 0xFF, 0xFF, 0x7F, 0, 0, 0x40]))
    samples, rate = audio._read_wav(path)
    assert rate == 16_000
    assert samples[:, 0].tolist() == [-1.0, (2**23 - 1) / 2**23, 0.5]


def _write(path: Path, x: np.ndarray, rate: int) -> Path:
    soundfile.write(str(path), x, rate, subtype="FLOAT")
    return path


@pytest.fixture
def ffmpeg() -> str:
    found = audio.ffmpeg_executable()
    if found is None:
        pytest.skip("no ffmpeg on PATH and no imageio-ffmpeg")
    return found[0]


@pytest.mark.parametrize("case", [(22050, 2, 2205), (8000, 1, 400)])
def test_ffmpeg_path_decodes_as_the_benchmark(
    ffmpeg: str, tmp_path: Path, case: tuple[int, int, int]
) -> None:
    rate, channels, n = case
    length, expected = FFMPEG_OUTPUT[case]
    path = _write(tmp_path / "clip.wav", signal(n, rate, channels), rate)
    out = audio.load_audio(path)
    assert out.shape == (96_000,) and out.dtype == np.float32
    assert not out[length:].any()  # zero padding at the end
    for index, value in expected.items():
        assert out[index] == pytest.approx(value, abs=1e-5), index


def test_ffmpeg_on_path_comes_first_then_imageio(
    ffmpeg: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    link = tmp_path / "bin" / "ffmpeg"
    link.parent.mkdir()
    link.symlink_to(ffmpeg)
    monkeypatch.setenv("PATH", str(link.parent))
    assert audio.ffmpeg_executable() == (str(link), "PATH")
    assert media.decoders()["audio"] == "ffmpeg CLI (PATH)"
    monkeypatch.setenv("PATH", str(tmp_path / "nowhere"))
    pytest.importorskip("imageio_ffmpeg")
    found = audio.ffmpeg_executable()
    assert found is not None and found[1].startswith("imageio-ffmpeg")


def test_compressed_audio_through_ffmpeg(ffmpeg: str, tmp_path: Path) -> None:
    import subprocess

    source = _write(tmp_path / "src.wav", signal(3 * 22050, 22050, 2), 22050)
    for name, codec in (("a.m4a", "aac"), ("a.mp3", "libmp3lame"), ("a.ogg", "libvorbis")):
        target = tmp_path / name
        done = subprocess.run(
            [ffmpeg, "-loglevel", "error", "-i", str(source), "-c:a", codec, str(target)],
            capture_output=True,
            check=False,
        )
        if done.returncode != 0:  # this ffmpeg build lacks the encoder
            continue
        out = audio.load_audio(target)
        assert out.shape == (96_000,)
        assert 0.1 < float(np.abs(out[:40_000]).mean()) < 1.0, name


def test_without_ffmpeg_m4a_is_a_skipped_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(audio, "ffmpeg_executable", lambda: None)
    path = tmp_path / "voice.m4a"
    path.write_bytes(b"\0\0\0\x20ftypM4A ")
    with pytest.raises(media.MediaError, match="needs an ffmpeg"):
        audio.load_audio(path)
    assert media.decoders()["audio"].endswith("+ gasbuild resampler")
    wav = _write(tmp_path / "a.wav", signal(400, 8000, 1), 8000)
    length, expected = FFMPEG_OUTPUT[(8000, 1, 400)]
    assert audio.load_audio(wav)[length // 2] == pytest.approx(expected[400], abs=1e-6)


# ---------------------------------------------------------------------------------------------
# Images and frames


def test_any_pillow_failure_skips_the_image(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "big.png"
    Image.fromarray(np.zeros((20, 20, 3), dtype=np.uint8)).save(path)
    # 400 pixels > 2 x 100: Pillow raises DecompressionBombError, which is not an OSError
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    with pytest.raises(media.MediaError, match="DecompressionBombError"):
        media.load_image(path, (32, 32))


def test_a_crop_of_no_pixels_skips() -> None:
    # 1 x 1000 to 224 x 2: scale = 1/224, crop width round(2/224) = 0; cv2.resize would raise
    with pytest.raises(media.MediaError, match="no crop"):
        media.center_crop_resize(np.zeros((1, 1000, 3), np.uint8), (224, 2))
    assert media.center_crop_resize(np.zeros((1, 900, 3), np.uint8), (224, 224)).shape == (
        224,
        224,
        3,
    )


def test_frames_without_numbers_sort_by_stem_and_case(tmp_path: Path) -> None:
    for name in ("b.png", "a-b.png", "a.png", "c.PNG", "d.Png"):
        (tmp_path / name).write_bytes(b"")
    # stems a < a-b < b < c; by file name "a-b.png" would come first ('-' < '.'); the
    # benchmark's glob matches .png and .PNG, never .Png
    assert [p.name for p in media.clip_frames(tmp_path)] == ["a.png", "a-b.png", "b.png", "c.PNG"]


def test_a_clip_mixing_numbered_and_named_frames_is_skipped(tmp_path: Path) -> None:
    clip = tmp_path / "clip"
    clip.mkdir()
    for name in ("1.png", "2.png", "cover.png"):
        cv2.imwrite(str(clip / name), np.full((8, 8, 3), 100, np.uint8))
    with pytest.raises(media.MediaError, match="mix numbered and unnumbered"):
        media.load_video(clip, (8, 8), 4, None)
    (clip / "cover.png").unlink()
    assert media.load_video(clip, (8, 8), 4, None).shape == (4, 3, 8, 8)


# ---------------------------------------------------------------------------------------------
# The config and the arithmetic


def test_max_frames_is_read_when_num_frames_is_absent(tmp_path: Path) -> None:
    path = tmp_path / "video_detector.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(
            "model_config.yaml",
            "modality: video\npreprocessing:\n  resize: [16, 24]\n  max_frames: 8\n",
        )
    info = engine.read_model_info(path)
    assert (info.resize, info.num_frames) == ((16, 24), 8)


LABELS = [0, 1, 1, 1, 0, 1]
THREE_CLASS = [[2.0, 0.5, -1.0], [0.1, 0.3, 0.2], [-1.0, 2.0, 0.5],
               [0.0, 0.0, 3.0], [1.5, 1.4, 1.3], [-0.5, -0.2, 0.9]]  # fmt: skip
ONE_LOGIT = [[0.8], [-2.0], [3.0], [-0.1], [0.0], [1.2]]


@pytest.mark.parametrize(
    ("logits", "accuracy", "mcc", "brier", "sn34"),
    [
        (THREE_CLASS, 1.0, 1.0, 0.09412829871149075, 0.653648908410385),
        (ONE_LOGIT, 0.5, 0.0, 0.305550232884718, 1e-06),
    ],
)
def test_metrics_equal_the_reference_run(
    logits: list[list[float]], accuracy: float, mcc: float, brier: float, sn34: float
) -> None:
    preds = [metrics.process_output(np.array(row, dtype=np.float32)) for row in logits]
    got = metrics.score(LABELS, preds)
    assert (got.accuracy, got.mcc) == (accuracy, mcc)
    assert got.brier == pytest.approx(brier, abs=1e-15)
    assert got.sn34_score == pytest.approx(sn34, abs=1e-15)


def test_preprocess_dispatches_audio_through_the_audio_module(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(audio, "ffmpeg_executable", lambda: None)
    wav = _write(tmp_path / "a.wav", signal(2205, 22050, 2), 22050)
    info = engine.ModelInfo("audio", (224, 224), 16, None)
    out = engine.preprocess(Sample(wav, "real", "."), info)
    _, expected = FFMPEG_OUTPUT[(22050, 2, 2205)]
    assert out.shape == (96_000,) and out[800] == pytest.approx(expected[800], abs=1e-6)


def test_an_unusual_ratio_still_keeps_a_tone() -> None:
    # 16000/16001 needs 16000 exact phases (> 1024): swresample interpolates its 1024 phases;
    # here the same filter is evaluated at the exact positions instead
    rate = 16_001
    t = np.arange(rate) / rate
    out = audio.resample(np.sin(2 * np.pi * 440 * t).astype(np.float32), rate, 16_000)
    assert out.shape == (16_000,)
    want = np.sin(2 * np.pi * 440 * np.arange(16_000) / 16_000)
    assert np.max(np.abs(out[100:-100] - want[100:-100])) < 1e-3


def test_frames_that_are_not_rgb_skip_the_clip(monkeypatch: pytest.MonkeyPatch) -> None:
    # what decord 0.6.0 returns for a 48-pixel-wide mp4 written by OpenCV: [32, 48, 4]
    bad = [np.zeros((32, 48, 4), np.uint8)] * 2
    monkeypatch.setattr(media, "_file_frames", lambda *args: list(bad))
    with pytest.raises(media.MediaError, match=r"shape \[32, 48, 4\]"):
        media.load_video(Path("clip.mp4"), (16, 16), 4, None)


def test_opencv_is_loaded_before_a_video_decoder(monkeypatch: pytest.MonkeyPatch) -> None:
    # decord's bundled libraries, loaded before OpenCV's, break cv2.imread on PNG frames
    calls: list[str] = []
    real_cv2 = media._cv2
    monkeypatch.setattr(media, "_cv2", lambda: calls.append("cv2") or real_cv2())
    frame = np.zeros((8, 8, 3), np.uint8)
    monkeypatch.setattr(media, "_file_frames", lambda *args: calls.append("decode") or [frame])
    assert media.load_video(Path("clip.mp4"), (8, 8), 2, None).shape == (2, 3, 8, 8)
    assert calls[:2] == ["cv2", "decode"]
