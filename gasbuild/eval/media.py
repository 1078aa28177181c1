"""Decoding and preprocessing media as the benchmark does, on the trusted side.

The parent process turns files into the exact arrays the model receives; the sandboxed child
only runs the model. Facts from BitMind's gasbench (``processing/media.py``,
``processing/transforms.py``, ``benchmarks/*_bench.py``), standard pass (no augmentation,
``augment_level=0``, ``crop_prob=0``):

- **image**: ``PIL.Image.open(...).convert("RGB")`` (grayscale, palette and RGBA as PIL converts
  them: alpha dropped), then ``ResizeShortestEdge``: the largest centred crop with the target's
  aspect ratio (``scale = min(h/H, w/W)``, crop ``round(scale*H) x round(scale*W)``, offsets
  ``(h-ch)//2``, ``(w-cw)//2``), resized with ``cv2.resize(..., INTER_LINEAR)`` to H x W; HWC to
  CHW uint8.
- **video**: a folder of frames is read with ``cv2.imread`` + BGR->RGB, in numeric order of the
  leading digits of the file name (``dataset/download/extract.py``), the first ``num_frames``;
  a video file is decoded with decord when installed, else OpenCV's FFmpeg backend (the
  benchmark's own fallback), the first ``num_frames`` frames, or every
  ``round(fps/frame_rate)``-th when ``preprocessing.frame_rate`` is set. A short clip repeats its
  last frame; every frame gets the image crop and resize; THWC to TCHW uint8.
- **audio**: decoded to 16 kHz mono float32 as FFmpeg's libswresample does for the benchmark's
  TorchCodec / ``ffmpeg -ac 1 -ar 16000 -f f32le`` decoders: integer PCM divided by 2^(bits-1);
  stereo mixed as ``(L + R) * sqrt(1/2)`` (swresample's stereo->mono matrix, not normalised for a
  float output); other rates resampled with a Kaiser-windowed sinc (swresample's defaults:
  32 taps, cutoff 0.97, beta 9). Then the centre 96,000 samples, or zero padding at the end.
  When an ``ffmpeg`` executable is on PATH it decodes, exactly as the benchmark's fallback.

opencv-python-headless and Pillow (``pip install 'gasbuild[eval]'``) are imported lazily, and
soundfile for FLAC/MP3 (WAV also reads with the standard library).
"""

from __future__ import annotations

import math
import re
import shutil
import subprocess
import wave
from pathlib import Path
from typing import Any

from gasbuild.errors import UserError
from gasbuild.submission import AUDIO_SAMPLE_RATE, AUDIO_SAMPLES

# dataset/download/constants.py
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tiff", ".webp"})
VIDEO_EXTENSIONS = frozenset(
    {".mp4", ".avi", ".mov", ".mkv", ".wmv", ".webm", ".m4v", ".mpeg", ".mpg"}
)
AUDIO_EXTENSIONS = frozenset({".wav", ".mp3", ".flac", ".ogg", ".m4a", ".aac"})
EXTENSIONS = {"image": IMAGE_EXTENSIONS, "video": VIDEO_EXTENSIONS, "audio": AUDIO_EXTENSIONS}
INSTALL_HINT = "pip install 'gasbuild[eval]'"
# libswresample's defaults (options_table.h / resample.c).
RESAMPLE_TAPS = 32
RESAMPLE_CUTOFF = 0.97
RESAMPLE_BETA = 9.0
DECODE_TIMEOUT = 30.0  # media.py AUDIO_DECODE_TIMEOUT
_LEADING_DIGITS = re.compile(r"(\d+)")


class MediaError(Exception):
    """A file that cannot be decoded: the sample is skipped with one warning line."""


class MissingDecoder(UserError):
    """A decoder package is not installed: one line saying which and how to install it."""


def _cv2() -> Any:
    try:
        import cv2
    except ImportError:
        raise MissingDecoder(
            "eval needs OpenCV (cv2) to resize as the benchmark does", hint=INSTALL_HINT
        ) from None
    cv2.setNumThreads(1)
    return cv2


