"""model_config.yaml checks: every rule of SPEC.md §1-§2, with the line each problem is on.

The file is parsed with ``yaml.safe_load`` only, so a ``!!python/...`` tag is refused, never
executed. A second, structure-only pass (``yaml.compose``) maps every key to its line and finds
duplicate keys, which ``safe_load`` would silently collapse to the last one.

Codes::

    GAS201  error    not UTF-8 YAML, empty, not a mapping, duplicate key, refused tag, too large
    GAS202  error    name missing or not letters/digits/'-'/'_' (version not a string: warning)
    GAS203  error    modality missing, unknown, or not the modality being checked/pushed
    GAS204  error    dtype is not a spelling the loader accepts
    GAS205  error    preprocessing wrong for the modality (warnings: ignored keys, 224x224 default)
    GAS206  error    model section or num_classes missing, or num_classes outside 1..3
    GAS207  error    weights_file not a plain .safetensors name present in the submission
    GAS208  error    a model keyword load_model() cannot take (warning: not an identifier)
    GAS209  warning  unknown top-level key (the loader ignores it)
"""

from __future__ import annotations

import math
import reprlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeGuard

import yaml

from gasbuild.check.findings import CheckOptions, Finding, Severity, Submission
from gasbuild.submission import (
    AUDIO_DURATION_SECONDS,
    AUDIO_SAMPLE_RATE,
    AUDIO_SAMPLES,
    CONFIG_FILE,
    CONFIG_TOP_LEVEL_KEYS,
    DEFAULT_RESIZE,
    DEFAULT_WEIGHTS_FILE,
    DTYPES,
    MAX_NUM_FRAMES,
    MODALITIES,
    NAME_PATTERN,
    NUM_CLASSES_ALLOWED,
    PREPROCESSING_KEYS,
    Modality,
    canonical_dtype,
)

# A real config is a few hundred bytes; anything this large is not one, and is not parsed.
MAX_CONFIG_BYTES = 1 << 20
# Keys are mapped to lines this deep (section.key.item); deeper lines are not needed in messages.
_LINE_DEPTH = 4
# Keys of ``model`` the loader consumes itself; every other key goes to load_model(**kwargs).
_MODEL_OWN_KEYS = ("num_classes", "weights_file")
WEIGHTS_SUFFIX = ".safetensors"
# Aliases can chain containers far deeper than the text nests; walks stop here, not at a crash.
_MAX_VALUE_DEPTH = 64
_RGB = 3

# Where a value sits: ("model", "num_classes"); list items by index ("preprocessing", "resize", "0")
KeyPath = tuple[str, ...]


@dataclass
class _Parsed:
    """A parsed config: the mapping (when there is one), key lines, and parse findings."""

    config: dict[Any, Any] | None
    lines: dict[KeyPath, int] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)


@dataclass
class _Report:
    """Collects findings for one config, placing each on the line of the key it concerns."""

    lines: dict[KeyPath, int]
    findings: list[Finding] = field(default_factory=list)

    def add(
        self,
        code: str,
        severity: Severity,
        message: str,
        path: KeyPath = (),
        hint: str | None = None,
    ) -> None:
        self.findings.append(
            Finding(code, severity, message, file=CONFIG_FILE, line=self.line(path), hint=hint)
        )

    def line(self, path: KeyPath) -> int | None:
        """The line of ``path``, or of its nearest parent that has one (a missing key's section)."""
        for end in range(len(path), 0, -1):
            if path[:end] in self.lines:
                return self.lines[path[:end]]
        return None


# --------------------------------------------------------------------------- parsing


def parse_config(data: bytes) -> tuple[dict[Any, Any] | None, list[Finding]]:
    """Parse model_config.yaml safely; never raises.

    Returns (mapping, []) for a sound file, (mapping, GAS201 duplicate-key findings) when keys
    repeat, or (None, one GAS201 finding) when there is no mapping to check.
    """
    parsed = _parse(data)
    return parsed.config, parsed.findings


