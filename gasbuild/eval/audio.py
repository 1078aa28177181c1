"""Audio as the benchmark decodes it: 16 kHz mono float32, the centre 6 s or zero-padded.

BitMind's gasbench (``processing/media.py`` ``process_audio_sample``) decodes with TorchCodec
or, when that cannot load (the usual case on its Ubuntu/Modal images), with the ``ffmpeg``
CLI: ``ffmpeg -nostdin -hide_banner -loglevel error -i FILE -vn -ac 1 -ar 16000 -f f32le
pipe:1``. Then the centre 96,000 samples (``(n - 96000) // 2`` onwards), or zero padding at
the end.

So the decoder here is that very command, with the first ffmpeg found:

1. ``ffmpeg`` on PATH (what the benchmark runs);
2. the static binary of the ``imageio-ffmpeg`` package (in ``gasbuild[eval]``): bit-identical
   output to a PATH ffmpeg of the same libswresample in the reference runs (docs/eval.md);
3. last resort, no ffmpeg at all: soundfile (or the standard library for WAV) and a numpy copy
   of libswresample's default path, for files soundfile reads. Its figures are within a few
   1e-7 of ffmpeg's for PCM input (lossy formats decode differently: MP3, Vorbis, Opus).

The numpy path follows libswresample (``swresample.c``, ``resample.c``, ``rematrix.c``):
integer PCM scaled by 2^-(bits-1) to float; with a stereo input the resampler runs first on
both channels (``resample_first``: ``1*1/2 - 1 < out/in - 1`` in C's integer division), then
the stereo-to-mono matrix ``(L + R) * sqrt(1/2)`` in float32 (``auto_matrix`` does not
normalise for a float output). The resampler: ``factor = min(out * 0.97 / in, 1)`` (no cutoff
when upsampling), ``length = ceil(32 / factor)`` rounded up to even, ``center = (length-1)//2``;
exact rational phases (``out / gcd`` of them when at most 1024); a Kaiser window (beta 9) on
``sinc(factor * d)``, every phase divided by the sum of phase 0's taps and stored as float32;
the signal mirrored about its first sample at the start (``invert_initial_buffer``) and
reflected about its end for ``(min(n, length) + 1) // 2`` samples (``resample_flush``).
"""

from __future__ import annotations

import math
import shutil
import subprocess
import wave
from pathlib import Path
from typing import Any

from gasbuild.eval.media import INSTALL_HINT, MediaError, MissingDecoder
from gasbuild.submission import AUDIO_SAMPLE_RATE, AUDIO_SAMPLES

# libswresample's defaults (options.c, resample.c).
FILTER_SIZE = 32
CUTOFF = 0.97
KAISER_BETA = 9.0
MAX_EXACT_PHASES = 1024  # 1 << phase_shift (10)
DECODE_TIMEOUT = 30.0  # media.py AUDIO_DECODE_TIMEOUT
# What soundfile (libsndfile) cannot decode: only an ffmpeg reads these.
FFMPEG_ONLY = frozenset({".m4a", ".aac"})
FFMPEG_HINT = "pip install imageio-ffmpeg (part of gasbuild[eval]) or put an ffmpeg on PATH"


def ffmpeg_executable() -> tuple[str, str] | None:
    """The ffmpeg to decode with and where it came from: PATH first, as the benchmark runs it,
    then imageio-ffmpeg's static binary; None when there is neither."""
    found = shutil.which("ffmpeg")
    if found:
        return found, "PATH"
    try:
        import imageio_ffmpeg
    except ImportError:
        return None
    try:
        exe = imageio_ffmpeg.get_ffmpeg_exe()
    except (RuntimeError, OSError):  # the package is there, its binary is not
        return None
    return str(exe), f"imageio-ffmpeg {getattr(imageio_ffmpeg, '__version__', '?')}"


def decoder_name() -> str:
    """What decodes audio here (recorded with results and part of the eval's cache key)."""
    ffmpeg = ffmpeg_executable()
    if ffmpeg is not None:
        return f"ffmpeg CLI ({ffmpeg[1]})"
    import importlib.metadata

    try:
        soundfile = f"soundfile {importlib.metadata.version('soundfile')}"
    except importlib.metadata.PackageNotFoundError:
        soundfile = "stdlib wave"
    return f"{soundfile} + gasbuild resampler"