def _pil_image() -> Any:
    try:
        from PIL import Image
    except ImportError:
        raise MissingDecoder("eval needs Pillow to decode images", hint=INSTALL_HINT) from None
    return Image


def decoders() -> dict[str, str]:
    """What decodes each kind of media here (recorded with results: it decides the arrays)."""
    import importlib.util

    def version(name: str) -> str:
        import importlib.metadata

        try:
            return f"{name} {importlib.metadata.version(name)}"
        except importlib.metadata.PackageNotFoundError:
            return f"{name} (not installed)"

    has_decord = importlib.util.find_spec("decord") is not None
    ffmpeg = shutil.which("ffmpeg")
    return {
        "image": f"{version('pillow')}, {version('opencv-python-headless')}",
        "video": version("decord") if has_decord else version("opencv-python-headless"),
        "audio": "ffmpeg CLI" if ffmpeg else f"{version('soundfile')} + gasbuild resampler",
    }


# ---------------------------------------------------------------------------------------------
# Images and frames


def center_crop_resize(image: Any, size: tuple[int, int]) -> Any:
    """``ResizeShortestEdge``: centred crop to the target aspect ratio, then INTER_LINEAR."""
    cv2 = _cv2()
    target_h, target_w = size
    h, w = image.shape[:2]
    scale = min(h / target_h, w / target_w)
    # At least one pixel: a sliver of an image (1 x 900, say) would otherwise round to nothing.
    crop_h = max(1, min(round(scale * target_h), h))
    crop_w = max(1, min(round(scale * target_w), w))
    i, j = (h - crop_h) // 2, (w - crop_w) // 2
    cropped = image[i : i + crop_h, j : j + crop_w]
    return cv2.resize(cropped, (target_w, target_h), interpolation=cv2.INTER_LINEAR)


def load_image(path: Path, size: tuple[int, int]) -> Any:
    """One image as the model receives it: ``[3, H, W]`` uint8 RGB."""
    import numpy as np

    image_module = _pil_image()
    _cv2()
    try:
        with image_module.open(path) as image:
            array = np.array(image.convert("RGB"), dtype=np.uint8)
    except (OSError, ValueError, SyntaxError) as exc:  # PIL's UnidentifiedImageError is OSError
        raise MediaError(f"not a readable image ({type(exc).__name__})") from exc
    return np.ascontiguousarray(np.transpose(center_crop_resize(array, size), (2, 0, 1)))


def frame_order(path: Path) -> tuple[int, int, str]:
    """Frames sort by the number their name starts with (``000.png`` before ``10.png``)."""
    match = _LEADING_DIGITS.match(path.stem)
    return (0, int(match.group(1)), path.name) if match else (1, 0, path.name)


def clip_frames(folder: Path) -> list[Path]:
    """A frame folder's images, in the benchmark's order."""
    files = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS]
    return sorted(files, key=frame_order)


def load_video(path: Path, size: tuple[int, int], num_frames: int, frame_rate: float | None) -> Any:
    """One clip as the model receives it: ``[T, 3, H, W]`` uint8 RGB."""
    import numpy as np

    frames = (
        _folder_frames(path, num_frames)
        if path.is_dir()
        else _file_frames(path, num_frames, frame_rate)
    )
    if not frames:
        raise MediaError("no frame could be decoded")
    while len(frames) < num_frames:
        frames.append(frames[-1])
    if len({f.shape for f in frames}) != 1:
        raise MediaError("the frames differ in size")
    resized = [center_crop_resize(f, size) for f in frames]
    return np.ascontiguousarray(np.transpose(np.stack(resized), (0, 3, 1, 2)))


def _folder_frames(folder: Path, num_frames: int) -> list[Any]:
    cv2 = _cv2()
    frames = []
    for frame_path in clip_frames(folder)[:num_frames]:
        frame = cv2.imread(str(frame_path))
        if frame is None:  # the benchmark skips an unreadable frame and goes on
            continue
        frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    return frames


