"""gas.toml: its pydantic models, and loading with errors that name file, line, key and fix.

The models are strict (no coercion: TOML is typed, so a string where a number belongs is a
mistake worth reporting) and closed (an unknown key is an error with a "did you mean"). Rules
that depend on the modality a model is declared under (``[models.video]`` needs frames, audio
must be 16 kHz x 6 s) run after pydantic, on the whole manifest, with the same error format.
"""

from __future__ import annotations

import datetime as _dt
import difflib
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gasbuild import _tomlpos
from gasbuild.blobs import NAME_MAX, expand_user, long_component
from gasbuild.errors import Location, ManifestError, SourceError, display_path
from gasbuild.resources import MANIFEST_NAME
from gasbuild.submission import (
    AUDIO_DURATION_SECONDS,
    AUDIO_SAMPLE_RATE,
    DEFAULT_NUM_FRAMES,
    DEFAULT_RESIZE,
    DEFAULT_WEIGHTS_FILE,
    MAX_NUM_FRAMES,
    MODALITIES,
    NAME_PATTERN,
    Format,
    Modality,
    Vertical,
)
from gasbuild.urls import is_url, url_secret_problem

if TYPE_CHECKING:
    from gasbuild.templates import Registry

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

SHA256_PATTERN = r"^[0-9a-f]{64}$"
WEIGHTS_FILE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]*\.safetensors$"

IMAGENET_NORMALIZE = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))

DtypeName = Literal["float32", "fp32", "float16", "fp16", "bfloat16", "bf16"]