def _parse(data: bytes) -> _Parsed:
    if len(data) > MAX_CONFIG_BYTES:
        return _fail(f"{len(data)} bytes; a model_config.yaml is a few hundred", None, None)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        return _fail(f"not UTF-8 (byte {exc.start}: {exc.reason})", None, None)
    if not text.strip() or _only_comments(text):
        return _fail("empty file; it must be a mapping with name, modality and model", None, None)
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        config = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        return _yaml_failure(exc)
    except RecursionError:
        return _fail("nested too deeply to be a model_config.yaml", None, None)
    except (ValueError, TypeError, OverflowError) as exc:  # e.g. a date like 2024-13-45
        return _fail(f"invalid value: {exc}", _bad_timestamp_line(text), None)
    if not isinstance(config, dict) or not isinstance(node, yaml.MappingNode):
        kind = type(config).__name__ if config is not None else "nothing"
        line = None if node is None else node.start_mark.line + 1
        return _fail(f"the top level must be a mapping (key: value lines), not {kind}", line, None)
    lines: dict[KeyPath, int] = {}
    duplicates: list[Finding] = []
    _map_lines(node, (), lines, duplicates, set())
    return _Parsed(config, lines, duplicates)


def _bad_timestamp_line(text: str) -> int | None:
    """The line of the first plain scalar YAML reads as a date but no calendar has."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except (yaml.YAMLError, RecursionError):
        return None
    constructor = yaml.constructor.SafeConstructor()
    stack, seen = [root], set()
    while stack:
        node = stack.pop()
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, yaml.ScalarNode) and node.tag.endswith(":timestamp"):
            try:
                constructor.construct_yaml_timestamp(node)
            except (ValueError, OverflowError):
                return int(node.start_mark.line) + 1
        elif isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)
        elif isinstance(node, yaml.MappingNode):
            stack.extend(item for pair in node.value for item in pair)
    return None


def _only_comments(text: str) -> bool:
    return all(not ln.strip() or ln.lstrip().startswith("#") for ln in text.splitlines())


def _fail(message: str, line: int | None, col: int | None, hint: str | None = None) -> _Parsed:
    finding = Finding("GAS201", "error", message, file=CONFIG_FILE, line=line, col=col, hint=hint)
    return _Parsed(None, findings=[finding])


def _yaml_failure(exc: yaml.YAMLError) -> _Parsed:
    """A YAML error as one GAS201 finding at its mark; tags get a message saying why."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    line = mark.line + 1 if mark is not None else None
    col = mark.column + 1 if mark is not None else None
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    if isinstance(exc, yaml.constructor.ConstructorError) and "tag" in problem:
        return _fail(
            f"refused YAML tag: {problem}",
            line,
            col,
            hint="only plain YAML is allowed; tags are never constructed, let alone executed",
        )
    context = getattr(exc, "context", None)
    message = f"{context}: {problem}" if context else problem
    return _fail(f"YAML syntax error: {message}", line, col)


def _map_lines(
    node: yaml.Node,
    path: KeyPath,
    lines: dict[KeyPath, int],
    duplicates: list[Finding],
    seen: set[int],
) -> None:
    """Record the line of every key down to ``_LINE_DEPTH``; report duplicate keys.

    Aliased nodes are visited once (``seen``), so an alias bomb costs nothing here.
    """
    if len(path) >= _LINE_DEPTH or id(node) in seen:
        return
    seen.add(id(node))
    if isinstance(node, yaml.MappingNode):
        keys: set[tuple[str, str]] = set()
        for key, value in node.value:
            if not isinstance(key, yaml.ScalarNode):
                continue
            line = key.start_mark.line + 1
            if (key.tag, key.value) in keys:
                where = ".".join((*path, key.value))
                duplicates.append(
                    Finding(
                        "GAS201",
                        "error",
                        f"duplicate key {where!r}",
                        file=CONFIG_FILE,
                        line=line,
                        hint="YAML readers disagree on which value wins; keep one",
                    )
                )
            keys.add((key.tag, key.value))
            lines.setdefault((*path, key.value), line)
            _map_lines(value, (*path, key.value), lines, duplicates, seen)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            lines.setdefault((*path, str(index)), item.start_mark.line + 1)
            _map_lines(item, (*path, str(index)), lines, duplicates, seen)