def load_audio(path: Path) -> Any:
    """One clip as the model receives it: ``[96000]`` float32, 16 kHz mono, centred."""
    import numpy as np

    ffmpeg = ffmpeg_executable()
    if ffmpeg is not None:
        mono = ffmpeg_decode(ffmpeg[0], path)
    else:
        samples, rate = decode_pcm(path)
        mono = to_mono_16k(samples, rate)
    return fit_length(np.asarray(mono, dtype=np.float32), AUDIO_SAMPLES)


def ffmpeg_decode(exe: str, path: Path) -> Any:
    """The benchmark's fallback decoder, with its very arguments."""
    import numpy as np

    command = [
        exe, "-nostdin", "-hide_banner", "-loglevel", "error", "-i", str(path),
        "-vn", "-ac", "1", "-ar", str(AUDIO_SAMPLE_RATE), "-f", "f32le", "pipe:1",
    ]  # fmt: skip
    try:
        done = subprocess.run(command, capture_output=True, timeout=DECODE_TIMEOUT, check=False)
    except subprocess.TimeoutExpired as exc:
        raise MediaError(f"ffmpeg did not finish within {DECODE_TIMEOUT:g} s") from exc
    if done.returncode != 0 or not done.stdout or len(done.stdout) % 4:
        raise MediaError(_short(done.stderr.decode("utf-8", "replace") or "ffmpeg failed"))
    return np.frombuffer(done.stdout, dtype=np.float32).copy()


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


def to_mono_16k(samples: Any, rate: int) -> Any:
    """``[n, channels]`` float32 to 16 kHz mono float32 as libswresample converts it."""
    import numpy as np

    channels = 1 if samples.ndim == 1 else samples.shape[1]
    if channels > 2:
        raise MediaError(f"{channels} channels: without ffmpeg only mono and stereo are read")
    columns = [np.asarray(samples, dtype=np.float32).reshape(len(samples), channels)[:, c]
               for c in range(channels)]  # fmt: skip
    if rate != AUDIO_SAMPLE_RATE:
        columns = [resample(c, rate, AUDIO_SAMPLE_RATE) for c in columns]
    return columns[0] if channels == 1 else downmix(np.stack(columns, axis=1))


def downmix(samples: Any) -> Any:
    """``[n, 2]`` float32 to mono with swresample's float matrix: ``L*c + R*c``, c = sqrt(1/2)."""
    import numpy as np

    if samples.ndim == 1 or samples.shape[1] == 1:
        return samples.reshape(-1).astype(np.float32)
    coefficient = np.float32(math.sqrt(0.5))
    left = samples[:, 0].astype(np.float32) * coefficient
    return left + samples[:, 1].astype(np.float32) * coefficient


def filter_bank(rate_in: int, rate_out: int) -> tuple[Any, int, int]:
    """swresample's polyphase filter for an exact rational ratio: ``[phases, length]`` float32,
    with the filter length and centre."""
    import numpy as np

    up = rate_out // math.gcd(rate_in, rate_out)
    factor = min(rate_out * CUTOFF / rate_in, 1.0)
    length = max(math.ceil(FILTER_SIZE / factor), 1)
    length += length % 2 if length > 1 else 0
    center = (length - 1) // 2
    d = (np.arange(length)[None, :] - center) - np.arange(up)[:, None] / up
    window = np.i0(KAISER_BETA * np.sqrt(np.clip(1 - (2 * d / length) ** 2, 0, None)))
    taps = np.sinc(factor * d) * window
    return (taps / taps[0].sum()).astype(np.float32), length, center


