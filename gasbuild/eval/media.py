"""Decoding and preprocessing media as the benchmark does, on the trusted side.

The parent process turns files into the exact arrays the model receives; the sandboxed child
only runs the model. Facts from BitMind's gasbench (``processing/media.py``,
``processing/transforms.py``, ``benchmarks/*_bench.py``), standard pass (no augmentation,
``augment_level=0``, ``crop_prob=0``):

- **image**: ``PIL.Image.open(...).convert("RGB")`` (grayscale, palette and RGBA as PIL converts
  them: alpha dropped), then ``ResizeShortestEdge``: the largest centred crop with the target's
  aspect ratio (``scale = min(h/H, w/W)``, crop ``round(scale*H) x round(scale*W)``, offsets
  ``(h-ch)//2``, ``(w-cw)//2``), resized with ``cv2.resize(..., INTER_LINEAR)`` to H x W; HWC to
  CHW uint8. A file Pillow cannot open (for any reason) or a crop of no pixels is skipped.
- **video**: a folder of frames is read with ``cv2.imread`` + BGR->RGB, in numeric order of the
  leading digits of the file name, names without digits by their stem
  (``dataset/download/extract.py``: its glob is case-sensitive, ``.png`` or ``.PNG``; a folder
  mixing numbered and unnumbered names cannot be sorted there and is skipped here), the first
  ``num_frames``;
  a video file is decoded with decord when installed, else OpenCV's FFmpeg backend (the
  benchmark's own fallback), the first ``num_frames`` frames, or every
  ``round(fps/frame_rate)``-th when ``preprocessing.frame_rate`` is set. A short clip repeats its
  last frame; every frame gets the image crop and resize; THWC to TCHW uint8.
- **audio**: decoded to 16 kHz mono float32 by ``ffmpeg -ac 1 -ar 16000 -f f32le``, the
  benchmark's own fallback (``gasbuild/eval/audio.py``: an ffmpeg on PATH, else
  imageio-ffmpeg's, else a numpy copy of libswresample), then the centre 96,000 samples, or
  zero padding at the end.

opencv-python-headless and Pillow (``pip install 'gasbuild[eval]'``) are imported lazily.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from gasbuild.errors import UserError

# dataset/download/constants.py
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tiff", ".webp"})
VIDEO_EXTENSIONS = frozenset(
    {".mp4", ".avi", ".mov", ".mkv", ".wmv", ".webm", ".m4v", ".mpeg", ".mpg"}
)
AUDIO_EXTENSIONS = frozenset({".wav", ".mp3", ".flac", ".ogg", ".m4a", ".aac"})
EXTENSIONS = {"image": IMAGE_EXTENSIONS, "video": VIDEO_EXTENSIONS, "audio": AUDIO_EXTENSIONS}
INSTALL_HINT = "pip install 'gasbuild[eval]'"
_UPPER_IMAGE_EXTENSIONS = frozenset(e.upper() for e in IMAGE_EXTENSIONS)
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

    from gasbuild.eval.audio import decoder_name

    has_decord = importlib.util.find_spec("decord") is not None
    return {
        "image": f"{version('pillow')}, {version('opencv-python-headless')}",
        "video": version("decord") if has_decord else version("opencv-python-headless"),
        "audio": decoder_name(),
    }


# ---------------------------------------------------------------------------------------------
# Images and frames


def center_crop_resize(image: Any, size: tuple[int, int]) -> Any:
    """``ResizeShortestEdge``: centred crop to the target aspect ratio, then INTER_LINEAR."""
    cv2 = _cv2()
    target_h, target_w = size
    h, w = image.shape[:2]
    scale = min(h / target_h, w / target_w)
    crop_h = min(round(scale * target_h), h)
    crop_w = min(round(scale * target_w), w)
    if crop_h < 1 or crop_w < 1:  # cv2.resize raises there and the benchmark skips the sample
        raise MediaError(f"{w}x{h} pixels leave no crop of aspect {target_w}:{target_h}")
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
    # The benchmark skips a sample on any decoding exception (process_image_sample); Pillow
    # raises more than OSError: DecompressionBombError, struct.error, ... on hostile files.
    except Exception as exc:
        raise MediaError(f"not a readable image ({type(exc).__name__})") from exc
    return np.ascontiguousarray(np.transpose(center_crop_resize(array, size), (2, 0, 1)))


def frame_order(path: Path) -> tuple[int, int, str, str]:
    """Frames sort by the number their name starts with (``000.png`` before ``10.png``), names
    without one by their stem, as ``extract.py`` sorts them (file name breaks ties here)."""
    match = _LEADING_DIGITS.match(path.stem)
    return (0, int(match.group(1)), "", path.name) if match else (1, 0, path.stem, path.name)


def clip_frames(folder: Path) -> list[Path]:
    """A frame folder's images, in the benchmark's order. Its glob is case-sensitive: ``.png``
    and ``.PNG`` are frames, ``.Png`` is not."""
    files = [
        p
        for p in folder.iterdir()
        if p.is_file() and p.suffix in IMAGE_EXTENSIONS | _UPPER_IMAGE_EXTENSIONS
    ]
    return sorted(files, key=frame_order)


def load_video(path: Path, size: tuple[int, int], num_frames: int, frame_rate: float | None) -> Any:
    """One clip as the model receives it: ``[T, 3, H, W]`` uint8 RGB."""
    import numpy as np

    # OpenCV before decord, as the benchmark's media.py imports them: with decord 0.6.0's
    # bundled libraries loaded first, cv2.imread fails on every PNG ("bad parameters to zlib").
    _cv2()
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
    if frames[0].ndim != 3 or frames[0].shape[2] != 3:
        # decord 0.6.0 hands back 4 garbled channels for some frame widths: the benchmark's
        # batch (and the rest of its dataset) then fails; here the clip is skipped, named.
        raise MediaError(f"the decoder returned frames of shape {list(frames[0].shape)}")
    resized = [center_crop_resize(f, size) for f in frames]
    return np.ascontiguousarray(np.transpose(np.stack(resized), (0, 3, 1, 2)))


def _folder_frames(folder: Path, num_frames: int) -> list[Any]:
    cv2 = _cv2()
    frames = []
    ordered = clip_frames(folder)
    if len({key[0] for key in map(frame_order, ordered)}) > 1:
        # extract.py's sort key is an int or a str: a mix raises and the clip is dropped.
        raise MediaError("frame names mix numbered and unnumbered files: the benchmark drops it")
    for frame_path in ordered[:num_frames]:
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
# Audio (gasbuild/eval/audio.py)


def load_audio(path: Path) -> Any:
    """One clip as the model receives it: ``[96000]`` float32, 16 kHz mono, centred."""
    from gasbuild.eval import audio

    return audio.load_audio(path)


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:200]