# --------------------------------------------------------------------------- value predicates


def _is_int(value: object) -> TypeGuard[int]:
    """An integer that is not a YAML boolean (``yes`` loads as True, and True == 1)."""
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> TypeGuard[int | float]:
    if isinstance(value, float):
        return math.isfinite(value)
    return _is_int(value)


_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxlist, _REPR.maxdict, _REPR.maxstring, _REPR.maxother = 2, 4, 4, 60, 60


def _short(value: object) -> str:
    """A bounded repr: a value built from YAML aliases can be exponentially large when printed."""
    return _REPR.repr(value)


def _describe(value: object) -> str:
    """How a wrong value reads in a message; booleans say where they came from."""
    if isinstance(value, bool):
        return f"{value!r} (a YAML boolean: yes/no/on/off/true/false)"
    return _short(value)


# --------------------------------------------------------------------------- checks


def check_config(sub: Submission, opts: CheckOptions) -> list[Finding]:
    """Every model_config.yaml rule, as findings on ``model_config.yaml``."""
    if CONFIG_FILE not in sub.names():
        return [Finding("GAS201", "error", f"{CONFIG_FILE} is missing", file=CONFIG_FILE)]
    size = sub.size(CONFIG_FILE)
    if size > MAX_CONFIG_BYTES:
        message = f"{size} bytes; a model_config.yaml is a few hundred"
        return [Finding("GAS201", "error", message, file=CONFIG_FILE)]
    try:
        data = sub.read(CONFIG_FILE)
    except OSError as exc:
        return [Finding("GAS201", "error", f"cannot read it: {exc}", file=CONFIG_FILE)]
    parsed = _parse(data)
    if parsed.config is None:
        return parsed.findings
    report = _Report(parsed.lines, list(parsed.findings))
    _check_mapping(report, parsed.config, sub.names(), opts)
    return report.findings


def _check_mapping(
    report: _Report, cfg: dict[Any, Any], names: list[str], opts: CheckOptions
) -> None:
    """The rules proper, on an already parsed mapping."""
    _check_name(report, cfg)
    modality = _check_modality(report, cfg, opts)
    _check_dtype(report, cfg)
    _check_preprocessing(report, cfg, modality)
    _check_model(report, cfg, names)
    for key in cfg:
        if key not in CONFIG_TOP_LEVEL_KEYS:
            report.add(
                "GAS209",
                "warning",
                f"unknown top-level key {_short(key)}; the loader ignores it",
                (str(key),),
                hint=f"known keys: {', '.join(CONFIG_TOP_LEVEL_KEYS)}",
            )


def _check_name(report: _Report, cfg: dict[Any, Any]) -> None:
    name = cfg.get("name")
    if "name" not in cfg or name is None:
        report.add("GAS202", "error", "name is required", hint='e.g. name: "my-detector-v1"')
    elif not isinstance(name, str):
        report.add(
            "GAS202",
            "error",
            f"name must be a string, not {_describe(name)}",
            ("name",),
            hint="quote it",
        )
    elif not NAME_PATTERN.match(name):
        report.add(
            "GAS202",
            "error",
            f"name {_short(name)} may hold only letters, digits, '-' and '_'",
            ("name",),
        )
    version = cfg.get("version")
    if version is not None and not isinstance(version, str):
        report.add(
            "GAS202",
            "warning",
            f"version {_describe(version)} is not a string",
            ("version",),
            hint='quote it: version: "1.0" (YAML reads 1.0 as a number and 1.10 as 1.1)',
        )


