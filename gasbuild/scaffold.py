"""``gasbuild init``: a commented gas.toml and a starter model.py, from Jinja2 templates.

A project made here travels: the schema the editor validates against sits beside gas.toml
(``#:schema ./gas.schema.json``, not a path into someone's site-packages), ``.gitignore`` keeps
``dist/`` and ``.gasbuild/`` out of git, and the starter model gets untrained starter weights
so that ``gasbuild build`` works at once. ``init --modality X`` in an existing project adds a
model table instead of refusing.
"""

from __future__ import annotations

import json
import random
import re
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gasbuild.errors import UsageError, display_path
from gasbuild.resources import data_dir
from gasbuild.submission import INPUTS, Modality

if TYPE_CHECKING:
    from gasbuild.templates import Template


@dataclass(frozen=True)
class _ModelStub:
    modality: str
    name: str
    model_file: str
    weights: str
    template: str | None = None  # architecture = { template = ..., args = ... }
    template_args: str = "{}"  # the required arguments with their examples, as TOML
    hotkey: str | None = None  # its own hotkey when the project has several models


def _environment() -> Any:
    import jinja2

    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(data_dir("templates") / "init")),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
        autoescape=False,
    )


def _slug(text: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9_-]+", "-", text).strip("-")
    return slug or "gas"


SCHEMA_FILE = "gas.schema.json"
IGNORED = ("dist/", ".gasbuild/")


@dataclass
class InitResult:
    """What ``init`` wrote, and what to do next."""

    written: list[Path]
    next_steps: list[str]


def init_project(
    directory: Path,
    modalities: tuple[str, ...],
    fmt: str,
    *,
    name: str | None = None,
    force: bool = False,
    template: str | None = None,
) -> list[Path]:
    """Write gas.toml (and model.py per safetensors modality, unless a template declares the
    architecture); refuse to overwrite unless forced."""
    return init(directory, modalities, fmt, name=name, force=force, template=template).written


def init(
    directory: Path,
    modalities: tuple[str, ...],
    fmt: str,
    *,
    name: str | None = None,
    force: bool = False,
    template: str | None = None,
) -> InitResult:
    """``gasbuild init``: a new project, or (``--modality`` in a project) more models."""
    directory = directory.resolve()
    if (directory / "gas.toml").is_file() and modalities and not force:
        return _add_models(directory, modalities, fmt, name=name, template=template)
    chosen = _template(template, modalities) if template else None
    if not modalities:
        modalities = (chosen.modalities[0],) if chosen else ("image",)
    ordered: list[Modality] = [m for m in INPUTS if m in modalities]
    stubs = _stubs(directory, ordered, fmt, name, chosen, multi=len(ordered) > 1, own_hotkeys=True)
    env = _environment()
    files: dict[Path, bytes] = {}
    files[directory / "gas.toml"] = (
        env.get_template("gas.toml.j2")
        .render(models=stubs, fmt=fmt, schema_uri=f"./{SCHEMA_FILE}")
        .encode()
    )
    files.update(_model_files(directory, stubs, fmt, chosen))
    existing = [p for p in files if p.exists()]
    if existing and not force:
        names = ", ".join(display_path(p) for p in existing)
        raise UsageError(
            f"{names} already exists",
            hint="pass --force to overwrite, or --modality X to add a model to this project",
        )
    files[directory / SCHEMA_FILE] = _schema_text().encode()
    files.update(_starter_weights(directory, stubs, fmt, chosen))
    directory.mkdir(parents=True, exist_ok=True)
    written = _write(files)
    written += _gitignore(directory)
    return InitResult(written, _next_steps(directory, stubs, fmt, chosen))