class _Section(BaseModel):
    """Closed, strict, immutable: the shape every gas.toml table shares."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class WalletSection(_Section):
    """The bittensor wallet that signs uploads and commitments (``[wallet]``)."""

    name: str = Field("default", description="Wallet name under the wallets directory.")
    hotkey: str = Field(
        "default", description="Default hotkey; a model may name its own (`models.*.hotkey`)."
    )
    path: str | None = Field(None, description="Wallets directory (default ~/.bittensor/wallets).")


class NetworkSection(_Section):
    """Where submissions go (``[network]``)."""

    netuid: int = Field(34, ge=0, le=65535, description="Subnet UID; 34 is GAS on finney.")
    vertical: Vertical = Field(
        "general", description="Competition vertical; `human` is not offered for audio."
    )
    chain_endpoint: str | None = Field(
        None, description="Subtensor endpoint; default finney for netuid 34, else test."
    )
    upload_url: str | None = Field(
        None, description="Upload API base URL (default https://upload.bitmind.ai/upload)."
    )


class BuildSection(_Section):
    """Build settings (``[build]``)."""

    out: str = Field("dist", description="Output directory for the zips, relative to gas.toml.")
    templates: str | None = Field(
        None,
        description="A directory of your own architecture templates, relative to gas.toml; "
        "they shadow built-ins of the same name.",
    )
    smoke_memory: int | None = Field(
        None,
        ge=256,
        description="The smoke test's address-space limit in MB (default: 8192 plus 4 MB per "
        "MB of the submission); --smoke-memory overrides it.",
    )
    smoke_timeout: float | None = Field(
        None,
        gt=0,
        description="Seconds the smoke test may run (default: 300 plus 120 per GiB of the "
        "submission); --smoke-timeout overrides it.",
    )


class CacheSection(_Section):
    """Where stage results are kept (``[cache]``)."""

    dir: str | None = Field(
        None, description="Local cache directory (default: $GASBUILD_CACHE_DIR or the user cache)."
    )
    remote: str | None = Field(
        None, description="Shared cache at any fsspec URL, e.g. s3://team-cache/gasbuild."
    )
    remote_write: bool = Field(True, description="Write back to the remote (false: read-only).")


class PublishSection(_Section):
    """What push does besides uploading (``[publish]``)."""

    mirror: str | None = Field(
        None, description="Also copy each pushed zip and its receipt to this fsspec URL."
    )


class EvalSection(_Section):
    """[eval]: labelled data for `gasbuild eval`, and the score a push must reach."""

    data: str | None = Field(
        None,
        description="Data directory (DIR/<modality>/<real|synthetic|semisynthetic>/...), "
        "relative to gas.toml, or an fsspec URL such as hf://datasets/org/name.",
    )
    min_score: float | None = Field(
        None,
        ge=0,
        le=1,
        description="`gasbuild push` refuses a model whose sn34 score on the data is lower.",
    )


class SourceSpec(_Section):
    """Where an input file comes from: a local path or any fsspec URL, with optional pins."""

    path: str | None = Field(None, description="Local path, relative to gas.toml.")
    url: str | None = Field(
        None,
        description="Any fsspec URL: file://, http(s)://, s3://, gs://, hf://org/repo/file@rev.",
    )
    sha256: Annotated[str, Field(pattern=SHA256_PATTERN)] | None = Field(
        None, description="Expected sha256 (64 lowercase hex); the build fails on a mismatch."
    )
    size: int | None = Field(None, ge=0, description="Expected size in bytes.")


WeightsDtype = DtypeName  # the loader's spellings; fp16 and float16 share a cache key


class WeightsSpec(SourceSpec):
    """The weights: a source, and how to convert it when it is not a ready safetensors file.

    ``.pt``/``.pth``/``.bin``/``.ckpt`` checkpoints (loaded with ``weights_only=True``) and
    sharded Hugging Face checkpoints (``*.index.json``) are converted to one safetensors file.
    """

    state_dict_key: str | None = Field(
        None,
        min_length=1,
        description='Where the state dict sits in the checkpoint, e.g. "state_dict" or '
        '"model"; dotted for nesting.',
    )
    strip_prefix: str | list[Annotated[str, Field(min_length=1)]] | None = Field(
        None, description='Prefix(es) removed from tensor names, e.g. "module.".'
    )
    rename: dict[str, str] = Field(
        default_factory=dict,
        description="Prefix rewrites applied after strip_prefix, "
        'e.g. { "encoder." = "backbone." }.',
    )
    dtype: WeightsDtype | None = Field(
        None, description="Store floating-point tensors in this dtype (float16 halves the zip)."
    )

    def conversion_options(self) -> dict[str, Any]:
        """The conversion settings that were given (empty: the file is used as it is)."""
        strip = self.strip_prefix
        out: dict[str, Any] = {
            "state_dict_key": self.state_dict_key,
            "strip_prefix": [strip] if isinstance(strip, str) else list(strip or []),
            "rename": dict(self.rename),
            "dtype": self.dtype,
        }
        return {k: v for k, v in out.items() if v}


class ArchitectureSpec(_Section):
    """Where model.py comes from: a local file, any fsspec URL, or a template."""

    file: str | None = Field(
        None, description="Path of a model.py defining load_model(), relative to gas.toml."
    )
    url: str | None = Field(None, description="Any fsspec URL of the model.py.")
    sha256: Annotated[str, Field(pattern=SHA256_PATTERN)] | None = Field(
        None, description="Expected sha256 of model.py."
    )
    template: str | None = Field(
        None,
        description="Render model.py from this template (`gasbuild templates` lists them).",
    )
    args: dict[str, Any] = Field(
        default_factory=dict, description="The template's arguments (see `gasbuild templates`)."
    )

    def as_source(self) -> SourceSpec:
        """The same input seen as a generic source (``file`` is its path)."""
        return SourceSpec(path=self.file, url=self.url, sha256=self.sha256, size=None)


class ExportSpec(_Section):
    """How ``format = "onnx"`` exports a declared architecture (``export = {...}``)."""

    opset: int = Field(17, ge=17, le=23, description="ONNX opset (torch.stft needs 17 or later).")
    rtol: float = Field(
        1e-3, ge=0, le=1, description="Relative tolerance of onnxruntime against torch."
    )
    atol: float = Field(
        1e-4, ge=0, le=1, description="Absolute tolerance of onnxruntime against torch."
    )


class NormalizeSpec(_Section):
    """Mean/std the model applies inside forward(); informational for the network."""

    mean: list[float] = Field(min_length=3, max_length=3)
    std: list[Annotated[float, Field(gt=0)]] = Field(min_length=3, max_length=3)


class PreprocessingSpec(_Section):
    """What the benchmark feeds the model; which keys apply depends on the modality."""

    resize: list[Annotated[int, Field(gt=0, le=8192)]] | None = Field(
        None, min_length=2, max_length=2, description="[H, W] for image/video (default 224x224)."
    )
    num_frames: int | None = Field(
        None, ge=1, le=MAX_NUM_FRAMES, description="Frames per clip, video only (default 16)."
    )
    frame_rate: float | None = Field(None, gt=0, description="Video only, optional.")
    normalize: NormalizeSpec | None = None
    sample_rate: int | None = Field(None, description="Audio only; must be 16000.")
    duration_seconds: float | None = Field(None, description="Audio only; must be 6.0.")


class ModelSpec(_Section):
    """One submission (``[models.image]``, ``[models.video]`` or ``[models.audio]``)."""

    format: Format = Field("safetensors", description="`safetensors` (current) or `onnx` (legacy).")
    name: Annotated[str, Field(pattern=NAME_PATTERN.pattern, max_length=128)] | None = Field(
        None, description="Model name: letters, digits, '-' and '_' (default <modality>-detector)."
    )
    version: str = Field("1.0.0", min_length=1, max_length=64)
    hotkey: str | None = Field(
        None, description="Hotkey that pushes this model (one counted submission per hotkey)."
    )
    architecture: ArchitectureSpec | None = Field(
        None, description="model.py source; required for safetensors."
    )
    weights: WeightsSpec
    weights_file: Annotated[str, Field(pattern=WEIGHTS_FILE_PATTERN)] = Field(
        DEFAULT_WEIGHTS_FILE, description="Name of the weights file inside the zip."
    )
    num_classes: int = Field(
        2, ge=1, le=3, description="1: P(AI) logit; 2: [real, synthetic]; 3: + semisynthetic."
    )
    dtype: DtypeName | None = Field(None, description="Cast of the weights (inputs never cast).")
    preprocessing: PreprocessingSpec = PreprocessingSpec()
    model: dict[str, Any] = Field(
        default_factory=dict, description="Extra keyword arguments passed to load_model()."
    )
    export: ExportSpec | None = Field(
        None,
        description="format = onnx with an architecture: the export's opset and the "
        "tolerances of its onnxruntime-against-torch check.",
    )
    allow_dynamic_hw: bool = Field(
        False,
        description="ONNX image/video only: accept a model whose input H and W are dynamic "
        "(the benchmark then feeds 224x224); otherwise that is an error.",
    )


class ModelsSection(_Section):
    """The submissions, one per modality."""

    image: ModelSpec | None = None
    video: ModelSpec | None = None
    audio: ModelSpec | None = None


class Manifest(_Section):
    """A whole gas.toml."""

    wallet: WalletSection = WalletSection()
    network: NetworkSection = NetworkSection()
    build: BuildSection = BuildSection()
    cache: CacheSection = CacheSection()
    publish: PublishSection = PublishSection()
    eval: EvalSection = EvalSection()
    models: ModelsSection

    def declared(self) -> Iterator[tuple[Modality, ModelSpec]]:
        """The declared models in the network's order: image, video, audio."""
        for modality in MODALITIES:
            spec = getattr(self.models, modality)
            if spec is not None:
                yield modality, spec