def _check_modality(report: _Report, cfg: dict[Any, Any], opts: CheckOptions) -> Modality | None:
    """Check ``modality``; return the modality preprocessing is judged against (the slot's)."""
    value = cfg.get("modality")
    declared = next((m for m in MODALITIES if m == value), None)
    if value is None:
        report.add(
            "GAS203", "error", "modality is required", hint=f"one of {', '.join(MODALITIES)}"
        )
    elif declared is None:
        report.add(
            "GAS203",
            "error",
            f"modality {_describe(value)} is not one of {', '.join(MODALITIES)}",
            ("modality",),
        )
    elif opts.modality is not None and declared != opts.modality:
        report.add(
            "GAS203",
            "error",
            f"modality is {declared!r} but this submission is for the {opts.modality} slot",
            ("modality",),
            hint="the benchmark feeds the slot's tensors, whatever the config says",
        )
    return opts.modality or declared


def _check_dtype(report: _Report, cfg: dict[Any, Any]) -> None:
    if "dtype" not in cfg:
        return
    value = cfg["dtype"]
    if not isinstance(value, str) or canonical_dtype(value) is None:
        report.add(
            "GAS204",
            "error",
            f"dtype {_describe(value)} is not a spelling the loader accepts",
            ("dtype",),
            hint=f"one of {', '.join(DTYPES)} (it casts the weights only, never the input)",
        )


# --------------------------------------------------------------------------- preprocessing


def _check_preprocessing(report: _Report, cfg: dict[Any, Any], modality: Modality | None) -> None:
    pre = cfg.get("preprocessing")
    if pre is None:
        pre = {}
    if not isinstance(pre, dict):
        report.add(
            "GAS205",
            "error",
            f"preprocessing must be a mapping, not {_describe(pre)}",
            ("preprocessing",),
        )
        return
    applicable = _applicable_keys(report, pre, modality)
    for key in applicable:
        if key in pre:
            _KEY_CHECKS[key](report, pre[key], ("preprocessing", key))
    if modality in ("image", "video") and "resize" not in pre:
        height, width = DEFAULT_RESIZE
        report.add(
            "GAS205",
            "warning",
            f"no preprocessing.resize: the benchmark feeds {height}x{width}",
            ("preprocessing",),
            hint=f"state it: resize: [{height}, {width}]",
        )
    if modality == "video" and "num_frames" in pre and "resize" not in pre:
        report.add(
            "GAS205",
            "error",
            "num_frames without resize is ignored: the loader reads num_frames only with resize",
            ("preprocessing", "num_frames"),
            hint="add resize: [H, W] (the benchmark default is 224x224)",
        )
    if modality == "audio":
        _check_audio_product(report, pre)


def _applicable_keys(
    report: _Report, pre: dict[Any, Any], modality: Modality | None
) -> tuple[str, ...]:
    """The keys checked for this modality; the others are warned about as ignored or unknown."""
    known = tuple(dict.fromkeys(k for keys in PREPROCESSING_KEYS.values() for k in keys))
    applicable = known if modality is None else PREPROCESSING_KEYS[modality]
    for key in pre:
        path = ("preprocessing", str(key))
        if key not in known:
            report.add("GAS205", "warning", f"unknown preprocessing key {_short(key)}", path)
        elif key not in applicable:
            report.add(
                "GAS205",
                "warning",
                f"preprocessing.{key} does not apply to {modality} models and is ignored",
                path,
            )
    return applicable


def _check_resize(report: _Report, value: object, path: KeyPath) -> None:
    ok = isinstance(value, list) and len(value) == 2 and all(_is_int(v) and v > 0 for v in value)
    if not ok:
        report.add(
            "GAS205",
            "error",
            f"resize must be [H, W], two positive integers, not {_describe(value)}",
            path,
        )


def _check_num_frames(report: _Report, value: object, path: KeyPath) -> None:
    if not (_is_int(value) and 1 <= value <= MAX_NUM_FRAMES):
        report.add(
            "GAS205",
            "error",
            f"num_frames must be an integer in 1..{MAX_NUM_FRAMES}, not {_describe(value)}",
            path,
        )


