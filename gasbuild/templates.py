"""Architecture templates: Jinja2 ``model.py`` templates with a declared argument schema.

A template is a directory holding ``template.toml`` (what it is for and which arguments it takes)
and ``model.py.j2``. gas.toml selects one with
``architecture = { template = "timm-image", args = { model_name = "resnet18" } }``; the built-in
templates live in ``templates/models/`` and a project may add its own directory
(``[build] templates = "my_templates/"``), whose templates shadow built-ins of the same name.

``template.toml``::

    description = "Any timm image backbone, pretrained=False, weights from the safetensors file."
    modalities = ["image"]
    requires = ["timm"]                 # modules model.py imports beyond torch and safetensors
    files = { "config.json" = "config" }  # zip entries shipped from file arguments (optional)

    [args.model_name]
    type = "string"                     # string | integer | number | boolean | list | file
    required = true
    help = "timm model name, e.g. resnet18"
    example = "resnet18"                # shown by `gasbuild init --template` and snippets
    # optional: default, choices, min, max, items (list element type), min_items, max_items,
    # pattern (a regular expression that every string value must match in full)

Arguments are checked before anything is fetched, so a wrong one is a manifest error that names
``models.image.architecture.args.NAME`` and its line. Rendering is strict (an undefined variable
is an error) and deterministic: values reach model.py only through the ``py`` filter, which
writes Python literals, so an argument can never inject code.
"""

from __future__ import annotations

import ast
import difflib
import math
import re
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from gasbuild.cache import files_digest
from gasbuild.errors import UserError, display_path
from gasbuild.resources import data_dir
from gasbuild.submission import MODALITIES, Modality

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

TEMPLATE_FILE = "template.toml"
SOURCE_FILE = "model.py.j2"
ArgType = Literal["string", "integer", "number", "boolean", "list", "file"]
_ARG_TYPES: tuple[ArgType, ...] = ("string", "integer", "number", "boolean", "list", "file")
_ITEM_TYPES = ("string", "integer", "number", "boolean")
_NAME = re.compile(r"^[a-z][a-z0-9-]*$")
_ARG_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")
# Zip entries a template may ship besides model.py, model_config.yaml and the weights.
SHIPPABLE_FILES = ("config.json",)


class TemplateError(UserError):
    """A template directory is malformed (a project template, or a broken installation)."""