# --------------------------------------------------------------------------------------------
# Resolved view: defaults applied, paths absolute.


@dataclass(frozen=True)
class Preprocessing:
    """Preprocessing with the benchmark's defaults made explicit (what the zip will declare)."""

    resize: tuple[int, int] | None = None
    num_frames: int | None = None
    frame_rate: float | None = None
    normalize: tuple[tuple[float, ...], tuple[float, ...]] | None = None
    sample_rate: int | None = None
    duration_seconds: float | None = None


@dataclass(frozen=True)
class ModelTarget:
    """One model to build, resolved against the manifest's directory."""

    modality: Modality
    spec: ModelSpec
    name: str
    preprocessing: Preprocessing
    key: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "key", f"models.{self.modality}")


@dataclass
class Project:
    """A loaded gas.toml: the validated manifest plus what error messages need."""

    manifest: Manifest
    path: Path
    text: str
    _positions: dict[_tomlpos.KeyPath, _tomlpos.Position] | None = None
    _registry: Registry | None = None

    @property
    def root(self) -> Path:
        return self.path.parent

    @property
    def out_dir(self) -> Path:
        return self.root / self.manifest.build.out

    def locate(self, key: str | _tomlpos.KeyPath) -> Location:
        """``file:line:col`` of a dotted key (or its nearest written ancestor)."""
        if self._positions is None:
            self._positions = _tomlpos.key_positions(self.text)
        path = tuple(key.split(".")) if isinstance(key, str) else key
        found = _tomlpos.locate(self._positions, path)
        file = display_path(self.path)
        return Location(file) if found is None else Location(file, *found)

    def error(self, key: str, message: str, hint: str | None = None) -> ManifestError:
        return ManifestError(f"{key} {message}", key=key, hint=hint, location=self.locate(key))

    def template_registry(self) -> Registry:
        """Built-in templates plus the project's own ``[build] templates`` directory."""
        if self._registry is None:
            from gasbuild.templates import registry

            extra = self.manifest.build.templates
            self._registry = registry(self.resolve(extra) if extra else None)
        return self._registry

    def resolve(self, relative: str) -> Path:
        return (self.root / expand_user(relative)).resolve()

    def targets(self, only: frozenset[Modality] | None = None) -> list[ModelTarget]:
        """The models to build, in network order, restricted to ``only`` when given."""
        targets = []
        for modality, spec in self.manifest.declared():
            if only is not None and modality not in only:
                continue
            targets.append(
                ModelTarget(
                    modality=modality,
                    spec=spec,
                    name=spec.name or f"{modality}-detector",
                    preprocessing=resolve_preprocessing(
                        modality, spec.preprocessing, templated=_templated(spec)
                    ),
                )
            )
        return targets