def _check_frame_rate(report: _Report, value: object, path: KeyPath) -> None:
    if not (_is_number(value) and value > 0):
        report.add(
            "GAS205", "error", f"frame_rate must be a number > 0, not {_describe(value)}", path
        )


def _check_sample_rate(report: _Report, value: object, path: KeyPath) -> None:
    if not (_is_number(value) and value == AUDIO_SAMPLE_RATE):
        report.add(
            "GAS205",
            "error",
            f"sample_rate must be {AUDIO_SAMPLE_RATE}, not {_describe(value)}",
            path,
            hint=f"the benchmark always feeds {AUDIO_SAMPLES} samples of 16 kHz mono",
        )


def _check_duration(report: _Report, value: object, path: KeyPath) -> None:
    if not (_is_number(value) and value == AUDIO_DURATION_SECONDS):
        report.add(
            "GAS205",
            "error",
            f"duration_seconds must be {AUDIO_DURATION_SECONDS}, not {_describe(value)}",
            path,
            hint=f"the benchmark always feeds {AUDIO_SAMPLES} samples ({AUDIO_DURATION_SECONDS} s)",
        )


def _check_audio_product(report: _Report, pre: dict[Any, Any]) -> None:
    """Both given and each plausible, but together not 96000 samples (e.g. 8000 x 12.0)."""
    rate, seconds = pre.get("sample_rate"), pre.get("duration_seconds")
    if _is_number(rate) and _is_number(seconds) and rate * seconds != AUDIO_SAMPLES:
        if rate == AUDIO_SAMPLE_RATE or seconds == AUDIO_DURATION_SECONDS:
            return  # the single wrong value was already reported
        report.add(
            "GAS205",
            "error",
            f"sample_rate * duration_seconds is {rate * seconds:g}, not {AUDIO_SAMPLES}",
            ("preprocessing",),
        )


def _check_normalize(report: _Report, value: object, path: KeyPath) -> None:
    if not isinstance(value, dict):
        report.add(
            "GAS205",
            "error",
            f"normalize must be a mapping with mean and std, not {_describe(value)}",
            path,
        )
        return
    for key in ("mean", "std"):
        values = value.get(key)
        if not (isinstance(values, list) and len(values) == _RGB and all(map(_is_number, values))):
            report.add(
                "GAS205",
                "error",
                f"normalize.{key} must be a list of {_RGB} numbers, not {_describe(values)}",
                (*path, key),
            )
        elif key == "std" and not all(v > 0 for v in values):
            report.add("GAS205", "error", "normalize.std values must all be > 0", (*path, key))


_KEY_CHECKS: dict[str, Callable[[_Report, object, KeyPath], None]] = {
    "resize": _check_resize,
    "num_frames": _check_num_frames,
    "frame_rate": _check_frame_rate,
    "sample_rate": _check_sample_rate,
    "duration_seconds": _check_duration,
    "normalize": _check_normalize,
}


# --------------------------------------------------------------------------- model section


def _check_model(report: _Report, cfg: dict[Any, Any], names: list[str]) -> None:
    model = cfg.get("model")
    if not isinstance(model, dict):
        message = "a model section is required" if model is None else "model must be a mapping"
        report.add("GAS206", "error", message, ("model",), hint="model: {num_classes: 2} at least")
        return
    _check_num_classes(report, model)
    _check_weights_file(report, model, names)
    for key, value in model.items():
        if key not in _MODEL_OWN_KEYS:
            _check_kwarg(report, key, value)


def _check_num_classes(report: _Report, model: dict[Any, Any]) -> None:
    path = ("model", "num_classes")
    if "num_classes" not in model:
        report.add("GAS206", "error", "model.num_classes is required", ("model",))
        return
    value = model["num_classes"]
    if not _is_int(value):
        report.add(
            "GAS206", "error", f"num_classes must be an integer, not {_describe(value)}", path
        )
    elif value not in NUM_CLASSES_ALLOWED:
        report.add(
            "GAS206",
            "error",
            f"num_classes is {value}; the benchmark reads only 1, 2 or 3 output classes",
            path,
            hint="C=1 is read as one P(AI) logit, C=2 as [real, synthetic], C=3 as real plus two"
            " AI classes; any other C is misread, whatever the guide's 1-100 says",
        )