def resample(mono: Any, rate_in: int, rate_out: int) -> Any:
    """One channel resampled as libswresample does by default (see the module docstring)."""
    import numpy as np

    g = math.gcd(rate_in, rate_out)
    up, down = rate_out // g, rate_in // g
    if up > MAX_EXACT_PHASES:  # swresample interpolates 1024 phases here; exact positions are
        return _resample_any(mono, rate_in, rate_out)  # as close as we get without it
    bank, length, center = filter_bank(rate_in, rate_out)
    n = mono.shape[0]
    n_out = -(-n * up // down)
    x = mono.astype(np.float64)
    reflect = (min(n, length) + 1) // 2
    head = x[1 : length + 1][::-1]  # x[-k] = x[k]
    tail = x[::-1][:reflect]  # x[n + j] = x[n - 1 - j]
    padded = np.concatenate([np.zeros(length - head.shape[0]), head, x, tail, np.zeros(length)])
    positions = np.arange(n_out, dtype=np.int64) * down
    starts = positions // up - center + length  # index of tap 0 in ``padded``
    phases = positions % up
    out = np.zeros(n_out, dtype=np.float64)
    for tap in range(length):
        out += padded[starts + tap] * bank[phases, tap]
    return out.astype(np.float32)


def _resample_any(mono: Any, rate_in: int, rate_out: int) -> Any:
    """An unusual ratio: the same filter, evaluated at exact fractional positions."""
    import numpy as np

    factor = min(rate_out * CUTOFF / rate_in, 1.0)
    length = max(math.ceil(FILTER_SIZE / factor), 1)
    length += length % 2 if length > 1 else 0
    center = (length - 1) // 2
    n_out = -(-mono.shape[0] * rate_out // rate_in)
    positions = np.arange(n_out, dtype=np.float64) * (rate_in / rate_out)
    base = np.floor(positions).astype(np.int64)
    padded = np.concatenate([np.zeros(length), mono.astype(np.float64), np.zeros(2 * length)])
    out = np.zeros(n_out, dtype=np.float64)
    norm = None
    for tap in range(length):
        d = (tap - center) - (positions - base)
        window = np.i0(KAISER_BETA * np.sqrt(np.clip(1 - (2 * d / length) ** 2, 0, None)))
        weight = np.sinc(factor * d) * window
        if norm is None:
            norm = np.zeros(n_out)
        norm += weight
        out += padded[base + tap - center + length] * weight
    return (out / norm).astype(np.float32) if norm is not None else out.astype(np.float32)


def decode_pcm(path: Path) -> tuple[Any, int]:
    """``[n, channels]`` float32 samples and the sample rate: soundfile, else stdlib WAV."""
    if path.suffix.lower() in FFMPEG_ONLY:
        raise MediaError(f"{path.suffix} audio needs an ffmpeg ({FFMPEG_HINT})")
    try:
        import soundfile
    except ImportError:
        soundfile = None
    if soundfile is not None:
        try:
            data, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
        except (RuntimeError, soundfile.LibsndfileError) as exc:
            raise MediaError(_short(str(exc))) from exc
        return data, int(rate)
    if path.suffix.lower() != ".wav":
        raise MissingDecoder(
            f"decoding {path.suffix} audio needs soundfile or an ffmpeg", hint=INSTALL_HINT
        )
    return _read_wav(path)


def _read_wav(path: Path) -> tuple[Any, int]:
    """PCM WAV with the standard library, scaled as swresample converts integers to float."""
    import numpy as np

    try:
        with wave.open(str(path), "rb") as reader:
            width, channels = reader.getsampwidth(), reader.getnchannels()
            rate, raw = reader.getframerate(), reader.readframes(reader.getnframes())
    except (OSError, EOFError, wave.Error) as exc:
        raise MediaError(_short(str(exc))) from exc
    if width == 1:
        data = (np.frombuffer(raw, np.uint8).astype(np.float32) - 128) * np.float32(1 / 128)
    elif width in (2, 4):
        ints = np.frombuffer(raw, f"<i{width}").astype(np.float32)
        data = ints * np.float32(1 / float(1 << (8 * width - 1)))
    elif width == 3:
        triples = np.frombuffer(raw, np.uint8).reshape(-1, 3).astype(np.int32)
        packed = triples[:, 0] | (triples[:, 1] << 8) | (triples[:, 2] << 16)
        signed = np.where(packed >= 1 << 23, packed - (1 << 24), packed)
        data = signed.astype(np.float32) * np.float32(1 / float(1 << 23))
    else:
        raise MediaError(f"{8 * width}-bit WAV samples are not supported")
    return data.reshape(-1, channels), rate


def _short(text: str) -> str:
    return (" ".join(text.split()) or "unreadable")[:200]