def _templated(spec: ModelSpec) -> bool:
    return spec.architecture is not None and spec.architecture.template is not None


def resolve_preprocessing(
    modality: Modality, pre: PreprocessingSpec, *, templated: bool = False
) -> Preprocessing:
    """Apply the benchmark's defaults so the emitted config says exactly what will happen.

    A template normalises inside forward(); without a declared ``normalize`` it uses ImageNet's
    mean and std, and the emitted config says so.
    """
    normalize = None
    if pre.normalize is not None:
        normalize = (tuple(pre.normalize.mean), tuple(pre.normalize.std))
    elif templated and modality != "audio":
        normalize = IMAGENET_NORMALIZE
    if modality == "audio":
        return Preprocessing(
            normalize=normalize,
            sample_rate=AUDIO_SAMPLE_RATE,
            duration_seconds=AUDIO_DURATION_SECONDS,
        )
    resize = (pre.resize[0], pre.resize[1]) if pre.resize else DEFAULT_RESIZE
    if modality == "image":
        return Preprocessing(resize=resize, normalize=normalize)
    return Preprocessing(
        resize=resize,
        num_frames=pre.num_frames or DEFAULT_NUM_FRAMES,
        frame_rate=pre.frame_rate,
        normalize=normalize,
    )


# --------------------------------------------------------------------------------------------
# Loading.


def find_manifest(directory: Path | None = None, file: Path | None = None) -> Path:
    """The gas.toml to use: ``file`` (relative to ``directory``) or ``directory/gas.toml``."""
    base = directory or Path.cwd()
    path = base / file if file is not None else base / MANIFEST_NAME
    if not path.is_file():
        where = display_path(path)
        hint = "run `gasbuild init` to write one, or pass -C DIR / -f FILE"
        raise SourceError(f"{where}: no manifest found", hint=hint)
    return path


def load(path: Path) -> Project:
    """Read, parse and validate a gas.toml. Raises ManifestError (exit 2) with file:line:col."""
    raw = _read_manifest(path)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        location = Location(display_path(path), line)
        raise ManifestError(
            "is not valid UTF-8", location=location, hint="save it as UTF-8"
        ) from None
    text = text.removeprefix("\ufeff")  # a byte-order mark some Windows editors write
    data = _parse_toml(text, path)
    unvalidated = Project(Manifest.model_construct(models=ModelsSection()), path, text)
    problems = list(_value_errors(unvalidated, data, ()))
    if problems:
        raise _first_error(problems)
    try:
        manifest = Manifest.model_validate(data)
    except ValidationError as exc:
        raise _first_error([_convert(unvalidated, err) for err in exc.errors()]) from None
    project = Project(manifest, path, text)
    problems = list(_semantic_errors(project))
    if problems:
        raise _first_error(problems)
    return project


MAX_MANIFEST_BYTES = 1 << 20  # a gas.toml is a few KiB; more is a mistake or an attack
MAX_TEXT_NESTING = 64  # brackets and braces open at once, counted before the TOML parser runs
MAX_NESTING = 32  # tables and arrays within tables, counted in the parsed document