class ArgError(UserError, ValueError):
    """An argument value does not fit its declaration; the message completes "args.NAME ..."."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)


@dataclass(frozen=True)
class Arg:
    """One declared argument."""

    name: str
    type: ArgType
    help: str
    required: bool = False
    default: Any = None
    choices: tuple[Any, ...] = ()
    min: float | None = None
    max: float | None = None
    items: str | None = None
    min_items: int | None = None
    max_items: int | None = None
    example: Any = None  # a realistic value for required arguments (init, snippets)
    pattern: str | None = None  # strings (and string items) must match it in full

    def describe(self) -> str:
        """``integer, default 2, 1..3`` for listings."""
        kind = f"list of {self.items}" if self.type == "list" and self.items else self.type
        parts = [kind]
        if self.required:
            parts.append("required")
        elif self.default is not None:
            parts.append(f"default {_show(self.default)}")
        if self.choices:
            parts.append("one of " + ", ".join(_show(c) for c in self.choices))
        if self.min is not None or self.max is not None:
            low = "" if self.min is None else _show(self.min)
            high = "" if self.max is None else _show(self.max)
            parts.append(f"{low}..{high}")
        return ", ".join(parts)

    def check(self, value: Any) -> Any:
        """The value, checked against the declaration; raises ArgError."""
        if self.type == "list":
            if not isinstance(value, list):
                raise ArgError(f"must be a list (got {_show(value)})")
            self._check_length(value)
            item_type = self.items or "string"
            return [_check_scalar(item_type, item, self, f"[{i}]") for i, item in enumerate(value)]
        return _check_scalar(self.type, value, self, "")

    def _check_length(self, value: list[Any]) -> None:
        if self.min_items is not None and len(value) < self.min_items:
            raise ArgError(f"must have at least {self.min_items} items (got {len(value)})")
        if self.max_items is not None and len(value) > self.max_items:
            raise ArgError(f"must have at most {self.max_items} items (got {len(value)})")


def _check_scalar(kind: str, value: Any, arg: Arg, where: str) -> Any:
    prefix = f"{where} " if where else ""
    if kind in ("string", "file"):
        if not isinstance(value, str) or not value:
            raise ArgError(f"{prefix}must be a non-empty string (got {_show(value)})")
    elif kind == "boolean":
        if not isinstance(value, bool):
            raise ArgError(f"{prefix}must be true or false (got {_show(value)})")
    elif kind == "integer":
        if isinstance(value, bool) or not isinstance(value, int):
            raise ArgError(f"{prefix}must be an integer (got {_show(value)})")
    elif kind == "number":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ArgError(f"{prefix}must be a number (got {_show(value)})")
        if not math.isfinite(value):
            raise ArgError(f"{prefix}must be finite (got {_show(value)})")
        value = float(value)
    if arg.pattern is not None and isinstance(value, str) and not re.fullmatch(arg.pattern, value):
        raise ArgError(f"{prefix}must match {arg.pattern} (got {_show(value)})")
    if arg.choices and value not in arg.choices:
        options = ", ".join(_show(c) for c in arg.choices)
        raise ArgError(f"{prefix}must be one of {options} (got {_show(value)})")
    if kind in ("integer", "number"):
        if arg.min is not None and value < arg.min:
            raise ArgError(f"{prefix}must be at least {_show(arg.min)} (got {_show(value)})")
        if arg.max is not None and value > arg.max:
            raise ArgError(f"{prefix}must be at most {_show(arg.max)} (got {_show(value)})")
    return value


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    return repr(value)


@dataclass(frozen=True)
class Template:
    """A loaded template: its declaration and where its files are."""

    name: str
    directory: Path
    description: str
    modalities: tuple[Modality, ...]
    requires: tuple[str, ...]
    args: dict[str, Arg]
    files: dict[str, str] = field(default_factory=dict)  # zip entry -> file argument
    builtin: bool = True

    def digest(self) -> str:
        """sha256 over the template's files (names and bytes), for cache keys and gas.lock."""
        files = sorted(p for p in self.directory.rglob("*") if p.is_file())
        return files_digest(
            (path.relative_to(self.directory).as_posix(), path)
            for path in files
            if "__pycache__" not in path.parts
        )

    def resolve_args(self, given: Mapping[str, Any]) -> Iterator[tuple[str, str, str | None]]:
        """Problems with ``given`` as (arg name or "", message, hint); nothing when it is fine."""
        for name in given:
            if name not in self.args:
                close = difflib.get_close_matches(name, list(self.args), n=1, cutoff=0.6)
                hint = f'did you mean "{close[0]}"?' if close else self._arg_list()
                yield name, f"is not an argument of template {self.name}", hint
        for name, arg in self.args.items():
            if name in given:
                try:
                    arg.check(given[name])
                except ArgError as exc:
                    yield name, exc.message, exc.hint or f"{name}: {arg.help}"
            elif arg.required:
                yield (
                    "",
                    f"lacks {name}, which template {self.name} requires",
                    (f"{name} ({arg.describe()}): {arg.help}"),
                )

    def _arg_list(self) -> str:
        return "its arguments: " + (", ".join(self.args) or "none")

    def values(self, given: Mapping[str, Any]) -> dict[str, Any]:
        """Checked values with defaults filled in (call after ``resolve_args`` found nothing)."""
        out: dict[str, Any] = {}
        for name, arg in self.args.items():
            if name in given:
                out[name] = arg.check(given[name])
            elif arg.default is not None:
                out[name] = arg.check(arg.default)
            else:
                out[name] = None
        return out


# ------------------------------------------------------------------------------------------------
# Loading declarations


def builtin_dir() -> Path:
    """The built-in templates (``templates/models`` in the repo, ``_data`` in the wheel)."""
    return data_dir("templates") / "models"


