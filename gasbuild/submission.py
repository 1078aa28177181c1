"""The network's contract, in one place (see SPEC.md §1-§3).

Everything gasbuild knows about what GAS accepts lives here: modalities and their input tensors,
the names a safetensors zip may hold, the dtype spellings of ``model_config.yaml``, and the import
and call lists the network's static analyzer enforces on ``model.py``. Validators, the config
emitter and the smoke test read these tables; none of them repeats a literal.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final, Literal

Modality = Literal["image", "video", "audio"]
Format = Literal["safetensors", "onnx"]
# The competition a submission enters; "human" is not offered for audio (SPEC.md §4).
Vertical = Literal["general", "human"]
VERTICALS: Final[tuple[Vertical, ...]] = ("general", "human")

MODALITIES: Final[tuple[Modality, ...]] = ("image", "video", "audio")
FORMATS: Final[tuple[Format, ...]] = ("safetensors", "onnx")


@dataclass(frozen=True)
class InputSpec:
    """What the benchmark feeds a model of one modality."""

    rank: int
    dtype: Literal["uint8", "float32"]
    benchmark_batch: int
    description: str


INPUTS: Final[dict[Modality, InputSpec]] = {
    "image": InputSpec(4, "uint8", 32, "[B, 3, H, W] uint8 0..255 RGB"),
    "video": InputSpec(5, "uint8", 4, "[B, T, 3, H, W] uint8 0..255 RGB"),
    "audio": InputSpec(2, "float32", 16, "[B, 96000] float32 in [-1, 1]"),
}

DEFAULT_RESIZE: Final[tuple[int, int]] = (224, 224)
DEFAULT_NUM_FRAMES: Final[int] = 16
MAX_NUM_FRAMES: Final[int] = 64
AUDIO_SAMPLE_RATE: Final[int] = 16000
AUDIO_DURATION_SECONDS: Final[float] = 6.0
AUDIO_SAMPLES: Final[int] = 96000

# C = 2: [real, synthetic]; C = 3: real plus two AI classes; C = 1: one logit of P(AI).
# Any other C is misread by the benchmark (it only asks whether argmax is class 0).
NUM_CLASSES_ALLOWED: Final[tuple[int, ...]] = (1, 2, 3)

NAME_PATTERN: Final[re.Pattern[str]] = re.compile(r"^[A-Za-z0-9_-]+$")

# Spellings the loader accepts for ``dtype``; only the weights are cast, never the input.
DTYPES: Final[dict[str, str]] = {
    "float32": "float32",
    "fp32": "float32",
    "float16": "float16",
    "fp16": "float16",
    "bfloat16": "bfloat16",
    "bf16": "bfloat16",
}

# Safetensors zip layout (SPEC.md §2): exactly these at the root, nothing else.
CONFIG_FILE: Final[str] = "model_config.yaml"
MODEL_FILE: Final[str] = "model.py"
DEFAULT_WEIGHTS_FILE: Final[str] = "model.safetensors"
OPTIONAL_FILES: Final[frozenset[str]] = frozenset({"config.json"})

# Keys of model_config.yaml the network documents; anything else at the top level is warned.
CONFIG_TOP_LEVEL_KEYS: Final[tuple[str, ...]] = (
    "name",
    "version",
    "modality",
    "dtype",
    "preprocessing",
    "model",
)
PREPROCESSING_KEYS: Final[dict[Modality, tuple[str, ...]]] = {
    "image": ("resize", "normalize"),
    "video": ("resize", "num_frames", "frame_rate", "normalize"),
    "audio": ("sample_rate", "duration_seconds", "normalize"),
}

# model.py static analysis (SPEC.md §2). A module is allowed when it, or a parent package listed
# with ``allow_children``, is here; everything else is blocked.
ALLOWED_IMPORTS: Final[frozenset[str]] = frozenset(
    {
        "torch",
        "torch.nn",
        "torch.nn.functional",
        "torch.cuda.amp",
        "torchvision",
        "torchvision.models",
        "torchvision.transforms",
        "torchaudio",
        "transformers",
        "timm",
        "einops",
        "safetensors",
        "safetensors.torch",
        "flash_attn",
        "PIL",
        "PIL.Image",
        "cv2",
        "skimage",
        "decord",
        "numpy",
        "scipy",
        "scipy.ndimage",
        "scipy.signal",
        "fvcore",
        "ultralytics",
        "math",
        "functools",
        "typing",
        "collections",
        "dataclasses",
        "enum",
        "abc",
        "pathlib",
    }
)

BLOCKED_IMPORTS: Final[frozenset[str]] = frozenset(
    """os sys subprocess shutil socket requests urllib http asyncio aiohttp httpx ftplib smtplib
    telnetlib pickle marshal shelve dill cloudpickle joblib importlib builtins code runpy numba
    cython ctypes cffi mmap signal multiprocessing concurrent threading apex deepspeed tensorboard
    wandb mlflow boto3 google.cloud azure sqlite3 psycopg2 pymongo redis tempfile glob h5py pty tty
    termios""".split()  # noqa: SIM905 - the list as SPEC.md prints it
)

BLOCKED_CALLS: Final[frozenset[str]] = frozenset(
    {"eval", "exec", "compile", "__import__", "getattr", "setattr", "globals", "locals"}
)

BLOCKED_SUBMODULES: Final[frozenset[str]] = frozenset(
    {"torch.utils.cpp_extension", "torch.jit.script", "torch.jit.trace", "numpy.ctypeslib"}
)


def canonical_dtype(spelling: str) -> str | None:
    """The torch dtype name a ``dtype`` spelling means, or None when the loader rejects it."""
    return DTYPES.get(spelling)


def zip_name(modality: Modality) -> str:
    """The conventional file name of a modality's submission zip (the guide's names)."""
    return f"{modality}_detector.zip"