def _read_manifest(path: Path) -> bytes:
    """The manifest's bytes: a regular file of at most ``MAX_MANIFEST_BYTES``.

    A FIFO would block the read forever and /dev/zero never end, so the file is opened
    without blocking and judged by what was opened before a byte is read.
    """
    import os
    import stat

    where = display_path(path)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except (OSError, ValueError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise SourceError(f"{where}: cannot read ({why})") from None
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise SourceError(f"{where}: not a regular file", hint="give the path of a gas.toml")
        if st.st_size > MAX_MANIFEST_BYTES:
            raise ManifestError(
                f"is {st.st_size} bytes, over the {MAX_MANIFEST_BYTES}-byte limit of a manifest",
                location=Location(where),
                hint="a gas.toml declares sources by path or URL; it never holds data",
            )
        os.set_blocking(f.fileno(), True)
        try:
            return f.read(MAX_MANIFEST_BYTES + 1)
        except OSError as exc:
            raise SourceError(f"{where}: cannot read ({exc.strerror})") from None


def _nesting_error(text: str, path: Path) -> ManifestError | None:
    """Arrays and inline tables nested past ``MAX_TEXT_NESTING``, found without recursion.

    tomllib parses nesting by recursion: 2000 levels raise RecursionError from inside it.
    This pass skips strings and comments and counts what is open; it runs on any text, so an
    unterminated string merely ends the count (tomllib then reports the string).
    """
    depth, i, n = 0, 0, len(text)
    while i < n:
        char = text[i]
        if char in "[{":
            depth += 1
            if depth > MAX_TEXT_NESTING:
                line = text.count("\n", 0, i) + 1
                col = i - (text.rfind("\n", 0, i) + 1) + 1
                return ManifestError(
                    f"arrays or tables nested more than {MAX_TEXT_NESTING} deep",
                    location=Location(display_path(path), line, col),
                    hint="a gas.toml needs a few levels; flatten the value",
                )
        elif char in "]}":
            depth = max(depth - 1, 0)
        elif char == "#":
            end = text.find("\n", i)
            i = n if end < 0 else end
            continue
        elif char in "\"'":
            i = _string_end(text, i)
            continue
        i += 1
    return None


def _string_end(text: str, i: int) -> int:
    """The index just past the TOML string starting at ``i`` (or the end of the text)."""
    quote = text[i]
    if text.startswith(quote * 3, i):
        end = text.find(quote * 3, i + 3)
        while quote == '"' and end > 0 and _backslashed(text, end):
            end = text.find(quote * 3, end + 1)
        if end < 0:
            return len(text)
        end += 3
        while end < len(text) and text[end] == quote:  # up to two quotes belong inside
            end += 1
        return end
    j = i + 1
    while j < len(text) and text[j] != quote and text[j] != "\n":
        j += 2 if quote == '"' and text[j] == "\\" else 1
    return j + 1


def _backslashed(text: str, index: int) -> bool:
    count = 0
    while index - count - 1 >= 0 and text[index - count - 1] == "\\":
        count += 1
    return count % 2 == 1


def _parse_toml(text: str, path: Path) -> dict[str, Any]:
    nested = _nesting_error(text, path)
    if nested is not None:
        raise nested
    try:
        return tomllib.loads(text)
    except RecursionError:  # pragma: no cover - the nesting pass above comes first
        raise ManifestError(
            "is nested too deeply to parse", location=Location(display_path(path))
        ) from None
    except tomllib.TOMLDecodeError as exc:
        message, line, col = _split_toml_error(str(exc))
        location = Location(display_path(path), line, col)
        hint = "TOML syntax: https://toml.io; the keys: `gasbuild schema`"
        raise ManifestError(f"invalid TOML: {message}", location=location, hint=hint) from None


def _value_errors(
    project: Project, value: Any, path: tuple[str | int, ...]
) -> Iterator[ManifestError]:
    """Before pydantic: no NUL in a key or a setting (paths cannot hold one; every OS call
    fails on it), and no table or array nested past ``MAX_NESTING`` (a load_model keyword 300 levels
    deep is no model setting)."""
    if len(path) > MAX_NESTING:
        yield _raw_error(project, path, f"is nested more than {MAX_NESTING} levels deep")
        return
    if isinstance(value, str) and "\x00" in value and not _is_data(path):
        yield _raw_error(project, path, "holds a NUL character", "remove the \\u0000")
    elif isinstance(value, dict):
        for key, item in value.items():
            if "\x00" in key:
                yield _raw_error(project, path, "has a key holding a NUL character")
                continue
            yield from _value_errors(project, item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _value_errors(project, item, (*path, index))


def _is_data(path: tuple[str | int, ...]) -> bool:
    """Values handed to model code as data (template arguments, load_model keywords): any
    string is fine there, it is rendered as a literal; a path among them is checked when it
    is fetched."""
    return path[:1] == ("models",) and (
        path[2:4] == ("architecture", "args") or path[2:3] == ("model",)
    )


def _raw_error(
    project: Project, path: tuple[str | int, ...], message: str, hint: str | None = None
) -> ManifestError:
    key = _dotted(path) or "the manifest"
    location = project.locate(path)
    escaped = _NUL_ESCAPE.search(project.text) if "NUL" in message else None
    if escaped is not None and (location.line is None or not path):
        # a quoted key is recorded as written, not as parsed: point at the escape itself
        line = project.text.count("\n", 0, escaped.start()) + 1
        col = escaped.start() - (project.text.rfind("\n", 0, escaped.start()) + 1) + 1
        location = Location(location.file, line, col)
    return ManifestError(f"{key} {message}", key=key, hint=hint, location=location)


_NUL_ESCAPE = re.compile(r"\\(u0000|U00000000)")


def _split_toml_error(text: str) -> tuple[str, int | None, int | None]:
    """tomllib says ``Invalid value (at line 3, column 9)``; take the place out of the text."""
    marker = " (at line "
    if marker in text and text.endswith(")"):
        message, _, rest = text.rpartition(marker)
        line_text, _, col_text = rest[:-1].partition(", column ")
        if line_text.isdigit() and col_text.isdigit():
            return message, int(line_text), int(col_text)
    if text.endswith("(at end of document)"):
        return text.removesuffix(" (at end of document)"), None, None
    return text, None, None


def _first_error(errors: list[ManifestError]) -> ManifestError:
    """Raise the first problem; the CLI prints the others after it, one line each."""
    first = errors[0]
    first.more = list(errors[1:])
    return first


# --------------------------------------------------------------------------------------------
# Pydantic errors -> ManifestError.

_PYDANTIC_PHRASES = (
    ("Input should be ", "must be "),
    ("String should match pattern ", "must match "),
    ("String should have ", "must have "),
    ("List should have ", "must have "),
    ("Value should have ", "must have "),
)


def _convert(project: Project, err: Any) -> ManifestError:
    path: tuple[str | int, ...] = tuple(err["loc"])
    key = _dotted(path)
    kind = err["type"]
    hint: str | None = None
    if kind == "extra_forbidden":
        allowed = _allowed_keys(path[:-1])
        message = "is not a known key"
        hint = _did_you_mean(str(path[-1]), allowed)
    elif kind == "missing":
        message = "is required"
        hint = _missing_hint(path)
    elif kind == "value_error":
        message = str(err["ctx"]["error"])
    elif kind == "string_pattern_mismatch":
        message, hint = _pattern_message(path, err)
    else:
        message = _rephrase(err["msg"])
        if "input" in err and not isinstance(err["input"], dict | list):
            message += f" (got {err['input']!r})"
    return ManifestError(f"{key} {message}", key=key, hint=hint, location=project.locate(path))


def _dotted(path: tuple[str | int, ...]) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


def _rephrase(msg: str) -> str:
    """Pydantic's "Input should be a valid integer" as "must be an integer"."""
    msg = msg.replace(" after validation", "")
    msg = re.sub(r"\ba valid ([aeiou])", r"an \1", msg)
    msg = msg.replace("a valid ", "a ")
    for before, after in _PYDANTIC_PHRASES:
        if msg.startswith(before):
            return after + msg[len(before) :]
    return msg[:1].lower() + msg[1:]


def _pattern_message(path: tuple[str | int, ...], err: Any) -> tuple[str, str | None]:
    leaf = path[-1]
    got = f" (got {err['input']!r})"
    if leaf == "sha256":
        return "must be 64 lowercase hex characters" + got, "compute it with `sha256sum FILE`"
    if leaf == "name":
        return "may hold only letters, digits, '-' and '_'" + got, 'e.g. name = "my-detector-v1"'
    if leaf == "weights_file":
        return "must be a plain file name ending in .safetensors" + got, None
    return f"must match {err['ctx']['pattern']}" + got, None


def _missing_hint(path: tuple[str | int, ...]) -> str | None:
    leaf = path[-1]
    if leaf == "models":
        return 'declare at least one model, e.g. [models.image] with weights = { path = "..." }'
    if leaf == "weights":
        return 'e.g. weights = { path = "weights/model.safetensors" }'
    if leaf == "path":
        return "give the file's path relative to gas.toml"
    return None


def _allowed_keys(path: tuple[str | int, ...]) -> list[str]:
    """The field names of the model that sits at ``path`` in the manifest."""
    model: Any = Manifest
    for part in path:
        fields = getattr(model, "model_fields", None)
        if fields is None or part not in fields:
            return []
        model = _unwrap(fields[part].annotation)
    fields = getattr(model, "model_fields", None)
    return sorted(fields) if fields else []


def _unwrap(annotation: Any) -> Any:
    """``X | None`` and ``Annotated[X, ...]`` down to ``X``."""
    while get_origin(annotation) is not None:
        args = [a for a in get_args(annotation) if a is not type(None)]
        if not args or isinstance(args[0], str):
            return annotation
        annotation = args[0]
    return annotation


def _did_you_mean(key: str, allowed: list[str]) -> str | None:
    match = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
    if match:
        return f'did you mean "{match[0]}"?'
    if allowed:
        return "allowed keys: " + ", ".join(allowed)
    return None


# --------------------------------------------------------------------------------------------
# Rules that depend on the modality and on relations between keys.

_ONLY_FOR: dict[str, tuple[Modality, ...]] = {
    "resize": ("image", "video"),
    "num_frames": ("video",),
    "frame_rate": ("video",),
    "sample_rate": ("audio",),
    "duration_seconds": ("audio",),
}


def _semantic_errors(project: Project) -> Iterator[ManifestError]:
    manifest = project.manifest
    if not any(True for _ in manifest.declared()):
        yield project.error(
            "models", "declares no model", "add a table such as [models.image] with weights = {...}"
        )
    yield from _settings_errors(project)
    for modality, spec in manifest.declared():
        yield from _model_errors(project, modality, spec)


_CREDENTIALS_HINT = (
    "credentials come from the environment (AWS_*, HF_TOKEN, ...) or ~/.aws, never gas.toml"
)


def _settings_errors(project: Project) -> Iterator[ManifestError]:
    """The tables besides the models: URLs without credentials, local paths that are paths."""
    manifest = project.manifest
    urls = {
        "cache.remote": manifest.cache.remote,
        "publish.mirror": manifest.publish.mirror,
        "network.upload_url": manifest.network.upload_url,
        "network.chain_endpoint": manifest.network.chain_endpoint,
        # a local folder or a URL; as a URL it is echoed in messages and committed with gas.toml
        "eval.data": manifest.eval.data if is_url(manifest.eval.data or "") else None,
    }
    for key, url in urls.items():
        problem = None if url is None else url_secret_problem(url)
        if problem is not None:
            yield project.error(key, problem, _CREDENTIALS_HINT)
    paths = {
        "build.out": manifest.build.out,
        "build.templates": manifest.build.templates,
        "cache.dir": manifest.cache.dir,
        "wallet.path": manifest.wallet.path,
    }
    for key, value in paths.items():
        if value is not None:
            yield from _path_errors(project, key, value)
    out = manifest.build.out
    if not _CONTROL.search(out) and _exists_not_dir(project.root / expand_user(out)):
        yield project.error(
            "build.out",
            f"names an existing file, not a directory ({out!r})",
            "the zips are written into this directory; choose another name",
        )


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _path_errors(project: Project, key: str, value: str) -> Iterator[ManifestError]:
    if _CONTROL.search(value):
        yield project.error(key, "holds control characters", "a path is printable text")
    elif is_url(value):
        hints = {"cache.dir": "a shared cache goes in [cache] remote"}
        hint = hints.get(key, 'a source at a URL is given as url = "..."')
        yield project.error(key, "is a URL, not a local path", hint)
    elif not value.strip():
        yield project.error(key, "is empty", "give a path relative to gas.toml")
    elif (part := long_component(value)) is not None:
        yield project.error(
            key,
            f"has a name longer than {NAME_MAX} bytes ({part[:20]}...)",
            "no filesystem takes it; choose a shorter name",
        )


def _exists_not_dir(path: Path) -> bool:
    try:
        return path.exists() and not path.is_dir()
    except (OSError, ValueError):
        return False


def _model_errors(project: Project, modality: Modality, spec: ModelSpec) -> Iterator[ManifestError]:
    base = f"models.{modality}"
    yield from _source_errors(project, f"{base}.weights", spec.weights, ("path", "url"))
    if spec.architecture is not None:
        yield from _architecture_errors(project, base, modality, spec)
    yield from _preprocessing_errors(project, base, modality, spec.preprocessing)
    if spec.allow_dynamic_hw and (spec.format != "onnx" or modality == "audio"):
        yield project.error(
            f"{base}.allow_dynamic_hw",
            "applies only to ONNX image and video models",
            "remove it: safetensors models and audio inputs have no dynamic H/W to allow",
        )
    if spec.export is not None and (spec.format != "onnx" or spec.architecture is None):
        yield project.error(
            f"{base}.export",
            'applies only to format = "onnx" with an architecture (an exported model)',
            "remove it: there is nothing to export",
        )
    if spec.format == "safetensors":
        if spec.architecture is None:
            yield project.error(
                f"{base}.architecture",
                "is required for the safetensors format",
                'e.g. architecture = { file = "model.py" } or { template = "timm-image", ... }',
            )
        yield from _kwargs_errors(project, f"{base}.model", spec.model)
        return
    exported = spec.architecture is not None
    for key in ("dtype", "weights_file", *(() if exported else ("model",))):
        if key in spec.model_fields_set:
            yield project.error(
                f"{base}.{key}",
                'applies only to format = "safetensors"',
                "an ONNX submission is the .onnx file alone; remove this key",
            )
    if exported:
        yield from _kwargs_errors(project, f"{base}.model", spec.model)
    else:
        for key in spec.weights.conversion_options():
            yield project.error(
                f"{base}.weights.{key}",
                "converts a checkpoint to safetensors, which an ONNX file is not",
                "to export ONNX from a checkpoint, also give architecture = {...}",
            )


def _architecture_errors(
    project: Project, base: str, modality: Modality, spec: ModelSpec
) -> Iterator[ManifestError]:
    """Exactly one of file, url or template; a template's arguments fit its declaration."""
    arch = spec.architecture
    assert arch is not None
    key = f"{base}.architecture"
    given = [k for k in ("file", "url", "template") if getattr(arch, k) is not None]
    if len(given) != 1:
        how = " and ".join(given) if given else "none"
        yield project.error(
            key,
            f"must give exactly one of file, url or template (got {how})",
            'e.g. { file = "model.py" } or { template = "timm-image", args = {...} }',
        )
        return
    if arch.template is None:
        yield from _source_errors(project, key, arch, ("file", "url"))
        if arch.args:
            yield project.error(
                f"{key}.args", "applies only to a template", "remove it, or use template = NAME"
            )
        return
    if arch.sha256 is not None:
        yield project.error(
            f"{key}.sha256",
            "pins a file or url, not a template",
            "gas.lock records the rendered model.py's digest; remove sha256",
        )
    yield from _template_errors(project, key, modality, arch)
    if spec.model:
        yield project.error(
            f"{base}.model",
            "is not used with a template: its load_model takes num_classes only",
            "pass settings to the template with architecture.args",
        )


def _template_errors(
    project: Project, key: str, modality: Modality, arch: ArchitectureSpec
) -> Iterator[ManifestError]:
    from gasbuild.templates import TemplateError

    try:
        registry = project.template_registry()
    except TemplateError as exc:
        yield project.error("build.templates", exc.message, exc.hint)
        return
    assert arch.template is not None
    template = registry.get(arch.template)
    if template is None:
        yield project.error(
            f"{key}.template",
            f"names no known template ({arch.template!r})",
            registry.suggest(arch.template),
        )
        return
    if modality not in template.modalities:
        yield project.error(
            f"{key}.template",
            f"{template.name} is for {' and '.join(template.modalities)} models, not {modality}",
            "pick another template: `gasbuild templates` lists them",
        )
    for name, message, hint in template.resolve_args(arch.args):
        yield project.error(f"{key}.args.{name}" if name else f"{key}.args", message, hint)


def _preprocessing_errors(
    project: Project, base: str, modality: Modality, pre: PreprocessingSpec
) -> Iterator[ManifestError]:
    for key, modalities in _ONLY_FOR.items():
        if key in pre.model_fields_set and modality not in modalities:
            yield project.error(
                f"{base}.preprocessing.{key}",
                f"does not apply to {modality} models",
                f"it is read only for {' and '.join(modalities)}; remove it",
            )
    if modality != "audio":
        return
    if pre.sample_rate is not None and pre.sample_rate != AUDIO_SAMPLE_RATE:
        yield project.error(
            f"{base}.preprocessing.sample_rate",
            f"must be {AUDIO_SAMPLE_RATE} (got {pre.sample_rate})",
            "the benchmark always feeds 16 kHz mono, 96000 samples",
        )
    if pre.duration_seconds is not None and pre.duration_seconds != AUDIO_DURATION_SECONDS:
        yield project.error(
            f"{base}.preprocessing.duration_seconds",
            f"must be {AUDIO_DURATION_SECONDS} (got {pre.duration_seconds})",
            "the benchmark always feeds 6.0 s clips, 96000 samples",
        )


def _source_errors(
    project: Project, key: str, source: BaseModel, kinds: tuple[str, str]
) -> Iterator[ManifestError]:
    """Exactly one of path/url; a URL must not carry credentials (they belong in the env)."""
    given = [k for k in kinds if getattr(source, k) is not None]
    if len(given) != 1:
        how = "both" if given else "neither"
        yield project.error(
            key,
            f"must give exactly one of {kinds[0]} or {kinds[1]} (got {how})",
            f'e.g. {{ {kinds[0]} = "..." }} for a local file or {{ url = "s3://..." }}',
        )
        return
    url = getattr(source, "url", None)
    if url is not None:
        problem = url_secret_problem(url)
        if problem is not None:
            yield project.error(f"{key}.url", problem, _CREDENTIALS_HINT)
    path = getattr(source, kinds[0], None)
    if isinstance(path, str):
        yield from _path_errors(project, f"{key}.{kinds[0]}", path)


_RESERVED_KWARGS = {
    "num_classes": "set num_classes on the model table instead",
    "weights_file": "set weights_file on the model table instead",
}


def _kwargs_errors(project: Project, base: str, kwargs: dict[str, Any]) -> Iterator[ManifestError]:
    for name, value in kwargs.items():
        key = f"{base}.{name}"
        if name in _RESERVED_KWARGS:
            yield project.error(key, "is set by gasbuild", _RESERVED_KWARGS[name])
        elif not name.isidentifier():
            yield project.error(
                key, "is not a valid Python keyword argument name", "use letters, digits and _"
            )
        elif _has_datetime(value):
            yield project.error(
                key, "holds a TOML date/time", "load_model() kwargs must be YAML-safe values"
            )


def _has_datetime(value: Any) -> bool:
    if isinstance(value, _dt.date | _dt.time):
        return True
    if isinstance(value, dict):
        return any(_has_datetime(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_datetime(v) for v in value)
    return False


def json_schema() -> dict[str, Any]:
    """The JSON Schema of gas.toml (what ``gasbuild schema`` prints and schemas/ holds)."""
    schema = Manifest.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://gasbuild.dev/schemas/gas.schema.json"
    schema["title"] = "gasbuild manifest (gas.toml)"
    return schema