def _file_frames(path: Path, num_frames: int, frame_rate: float | None) -> list[Any]:
    """``_VideoReader``: decord when installed, else OpenCV decoding sequentially."""
    try:
        import decord
    except ImportError:
        decord = None
    if decord is not None:
        try:
            reader = decord.VideoReader(str(path), ctx=decord.cpu(0), num_threads=1)
            total, fps = len(reader), reader.get_avg_fps()
            indices = _frame_indices(total, fps, num_frames, frame_rate)
            return [reader[i].asnumpy() for i in indices]
        except Exception as exc:  # decord raises its own DECORDError
            raise MediaError(_short(exc)) from exc
    cv2 = _cv2()
    _quiet_video_logs(cv2)
    capture = cv2.VideoCapture(str(path))
    try:
        if not capture.isOpened():
            raise MediaError(
                "OpenCV cannot open this video (corrupt, truncated, or a codec its FFmpeg lacks)"
            )
        total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        fps = capture.get(cv2.CAP_PROP_FPS)
        wanted = set(_frame_indices(total, fps if fps > 0 else None, num_frames, frame_rate))
        frames = []
        for index in range(max(wanted, default=-1) + 1):
            ok, frame = capture.read()
            if not ok or frame is None:
                break
            if index in wanted:
                frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
        return frames
    finally:
        capture.release()


def _quiet_video_logs(cv2: Any) -> None:
    """Silence OpenCV's and its FFmpeg's own stderr lines ("moov atom not found", ...).

    A bad file must be one warning line naming it, and these print straight to file
    descriptor 2 from C, several per file. ``OPENCV_FFMPEG_LOGLEVEL`` is read when OpenCV first
    opens a video (so before any ``VideoCapture``); levels the user set are kept.
    """
    import os

    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET
    if "OPENCV_LOG_LEVEL" not in os.environ:
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)


def _frame_indices(
    total: int, fps: float | None, num_frames: int, frame_rate: float | None
) -> list[int]:
    if total <= 0:
        raise MediaError("the video has no frames")
    if frame_rate is None:
        return list(range(min(num_frames, total)))
    step = max(1, round((fps or 30.0) / frame_rate))  # 30 fps when the file says nothing
    return list(range(0, total, step))[:num_frames]


# ---------------------------------------------------------------------------------------------
# Audio


def load_audio(path: Path) -> Any:
    """One clip as the model receives it: ``[96000]`` float32, 16 kHz mono, centred."""
    import numpy as np

    if shutil.which("ffmpeg"):
        mono = _ffmpeg_decode(path)
    else:
        samples, rate = _decode_pcm(path)
        mono = downmix(samples)
        if rate != AUDIO_SAMPLE_RATE:
            mono = resample(mono, rate, AUDIO_SAMPLE_RATE)
    return fit_length(np.asarray(mono, dtype=np.float32), AUDIO_SAMPLES)


def fit_length(wave_1d: Any, length: int) -> Any:
    """The centre ``length`` samples, or the clip zero-padded at its end."""
    import numpy as np

    n = wave_1d.shape[0]
    if n > length:
        start = (n - length) // 2
        return np.ascontiguousarray(wave_1d[start : start + length])
    if n < length:
        return np.concatenate([wave_1d, np.zeros(length - n, dtype=wave_1d.dtype)])
    return wave_1d


def downmix(samples: Any) -> Any:
    """``[n, channels]`` float to mono as libswresample mixes it for a float output."""
    import numpy as np

    if samples.ndim == 1 or samples.shape[1] == 1:
        return samples.reshape(-1).astype(np.float32)
    if samples.shape[1] != 2:
        raise MediaError(f"{samples.shape[1]} channels: only mono and stereo are supported")
    mixed = (samples[:, 0].astype(np.float64) + samples[:, 1]) * math.sqrt(0.5)
    return mixed.astype(np.float32)


