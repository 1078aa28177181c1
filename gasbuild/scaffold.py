"""``gasbuild init``: a commented gas.toml and a starter model.py, from Jinja2 templates."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

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


def _environment() -> object:
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
    directory = directory.resolve()
    prefix = _slug(name or directory.name)
    chosen = _template(template, modalities) if template else None
    if not modalities:
        modalities = (chosen.modalities[0],) if chosen else ("image",)
    ordered: list[Modality] = [m for m in INPUTS if m in modalities]
    multi = len(ordered) > 1
    stubs = [
        _ModelStub(
            modality=m,
            name=f"{prefix}-{m}",
            model_file=f"{m}_model.py" if multi else "model.py",
            weights=_weights_path(m, fmt, templated=chosen is not None),
            template=chosen.name if chosen else None,
            template_args=_example_args(chosen),
        )
        for m in ordered
    ]
    files: dict[Path, str] = {}
    env = _environment()
    files[directory / "gas.toml"] = env.get_template("gas.toml.j2").render(  # type: ignore[attr-defined]
        models=stubs, fmt=fmt, schema_uri=(data_dir("schemas") / "gas.schema.json").as_uri()
    )
    if fmt == "safetensors" and chosen is None:
        for stub in stubs:
            files[directory / stub.model_file] = env.get_template("model.py.j2").render(  # type: ignore[attr-defined]
                modality=stub.modality,
                input_doc=INPUTS[stub.modality].description,  # type: ignore[index]
            )
    existing = [p for p in files if p.exists()]
    if existing and not force:
        names = ", ".join(display_path(p) for p in existing)
        raise UsageError(f"{names} already exists", hint="pass --force to overwrite")
    directory.mkdir(parents=True, exist_ok=True)
    for path, text in files.items():
        path.write_text(text, encoding="utf-8")
    return list(files)


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
