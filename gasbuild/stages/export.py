"""Export stage: turn a model.py + safetensors declaration into one legacy ``.onnx`` file.

A manifest may ask for ``format = "onnx"`` while declaring the model as the safetensors format
does (``model.py`` with ``load_model``, the weights, the model keywords). This stage loads that
model exactly as the network's loader would and exports it with ``torch.onnx`` at the modality's
input shape (SPEC.md §1, §3), so the legacy zip holds the same network the miner tested:

- input ``"input"``: ``[batch, 3, H, W]`` / ``[batch, T, 3, H, W]`` uint8 (the benchmark feeds
  uint8 pixels and the model casts inside ``forward``) or ``[batch, 96000]`` float32 audio; only
  the batch axis is dynamic, since a dynamic H/W makes the benchmark fall back to 224x224;
- output ``"logits"``: ``[batch, C]``, the first and only output;
- exported at batch 1, then checked against torch with onnxruntime on a seeded batch of
  ``parity_batch`` (> 1), which proves both the numbers and the dynamic batch axis.

``model.py`` is arbitrary code, so everything touching it runs in ``export_child.py``, in the
smoke test's sandbox (``gasbuild/sandbox``): ``python -I``, a memory limit, a timeout that kills
the process group, no network, a temporary working directory and a small environment. Importing
this module imports neither torch nor onnx.

Why the TorchScript exporter (``dynamo=False``): torch 2.13 defaults to the torch.export-based
exporter, which needs ``onnxscript`` (not a dependency) and produces different graphs from one
torch release to the next; the TorchScript exporter is deprecated but still shipped, needs
nothing more, supports ``dynamic_axes`` and STFT at opset 17, and its output was found
byte-identical across processes and source paths for a given torch version. The child still
clears every doc string and serializes deterministically, so a torch that writes source
locations (``verbose=True`` does) cannot make two builds differ. The torch and onnx versions
are part of ``ExportOptions.params`` (the producer version is in the file).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gasbuild.blobs import replace_into, temp_beside
from gasbuild.errors import CheckFailed
from gasbuild.sandbox import DEFAULT_MEMORY_MB
from gasbuild.sandbox.runner import (
    EXPORT_CHILD,
    ChildRun,
    child_messages,
    exit_text,
    last_phase,
    loader_job,
    module_paths,
    run_child,
    sandbox_dir,
)
from gasbuild.submission import (
    AUDIO_SAMPLES,
    DEFAULT_NUM_FRAMES,
    DEFAULT_RESIZE,
    MAX_NUM_FRAMES,
    Modality,
)

STAGE_VERSION = "2"  # 2: exporter notes about its own constant folding are not warnings

CHILD_SCRIPT = EXPORT_CHILD
# What the child imports; their locations are handed to it, since -I drops PYTHONPATH.
CHILD_MODULES = ("torch", "safetensors", "yaml", "numpy", "onnx", "onnxruntime")
# Whose versions change the exported bytes (the cache key must follow them).
TOOLCHAIN = ("torch", "onnx")
INPUT_NAME = "input"
OUTPUT_NAME = "logits"
BATCH_AXIS = "batch"
_RGB = 3
_MAX_MESSAGE = 600


class ExportError(CheckFailed):
    """The declared model cannot be exported, or its ONNX graph does not compute what torch does."""


@dataclass(frozen=True)
class ExportOptions:
    """How to export: the modality's input shape, the opset, and the parity tolerances."""

    modality: Modality
    resize: tuple[int, int] | None  # (H, W) for image/video; None: the benchmark's 224x224
    num_frames: int | None  # video only; None: the benchmark's 16
    opset: int = 17  # torch.stft exports from 17 on
    rtol: float = 1e-3
    atol: float = 1e-4
    parity_batch: int = 2  # any batch but the export's 1, to prove the dynamic batch axis
    timeout: float = 600.0
    memory_mb: int = DEFAULT_MEMORY_MB

    def __post_init__(self) -> None:
        if self.parity_batch < 2:
            raise ValueError("parity_batch must be at least 2: the export itself runs at 1")
        if self.rtol < 0 or self.atol < 0:
            raise ValueError("rtol and atol must not be negative")
        if self.num_frames is not None and not 1 <= self.num_frames <= MAX_NUM_FRAMES:
            raise ValueError(f"num_frames must be in 1..{MAX_NUM_FRAMES}")
        if self.resize is not None and min(self.resize) < 1:
            raise ValueError("resize must be positive")

    def sample_shape(self) -> tuple[int, ...]:
        """One sample of the benchmark's input (SPEC.md §1), the batch axis left out."""
        if self.modality == "audio":
            return (AUDIO_SAMPLES,)
        height, width = self.resize or DEFAULT_RESIZE
        if self.modality == "image":
            return (_RGB, height, width)
        return (self.num_frames or DEFAULT_NUM_FRAMES, _RGB, height, width)

    def params(self) -> dict[str, Any]:
        """What decides the exported bytes and the verdict, for the cache key.

        Defaults are resolved first (no resize and 224x224 are one key), the timeout and memory
        limit are left out (they decide only whether the run finishes), and the torch and onnx
        versions are in: the graph they write changes between releases.
        """
        return {
            "modality": self.modality,
            "input_shape": [BATCH_AXIS, *self.sample_shape()],
            "opset": self.opset,
            "rtol": self.rtol,
            "atol": self.atol,
            "parity_batch": self.parity_batch,
            "toolchain": {name: _version(name) for name in TOOLCHAIN},
        }