def _add_models(
    directory: Path,
    modalities: tuple[str, ...],
    fmt: str,
    *,
    name: str | None,
    template: str | None,
) -> InitResult:
    """Append a [models.X] table per new modality to an existing gas.toml (text, so that its
    comments stay); each added model gets its own hotkey."""
    from gasbuild import manifest

    path = directory / "gas.toml"
    project = manifest.load(path)
    declared = [m for m, _ in project.manifest.declared()]
    again = [m for m in modalities if m in declared]
    if again:
        raise UsageError(
            f"{display_path(path)} already declares {', '.join(again)}",
            hint="edit its [models.X] table, or pass --force to start the project over",
        )
    chosen = _template(template, modalities) if template else None
    ordered: list[Modality] = [m for m in INPUTS if m in modalities]
    multi = True  # a second model never takes model.py, which the first one may use
    stubs = _stubs(directory, ordered, fmt, name, chosen, multi=multi, own_hotkeys=True)
    env = _environment()
    blocks = "".join(env.get_template("model.toml.j2").render(m=stub, fmt=fmt) for stub in stubs)
    files = _model_files(directory, stubs, fmt, chosen)
    existing = [p for p in files if p.exists()]
    if existing:
        names = ", ".join(display_path(p) for p in existing)
        raise UsageError(f"{names} already exists", hint="move it away, or declare it by hand")
    files.update(_starter_weights(directory, stubs, fmt, chosen))
    text = path.read_text("utf-8")
    files[path] = (text if text.endswith("\n") else text + "\n").encode() + blocks.encode()
    written = _write(files)
    written += _gitignore(directory)
    return InitResult(written, _next_steps(directory, stubs, fmt, chosen))


def _stubs(
    directory: Path,
    ordered: list[Modality],
    fmt: str,
    name: str | None,
    chosen: Template | None,
    *,
    multi: bool,
    own_hotkeys: bool,
) -> list[_ModelStub]:
    prefix = _slug(name or directory.name)
    return [
        _ModelStub(
            modality=m,
            name=f"{prefix}-{m}",
            model_file=f"{m}_model.py" if multi else "model.py",
            weights=_weights_path(m, fmt, templated=chosen is not None),
            template=chosen.name if chosen else None,
            template_args=_example_args(chosen),
            # One submission counts per hotkey: several models never share [wallet] hotkey.
            hotkey=m if (multi and own_hotkeys) else None,
        )
        for m in ordered
    ]


def _model_files(
    directory: Path, stubs: list[_ModelStub], fmt: str, chosen: Template | None
) -> dict[Path, bytes]:
    if fmt != "safetensors" or chosen is not None:
        return {}
    env = _environment()
    return {
        directory / stub.model_file: env.get_template("model.py.j2")
        .render(modality=stub.modality, input_doc=INPUTS[stub.modality].description)  # type: ignore[index]
        .encode()
        for stub in stubs
    }


def _write(files: dict[Path, bytes]) -> list[Path]:
    for path, data in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return list(files)


def _schema_text() -> str:
    """The JSON Schema of this gasbuild's gas.toml, as `gasbuild schema` prints it."""
    from gasbuild.manifest import json_schema

    return json.dumps(json_schema(), indent=2) + "\n"


def _gitignore(directory: Path) -> list[Path]:
    """Add dist/ and .gasbuild/ to .gitignore (created if absent; other lines kept)."""
    path = directory / ".gitignore"
    text = path.read_text("utf-8") if path.is_file() else ""
    present = {line.strip() for line in text.splitlines()}
    missing = [
        entry for entry in IGNORED if entry not in present and entry.rstrip("/") not in present
    ]
    if not missing:
        return []
    prefix = "" if not text or text.endswith("\n") else "\n"
    header = "" if text else "# gasbuild: built zips and local state (receipts, rendered files)\n"
    path.write_text(text + prefix + header + "".join(f"{m}\n" for m in missing), "utf-8")
    return [path]


def _next_steps(
    directory: Path, stubs: list[_ModelStub], fmt: str, chosen: Template | None
) -> list[str]:
    here = display_path(directory)
    build = "gasbuild build" if here in (".", "") else f"gasbuild build -C {here}"
    if chosen is not None:
        weights = ", ".join(s.weights for s in stubs)
        return [f"next: put your checkpoint at {weights}, then `{build}`"]
    if fmt == "onnx":
        weights = ", ".join(s.weights for s in stubs)
        return [f"next: put your exported model at {weights}, then `{build}`"]
    steps = [f"next: `{build}`", "  then `gasbuild push --dry-run` to see what a push would do"]
    steps += [f"  {s.weights}: untrained starter weights; put yours there" for s in stubs]
    hotkeys = [s.hotkey for s in stubs if s.hotkey]
    if hotkeys:
        steps.append("each model pushes with its own hotkey; create each with")
        steps += [f"  btcli wallet new_hotkey --wallet.hotkey {h}" for h in hotkeys]
    return steps