def resample(mono: Any, rate_in: int, rate_out: int) -> Any:
    """Kaiser-windowed sinc resampling with libswresample's default filter."""
    import numpy as np

    factor = min(1.0, rate_out / rate_in) * RESAMPLE_CUTOFF
    taps = max(1, math.ceil(RESAMPLE_TAPS / factor))
    center = (taps - 1) // 2
    n_out = math.ceil(mono.shape[0] * rate_out / rate_in)
    positions = np.arange(n_out, dtype=np.float64) * (rate_in / rate_out)
    base = np.floor(positions).astype(np.int64)
    frac = positions - base
    offsets = np.arange(taps, dtype=np.int64) - center
    signal = np.concatenate([np.zeros(taps), mono.astype(np.float64), np.zeros(taps)])
    out = np.empty(n_out, dtype=np.float64)
    chunk = 8192
    for start in range(0, n_out, chunk):
        stop = min(start + chunk, n_out)
        x = offsets[None, :] - frac[start:stop, None]
        window = np.i0(RESAMPLE_BETA * np.sqrt(np.clip(1 - (2 * x / taps) ** 2, 0, None)))
        weights = np.sinc(factor * x) * window
        weights /= weights.sum(axis=1, keepdims=True)
        idx = base[start:stop, None] + offsets[None, :] + taps
        out[start:stop] = (signal[idx] * weights).sum(axis=1)
    return out.astype(np.float32)


def _decode_pcm(path: Path) -> tuple[Any, int]:
    """``[n, channels]`` float samples and the sample rate: soundfile, else stdlib WAV."""
    import numpy as np

    try:
        import soundfile
    except ImportError:
        soundfile = None
    if soundfile is not None:
        try:
            data, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
        except (RuntimeError, soundfile.LibsndfileError) as exc:
            raise MediaError(_short(exc)) from exc
        return data, int(rate)
    if path.suffix.lower() != ".wav":
        raise MissingDecoder(
            f"decoding {path.suffix} audio needs soundfile or an ffmpeg on PATH",
            hint=INSTALL_HINT,
        )
    try:
        with wave.open(str(path), "rb") as reader:
            width, channels = reader.getsampwidth(), reader.getnchannels()
            rate, raw = reader.getframerate(), reader.readframes(reader.getnframes())
    except (OSError, EOFError, wave.Error) as exc:
        raise MediaError(_short(exc)) from exc
    if width == 1:
        data = (np.frombuffer(raw, np.uint8).astype(np.float32) - 128) / 128
    elif width in (2, 4):
        wide = np.frombuffer(raw, f"<i{width}").astype(np.float64)
        data = (wide / float(1 << (8 * width - 1))).astype(np.float32)
    elif width == 3:
        triples = np.frombuffer(raw, np.uint8).reshape(-1, 3).astype(np.int32)
        ints = triples[:, 0] | (triples[:, 1] << 8) | (triples[:, 2] << 16)
        signed = np.where(ints >= 1 << 23, ints - (1 << 24), ints)
        data = (signed / float(1 << 23)).astype(np.float32)
    else:
        raise MediaError(f"{8 * width}-bit WAV samples are not supported")
    return data.reshape(-1, channels), rate


def _ffmpeg_decode(path: Path) -> Any:
    """The benchmark's fallback decoder, with its very arguments."""
    import numpy as np

    command = [
        "ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-i", str(path),
        "-vn", "-ac", "1", "-ar", str(AUDIO_SAMPLE_RATE), "-f", "f32le", "pipe:1",
    ]  # fmt: skip
    try:
        done = subprocess.run(command, capture_output=True, timeout=DECODE_TIMEOUT, check=False)
    except subprocess.TimeoutExpired as exc:
        raise MediaError(f"ffmpeg did not finish within {DECODE_TIMEOUT:g} s") from exc
    if done.returncode != 0 or not done.stdout or len(done.stdout) % 4:
        raise MediaError(_short(RuntimeError(done.stderr.decode("utf-8", "replace") or "ffmpeg")))
    return np.frombuffer(done.stdout, dtype=np.float32).copy()


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:200]