@dataclass(frozen=True)
class ExportResult:
    """What was written and how close onnxruntime came to torch on the parity batch."""

    max_abs_diff: float
    opset: int
    input_name: str
    input_shape: list[int | str]  # e.g. ["batch", 3, 224, 224]
    warnings: tuple[str, ...] = ()  # the tracer's doubts (e.g. a tensor turned into a constant)


def export_onnx(model_dir: Path, out: Path, options: ExportOptions, *, key: str) -> ExportResult:
    """Export the model in ``model_dir`` to ``out`` (atomically), checked against torch.

    ``model_dir`` holds ``model.py``, ``model_config.yaml`` and the weights, as a safetensors zip
    would. The child loads the model as the network's loader does (``load_model(weights_path,
    **config['model'] minus weights_file)``, then ``.to('cpu', float32).eval()``), exports it
    under ``torch.no_grad()`` and runs onnxruntime on the file it wrote. ``key`` (e.g.
    ``models.image``) starts every error message, so the user knows which model failed.
    """
    paths = module_paths(CHILD_MODULES)
    if paths is None:
        missing = ", ".join(CHILD_MODULES)
        raise ExportError(
            f"{key}: exporting to ONNX needs {missing}, and one is not installed",
            hint="pip install 'gasbuild[torch]'",
        )
    with temp_beside(out) as tmp:
        with sandbox_dir("export-") as root:
            # The child may write only in its work directory: the graph is moved out after.
            produced = root / "work" / "model.onnx"
            job = child_job(model_dir, produced, options, paths)
            run = run_child(job, root, options.timeout, CHILD_SCRIPT)
            if produced.is_file():
                shutil.move(produced, tmp)
        result = _result(run, options, key)
        replace_into(tmp, out)
    return result


def child_job(
    model_dir: Path, out: Path, options: ExportOptions, paths: list[str]
) -> dict[str, Any]:
    """The smoke test's job (contract tables, limits, paths) plus what the export needs."""
    job = loader_job(
        model_dir,
        modality=options.modality,
        batch=options.parity_batch,
        memory_mb=options.memory_mb,
        paths=paths,
    )
    job["export"] = {
        "out": str(out),
        "sample_shape": list(options.sample_shape()),
        "opset": options.opset,
        "rtol": options.rtol,
        "atol": options.atol,
        "input_name": INPUT_NAME,
        "output_name": OUTPUT_NAME,
        "batch_axis": BATCH_AXIS,
    }
    return job


def _result(run: ChildRun, options: ExportOptions, key: str) -> ExportResult:
    """The child's result, or an ExportError saying what failed and where."""
    messages = child_messages(run.stdout)
    if run.returncode == 0:
        for message in reversed(messages):
            if isinstance(message.get("result"), dict):
                return _parse_result(message["result"], key)
            if isinstance(message.get("error"), dict):
                error = message["error"]
                raise ExportError(
                    f"{key}: {_text(error.get('message')) or 'the export failed'}",
                    hint=_text(error.get("hint")) or None,
                )
    where = last_phase(messages)
    last = run.last_output()
    if run.timed_out:
        hint = f"last output: {last}" if last else "an endless loop, or a model too slow on CPU"
        raise ExportError(
            f"{key}: the ONNX export {run.timeout_text(options.timeout)}, while {where}",
            hint=hint,
        )
    how = exit_text(run.returncode)
    raise ExportError(
        f"{key}: the ONNX export's process {how} while {where}" + (f": {last}" if last else ""),
        hint=f"the memory limit is {options.memory_mb} MB",
    )


def _parse_result(raw: dict[str, Any], key: str) -> ExportResult:
    """Check the child's JSON before trusting it: model code ran in that process."""
    diff, opset, name = raw.get("max_abs_diff"), raw.get("opset"), raw.get("input_name")
    shape, warnings = raw.get("input_shape"), raw.get("warnings", [])
    if (
        isinstance(diff, int | float)
        and isinstance(opset, int)
        and isinstance(name, str)
        and isinstance(shape, list)
        and isinstance(warnings, list)
    ):
        dims = [d for d in shape if isinstance(d, int | str)]
        if len(dims) == len(shape):
            return ExportResult(float(diff), opset, name, dims, tuple(map(_text, warnings)))
    raise ExportError(f"{key}: the ONNX export's process returned a malformed result")


def _text(value: object) -> str:
    """A child-supplied string on one bounded line (anything else: empty)."""
    if not isinstance(value, str):
        return ""
    return " ".join(value.split())[:_MAX_MESSAGE]


def _version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None