# -- starter weights ------------------------------------------------------------------------

# The state dict of templates/init/model.py.j2's Detector (width 32, 2 classes), per modality.
_IMAGE_SHAPES: dict[str, tuple[int, ...]] = {
    "features.0.weight": (32, 3, 3, 3),
    "features.0.bias": (32,),
    "features.2.weight": (32, 32, 3, 3),
    "features.2.bias": (32,),
    "head.weight": (2, 32),
    "head.bias": (2,),
    "mean": (1, 3, 1, 1),
    "std": (1, 3, 1, 1),
}
_AUDIO_SHAPES: dict[str, tuple[int, ...]] = {
    "features.0.weight": (32, 1, 400),
    "features.0.bias": (32,),
    "features.2.weight": (32, 32, 3),
    "features.2.bias": (32,),
    "head.weight": (2, 32),
    "head.bias": (2,),
}
_FIXED = {"mean": (0.485, 0.456, 0.406), "std": (0.229, 0.224, 0.225)}


def _starter_weights(
    directory: Path, stubs: list[_ModelStub], fmt: str, chosen: Template | None
) -> dict[Path, bytes]:
    """Untrained weights for the starter model.py, never over a file that exists."""
    if fmt != "safetensors" or chosen is not None:
        return {}
    out = {}
    for stub in stubs:
        path = directory / stub.weights
        if not path.exists():
            shapes = _AUDIO_SHAPES if stub.modality == "audio" else _IMAGE_SHAPES
            out[path] = starter_safetensors(shapes, seed=stub.modality)
    return out


def starter_safetensors(shapes: dict[str, tuple[int, ...]], *, seed: str) -> bytes:
    """A float32 safetensors file of these shapes, written without torch or numpy: uniform
    values at a fan-in scale (as nn.Conv and nn.Linear initialise), the same bytes on every
    machine, so that the starter model builds, loads and runs."""
    rng = random.Random(seed)
    header: dict[str, object] = {}
    payload = bytearray()
    for name in sorted(shapes):
        shape = shapes[name]
        count = 1
        for dim in shape:
            count *= dim
        if name in _FIXED:
            values = list(_FIXED[name])
        else:
            fan_in = max(1, count // shape[0]) if len(shape) > 1 else 32
            bound = fan_in**-0.5
            values = [rng.uniform(-bound, bound) for _ in range(count)]
        start = len(payload)
        payload += struct.pack(f"<{count}f", *values)
        header[name] = {"dtype": "F32", "shape": list(shape), "data_offsets": [start, len(payload)]}
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # the data starts 8-byte aligned
    return struct.pack("<Q", len(text)) + text + bytes(payload)


def _template(name: str, modalities: tuple[str, ...]) -> Template:
    """The named built-in template, which must fit every requested modality."""
    from gasbuild.templates import registry

    reg = registry()
    template = reg.get(name)
    if template is None:
        raise UsageError(f"--template: no template named {name!r}", hint=reg.suggest(name))
    unfit = [m for m in modalities if m not in template.modalities]
    if unfit:
        raise UsageError(
            f"--template: {name} is for {' and '.join(template.modalities)} models, "
            f"not {', '.join(unfit)}",
            hint="pick another template or modality: `gasbuild templates` lists them",
        )
    return template


def _example_args(template: Template | None) -> str:
    if template is None:
        return "{}"
    from gasbuild.templates import example_args

    return example_args(template)


def _weights_path(modality: str, fmt: str, *, templated: bool) -> str:
    """A template is usually fed the checkpoint training wrote; otherwise the shipped file."""
    if templated:
        return f"checkpoints/{modality}.pt"
    return f"weights/{modality}.{'onnx' if fmt == 'onnx' else 'safetensors'}"