def load_template(directory: Path, *, builtin: bool) -> Template:
    """Read and check one template directory; TemplateError names the file and key."""
    decl_path = directory / TEMPLATE_FILE
    where = display_path(decl_path)
    try:
        data = tomllib.loads(decl_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise TemplateError(f"{where}: cannot read ({exc})") from None
    if not (directory / SOURCE_FILE).is_file():
        raise TemplateError(f"{display_path(directory)}: has no {SOURCE_FILE}")
    known = {"description", "modalities", "requires", "files", "args"}
    for key in data:
        if key not in known:
            raise TemplateError(f"{where}: {key} is not a known key", hint=", ".join(sorted(known)))
    description = _str_field(data, "description", where)
    modalities = tuple(_str_list(data, "modalities", where))
    for modality in modalities:
        if modality not in MODALITIES:
            raise TemplateError(f"{where}: modalities has {modality!r}", hint="image, video, audio")
    if not modalities:
        raise TemplateError(f"{where}: modalities is empty", hint='e.g. modalities = ["image"]')
    args_table = data.get("args", {})
    if not isinstance(args_table, dict):
        raise TemplateError(f"{where}: args must be a table of [args.NAME] tables")
    args = {name: _load_arg(name, spec, where) for name, spec in args_table.items()}
    files = data.get("files", {})
    if not isinstance(files, dict):
        raise TemplateError(f"{where}: files must be a table of entry = argument")
    for entry, arg_name in files.items():
        if entry not in SHIPPABLE_FILES:
            raise TemplateError(
                f"{where}: files.{entry} cannot be shipped",
                hint="a submission may hold only " + ", ".join(SHIPPABLE_FILES) + " besides",
            )
        if arg_name not in args or args[arg_name].type != "file":
            raise TemplateError(f"{where}: files.{entry} must name a file argument")
    return Template(
        name=directory.name,
        directory=directory,
        description=description,
        modalities=modalities,  # type: ignore[arg-type]  # checked against MODALITIES above
        requires=tuple(_str_list(data, "requires", where)),
        args=args,
        files=dict(files),
        builtin=builtin,
    )


def _str_field(data: dict[str, Any], key: str, where: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value.strip():
        raise TemplateError(f"{where}: {key} must be a non-empty string")
    return value.strip()


def _str_list(data: dict[str, Any], key: str, where: str) -> list[str]:
    value = data.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise TemplateError(f"{where}: {key} must be a list of strings")
    return list(value)


_ARG_KEYS = {
    "type",
    "help",
    "required",
    "default",
    "choices",
    "min",
    "max",
    "items",
    "min_items",
    "max_items",
    "example",
    "pattern",
}


def _load_arg(name: str, spec: Any, where: str) -> Arg:
    at = f"{where}: args.{name}"
    if not _ARG_NAME.match(name):
        raise TemplateError(f"{at} is not a valid argument name", hint="lowercase, digits and _")
    if not isinstance(spec, dict):
        raise TemplateError(f"{at} must be a table")
    for key in spec:
        if key not in _ARG_KEYS:
            raise TemplateError(f"{at}.{key} is not a known key", hint=", ".join(sorted(_ARG_KEYS)))
    kind = spec.get("type")
    if kind not in _ARG_TYPES:
        raise TemplateError(f"{at}.type must be one of " + ", ".join(_ARG_TYPES))
    items = spec.get("items")
    if items is not None and (kind != "list" or items not in _ITEM_TYPES):
        raise TemplateError(f"{at}.items must be one of {', '.join(_ITEM_TYPES)}, for lists only")
    arg = Arg(
        name=name,
        type=kind,
        help=_str_field(spec, "help", at),
        required=bool(spec.get("required", False)),
        default=spec.get("default"),
        choices=tuple(spec.get("choices", ())),
        min=spec.get("min"),
        max=spec.get("max"),
        items=items,
        min_items=spec.get("min_items"),
        max_items=spec.get("max_items"),
        example=spec.get("example"),
        pattern=_pattern(spec.get("pattern"), kind, items, at),
    )
    if arg.required and arg.default is not None:
        raise TemplateError(f"{at} is required and has a default; keep one")
    for key in ("default", "example"):
        value = spec.get(key)
        if value is None:
            continue
        try:
            arg.check(value)
        except ArgError as exc:
            raise TemplateError(f"{at}.{key} {exc.message}", hint=exc.hint) from None
    return arg


def _pattern(value: Any, kind: str, items: str | None, at: str) -> str | None:
    """A declared ``pattern``, checked to compile and to apply to strings."""
    if value is None:
        return None
    if kind not in ("string", "file") and not (kind == "list" and items == "string"):
        raise TemplateError(f"{at}.pattern applies to strings only")
    if not isinstance(value, str):
        raise TemplateError(f"{at}.pattern must be a string (a regular expression)")
    try:
        re.compile(value)
    except re.error as exc:
        raise TemplateError(f"{at}.pattern is not a regular expression ({exc})") from None
    return value


# ------------------------------------------------------------------------------------------------
# The registry


@dataclass
class Registry:
    """Every template a project can use, project directories first."""

    templates: dict[str, Template]

    def get(self, name: str) -> Template | None:
        return self.templates.get(name)

    def suggest(self, name: str) -> str:
        close = difflib.get_close_matches(name, list(self.templates), n=1, cutoff=0.5)
        if close:
            return f'did you mean "{close[0]}"? `gasbuild templates` lists them all'
        return "available: " + ", ".join(sorted(self.templates))


def registry(extra: Path | None = None) -> Registry:
    """Built-in templates, shadowed by those in ``extra`` (a project's ``[build] templates``)."""
    found: dict[str, Template] = {}
    for directory, builtin in ((builtin_dir(), True), (extra, False)):
        if directory is None:
            continue
        if not directory.is_dir():
            raise TemplateError(
                f"{display_path(directory)}: template directory does not exist",
                hint="[build] templates is relative to gas.toml",
            )
        for sub in sorted(directory.iterdir()):
            if (sub / TEMPLATE_FILE).is_file():
                if not _NAME.match(sub.name):
                    raise TemplateError(
                        f"{display_path(sub)}: template names are lowercase letters, digits, '-'"
                    )
                found[sub.name] = load_template(sub, builtin=builtin)
    return Registry(found)


# ------------------------------------------------------------------------------------------------
# Rendering


def py_literal(value: Any) -> str:
    """A Python literal for a TOML-typed value: the only way values enter model.py."""
    if value is None or isinstance(value, bool | int | str):
        return repr(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise TemplateError(f"{value!r} has no Python literal")
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(py_literal(v) for v in value) + "]"
    if isinstance(value, tuple):
        inner = ", ".join(py_literal(v) for v in value)
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{py_literal(k)}: {py_literal(v)}" for k, v in value.items()) + "}"
    raise TemplateError(f"{type(value).__name__} values cannot be rendered into model.py")


def render(template: Template, context: dict[str, Any]) -> bytes:
    """model.py from the template; strict about undefined names, and checked to parse."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(template.directory)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )
    env.filters["py"] = lambda v: py_literal(str(v) if isinstance(v, jinja2.Undefined) else v)
    try:
        text = env.get_template(SOURCE_FILE).render(**context)
    except jinja2.TemplateError as exc:
        where = display_path(template.directory / SOURCE_FILE)
        line = getattr(exc, "lineno", None)
        at = f"{where}:{line}" if line else where
        raise TemplateError(f"{at}: template {template.name} failed to render: {exc}") from None
    text = text.rstrip() + "\n"
    try:
        ast.parse(text)
    except SyntaxError as exc:
        raise TemplateError(
            f"template {template.name} rendered invalid Python (line {exc.lineno}: {exc.msg})",
            hint="fix the template's model.py.j2",
        ) from None
    return text.encode("utf-8")


__all__ = [
    "Arg",
    "ArgError",
    "Registry",
    "Template",
    "TemplateError",
    "builtin_dir",
    "example_args",
    "load_template",
    "py_literal",
    "registry",
    "render",
    "toml_value",
]


def toml_value(value: Any) -> str:
    """A TOML inline value (for gas.toml snippets): ``"resnet18"``, ``[16, 32]``, ``true``."""
    import tomli_w

    return tomli_w.dumps({"v": value}).split("=", 1)[1].strip()


def example_args(template: Template) -> str:
    """``{ model_name = "resnet18" }``: the required arguments with their examples, as TOML."""
    parts = []
    for arg in template.args.values():
        if arg.required:
            value = arg.example if arg.example is not None else _PLACEHOLDERS[arg.type]
            parts.append(f"{arg.name} = {toml_value(value)}")
    return "{ " + ", ".join(parts) + " }" if parts else "{}"


_PLACEHOLDERS: dict[str, Any] = {
    "string": "...",
    "file": "path/to/file",
    "integer": 0,
    "number": 0.0,
    "boolean": False,
    "list": [],
}