def declared_weights_file(cfg: dict[Any, Any] | None) -> str:
    """The weights file a config names (``model.weights_file``), or the default one."""
    model = cfg.get("model") if cfg is not None else None
    value = model.get("weights_file") if isinstance(model, dict) else None
    return value if isinstance(value, str) else DEFAULT_WEIGHTS_FILE


def is_plain_name(name: str) -> bool:
    """A file name at the zip's root: no folder, no path tricks, nothing hidden."""
    return (
        bool(name)
        and name not in (".", "..")
        and not any(c in name for c in "/\\\x00")
        and ":" not in name
    )


def _check_weights_file(report: _Report, model: dict[Any, Any], names: list[str]) -> None:
    path = ("model", "weights_file")
    value = model.get("weights_file", DEFAULT_WEIGHTS_FILE)
    if not isinstance(value, str):
        report.add(
            "GAS207", "error", f"weights_file must be a string, not {_describe(value)}", path
        )
    elif not is_plain_name(value) or not value.endswith(WEIGHTS_SUFFIX):
        report.add(
            "GAS207",
            "error",
            f"weights_file {_short(value)} must be a plain file name ending in {WEIGHTS_SUFFIX}",
            path,
            hint="the zip holds no folders; the file sits next to model.py",
        )
    elif value not in names:
        report.add(
            "GAS207",
            "error",
            f"weights file {_short(value)} is not in the submission",
            path,
            hint=f"it holds: {', '.join(names) or 'nothing'}",
        )


def _check_kwarg(report: _Report, key: object, value: object) -> None:
    """A model key the loader passes as ``load_model(path, key=value)``."""
    path = ("model", str(key))
    if not isinstance(key, str):
        report.add(
            "GAS208",
            "error",
            f"model key {_describe(key)} is not a string",
            path,
            hint="keyword arguments must be named by strings",
        )
        return
    if key == "weights_path":
        report.add(
            "GAS208",
            "error",
            "model.weights_path collides with load_model's first argument",
            path,
            hint=(
                "it cannot bind, so the loader calls load_model with num_classes only, "
                "dropping every key"
            ),
        )
    elif not key.isidentifier():
        report.add(
            "GAS208",
            "warning",
            f"model key {_short(key)} is not a Python identifier",
            path,
            hint="only a load_model(..., **kwargs) can receive it",
        )
    problem = _plain_value_problem(value, set(), set())
    if problem is not None:
        report.add(
            "GAS208",
            "error",
            f"model.{key}: {problem}",
            path,
            hint="use plain YAML scalars, lists and mappings; quote dates and the like",
        )


def _plain_value_problem(value: object, active: set[int], done: set[int]) -> str | None:
    """Why ``value`` is not plain YAML data (scalars, lists, scalar-keyed mappings), or None.

    ``active`` holds the containers on the current path (a recursive alias is a problem);
    ``done`` the containers already found plain, so an alias bomb is walked once, not 9**9 times.
    """
    if value is None or isinstance(value, str | int | float | bool):
        return None
    if not isinstance(value, list | dict):
        return f"{type(value).__name__} value {_short(value)} is not plain YAML data"
    if id(value) in done:
        return None
    if id(value) in active:
        return "a YAML alias refers to itself"
    if len(active) >= _MAX_VALUE_DEPTH:
        return f"nested more than {_MAX_VALUE_DEPTH} levels deep"
    active.add(id(value))
    items = list(value.items()) if isinstance(value, dict) else [(None, v) for v in value]
    for key, item in items:
        if isinstance(value, dict) and not isinstance(key, str | int | float | bool):
            return f"mapping key {_short(key)} is not a scalar"
        problem = _plain_value_problem(item, active, done)
        if problem is not None:
            return problem
    active.discard(id(value))
    done.add(id(value))
    return None
