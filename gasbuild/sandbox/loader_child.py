"""The steps every sandboxed loader child shares (smoke test, ONNX export, eval).

Run only inside a child started by ``runner.run_child`` (``launch.py`` contains it first), and
imported by its siblings as ``loader_child``: it imports nothing from gasbuild, since the
package may not be importable under ``-I`` and untrusted code must not have it at hand. The
contract tables of ``gasbuild.submission`` arrive in the job. The steps follow the public loader
(SPEC.md §1-§2): ``yaml.safe_load`` the config; import ``model.py`` as a lone module;
``load_model(path, **model_kwargs)``, or ``num_classes`` only when the signature cannot take the
keywords (the loader binds the signature first, and a TypeError raised inside ``load_model`` is a
failure, not a reason to retry); ``.to("cpu", dtype).eval()``; unwrap the output as the loader
does. Each child adds what it does with the loaded model (``smoke_child``: forward and judge
nothing, ``export_child``: export, ``eval_child``: logits of the parent's batches).
"""

from __future__ import annotations

import contextlib
import importlib.util
import inspect
import json
import os
import re
import resource
import sys
import traceback
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, TypeGuard

_MAX_TEXT = 500  # characters of an exception message kept in a finding
_MAX_LISTED = 5  # names listed in a finding before "and N more"
_SEED = 0
_PIXEL_LEVELS = 256
# Tolerances deciding whether a loaded tensor "is" the file's: generous, because a weight cast to
# fp16 and back is still loaded, while a tensor left at its random initial value is far off.
_RTOL = 1e-2
_ATOL = 1e-3
# Allocation failures under RLIMIT_AS surface as MemoryError or as these RuntimeError texts.
# Exceptions of a download attempt: urllib, sockets, huggingface_hub in offline mode.
_NETWORK_ERRORS = frozenset(
    {"URLError", "ConnectionError", "OfflineModeIsEnabled", "LocalEntryNotFoundError"}
)
_OFFLINE_HINT = (
    "the smoke test runs offline: ship every weight in the zip instead of downloading it"
    " (pretrained=False)"
)
_OOM_TEXTS = (
    "can't allocate memory",
    "cannot allocate memory",
    "not enough memory",
    "out of memory",
    "bad_alloc",
)


class Stop(Exception):
    """Ends the run early; the findings gathered so far are the result."""


@dataclass
class Report:
    """Findings as plain dicts (the parent turns them into ``Finding``)."""

    findings: list[dict[str, Any]] = field(default_factory=list)

    def add(
        self,
        code: str,
        severity: str,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        hint: str | None = None,
    ) -> None:
        self.findings.append(
            {
                "code": code,
                "severity": severity,
                "message": message,
                "file": file,
                "line": line,
                "hint": hint,
            }
        )


class Channel:
    """The protocol's private copy of stdout; fd 1 and ``sys.stdout`` then go to stderr."""

    def __init__(self) -> None:
        sys.stdout.flush()
        self.fd = os.dup(1)
        os.dup2(2, 1)
        sys.stdout = sys.stderr

    def send(self, message: dict[str, Any]) -> None:
        data = (json.dumps(message, default=str) + "\n").encode()
        while data:
            data = data[os.write(self.fd, data) :]


@dataclass
class Plan:
    """What the config and the job say: where things are, what to call, what to feed."""

    model_path: Path
    weights_path: Path
    weights_name: str
    kwargs: dict[str, Any]
    dtype: str
    modality: str
    sample_shape: tuple[int, ...]
    num_classes: object

    @property
    def loader_num_classes(self) -> object:
        """``num_classes`` as the loader and the benchmark read it: 2 when the config is silent."""
        return self.kwargs.get("num_classes", 2)


def limit_resources(memory_mb: int) -> None:
    """Cap the address space (the memory limit) and forbid core dumps of a crashing model."""
    limit = memory_mb << 20
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)  # an unprivileged process cannot raise its hard limit
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def def_line(function: Any) -> int | None:
    """The line of model.py where ``function`` is defined, if it is a Python function."""
    code = getattr(function, "__code__", None)
    line = getattr(code, "co_firstlineno", None)
    return line if isinstance(line, int) else None


def one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}"[:_MAX_TEXT] if text else type(exc).__name__


def listed(names: list[str]) -> str:
    shown = ", ".join(repr(n) for n in names[:_MAX_LISTED])
    more = len(names) - _MAX_LISTED
    return shown + (f" and {more} more" if more > 0 else "")


def is_out_of_memory(exc: BaseException) -> bool:
    if isinstance(exc, MemoryError):
        return True
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and any(t in text for t in _OOM_TEXTS)


_KEY_LIST = re.compile(r'(Missing|Unexpected) key\(s\) in state_dict: ((?:"[^"]*"(?:, )?)+)')


def state_dict_keys(exc: BaseException) -> tuple[list[str], list[str]] | None:
    """(missing, unexpected) from torch's strict ``load_state_dict`` error, else None."""
    text = str(exc)
    if not isinstance(exc, RuntimeError) or "Error(s) in loading state_dict" not in text:
        return None
    found: dict[str, list[str]] = {"Missing": [], "Unexpected": []}
    for kind, names in _KEY_LIST.findall(text):
        found[kind] = re.findall(r'"([^"]*)"', names)
    if not found["Missing"] and not found["Unexpected"]:
        return None  # only size mismatches: the plain message says which
    return found["Missing"], found["Unexpected"]


_SIZE_MISMATCH = re.compile(
    r"size mismatch for (\S+): copying a param with shape torch\.Size\(\[([\d, ]*)\]\) "
    r"from checkpoint, the shape in current model is torch\.Size\(\[([\d, ]*)\]\)"
)
_POSITION_NAMES = ("pos_embed", "position_embedding", "relative_position")
_FIXED_SIZE = re.compile(r"Input (?:height|width|image size) \(?\d+.*doesn't match model")
_PASS_SIZE = "set architecture.args.pass_input_size = true (timm templates)"


def known_fix(exc: BaseException, plan: Plan | None) -> str | None:
    """A hint for failures with a well-known cause: a checkpoint trained with another head or
    input size, a backbone that takes no img_size, a timm model name that does not exist."""
    text = str(exc)
    mismatch = _SIZE_MISMATCH.search(text)
    if mismatch is not None:
        name, saved, built = mismatch.group(1, 2, 3)
        return _size_mismatch_fix(name, saved, built, plan)
    if _FIXED_SIZE.search(text):
        return (
            "the backbone is built for another input size than preprocessing.resize: "
            + _PASS_SIZE
            + ", or build it at that size"
        )
    if "ignore_mismatched_sizes" in text:  # transformers' from_pretrained, shapes differ
        return (
            "a tensor of the checkpoint has another shape than the model built from config.json: "
            "num_classes must match its num_labels (id2label), and preprocessing.resize its "
            "image_size"
        )
    if isinstance(exc, TypeError) and "unexpected keyword argument 'img_size'" in text:
        return "this backbone takes no img_size: set architecture.args.pass_input_size = false"
    unknown = re.search(r"Unknown model \(([^)]*)\)", text)
    if unknown is not None and "timm" in sys.modules:
        import difflib

        names = sys.modules["timm"].list_models()
        close = difflib.get_close_matches(unknown.group(1), names, n=3, cutoff=0.6)
        found = f"did you mean {', '.join(close)}? " if close else ""
        return f"{found}timm.list_models() lists the names this timm knows"
    return None


def _size_mismatch_fix(name: str, saved: str, built: str, plan: Plan | None) -> str:
    """Why a tensor of the checkpoint has another shape than the model's, when it is clear."""
    saved_dims = [int(d) for d in saved.split(",") if d.strip()]
    built_dims = [int(d) for d in built.split(",") if d.strip()]
    classes = plan.loader_num_classes if plan is not None else None
    if (
        saved_dims
        and built_dims
        and built_dims[0] == classes
        and saved_dims[0] != classes
        and saved_dims[1:] == built_dims[1:]
    ):
        return (
            f"the checkpoint's {name} has {saved_dims[0]} outputs, and num_classes is {classes}: "
            f"set num_classes = {saved_dims[0]}, or retrain the head"
        )
    if any(part in name for part in _POSITION_NAMES):
        return (
            f"the checkpoint's {name} was made for another input size: {_PASS_SIZE} and set "
            "preprocessing.resize to the size it was trained at"
        )
    return (
        f"the checkpoint's {name} has shape [{saved}], the model's [{built}]: the checkpoint "
        "comes from another architecture or configuration (check the model name and arguments)"
    )


def missing_allowed_module(exc: BaseException, allowed: list[str]) -> str | None:
    """The allowed module (timm, transformers ...) whose absence here made the import fail."""
    for err in (exc, exc.__cause__, exc.__context__):
        if isinstance(err, ModuleNotFoundError) and err.name:
            root = err.name.split(".")[0]
            if root in allowed:
                return root
    return None


def is_network_error(exc: BaseException) -> bool:
    """Whether the model tried to download something (the sandbox has no network)."""
    names = {cls.__name__ for cls in type(exc).__mro__}
    return bool(names & _NETWORK_ERRORS)


def model_line(exc: BaseException, model_path: Path) -> int | None:
    """The line of model.py an exception came from: its innermost model.py frame."""
    target = str(model_path)
    if isinstance(exc, SyntaxError) and exc.filename == target:
        return exc.lineno
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        if frame.filename == target:
            return frame.lineno
    return None


# ---------------------------------------------------------------------------------------------
# The config, read as the loader reads it.


def read_plan(job: dict[str, Any], report: Report) -> Plan:
    """Everything the loader takes from model_config.yaml; Stop when it cannot proceed."""
    import yaml

    contract = job["contract"]
    root = Path(job["model_dir"])
    config_name = contract["config_file"]
    try:
        config = yaml.safe_load((root / config_name).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        report.add("GAS600", "error", f"cannot read the config: {one_line(exc)}", file=config_name)
        raise Stop from exc
    if not isinstance(config, dict):
        report.add("GAS600", "error", "the config is not a mapping", file=config_name)
        raise Stop
    section = config.get("model")
    kwargs = dict(section) if isinstance(section, dict) else {}
    weights_name = kwargs.pop("weights_file", contract["default_weights_file"])
    try:
        modality, dtype = _modality_dtype(job, config)
        if not isinstance(weights_name, str):
            raise ValueError(f"model.weights_file is {weights_name!r}, not a file name")
        shape = sample_shape(config, modality, contract)
    except ValueError as exc:
        report.add("GAS600", "error", f"cannot run the model: {exc}", file=config_name)
        raise Stop from exc
    return Plan(
        model_path=root / contract["model_file"],
        weights_path=root / weights_name,
        weights_name=weights_name,
        kwargs=kwargs,
        dtype=dtype,
        modality=modality,
        sample_shape=shape,
        num_classes=kwargs.get("num_classes"),
    )


def _modality_dtype(job: dict[str, Any], config: dict[Any, Any]) -> tuple[str, str]:
    """The modality (the job's, i.e. the slot's, before the config's) and the torch dtype."""
    contract = job["contract"]
    modality = job["modality"] or config.get("modality")
    if not isinstance(modality, str) or modality not in contract["modalities"]:
        raise ValueError(f"unknown modality {modality!r}")
    spelling = config.get("dtype", contract["default_dtype"])
    dtype = contract["dtypes"].get(spelling) if isinstance(spelling, str) else None
    if not isinstance(dtype, str):
        raise ValueError(f"dtype {spelling!r} is not a spelling the loader accepts")
    return modality, dtype


def sample_shape(config: dict[Any, Any], modality: str, contract: Any) -> tuple[int, ...]:
    """One sample of the benchmark's input (SPEC.md §1): num_frames counts only with resize."""
    if modality == "audio":
        return (contract["audio_samples"],)
    pre = config.get("preprocessing")
    pre = pre if isinstance(pre, dict) else {}
    resize = pre.get("resize")
    if _is_size(resize):
        height, width = int(resize[0]), int(resize[1])
        frames = pre.get("num_frames", contract["default_num_frames"])
    else:
        height, width = contract["default_resize"]
        frames = contract["default_num_frames"]
    pixels = (contract["channels"], height, width)
    if modality == "image":
        return pixels
    if not (isinstance(frames, int) and not isinstance(frames, bool) and frames > 0):
        raise ValueError(f"preprocessing.num_frames is {frames!r}, not a positive integer")
    return (frames, *pixels)


def _is_size(value: object) -> TypeGuard[list[int] | tuple[int, ...]]:
    return (
        isinstance(value, list | tuple)
        and len(value) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value)
    )


@dataclass
class Loader:
    """The steps every loader child shares: read the job, import torch and model.py, call
    load_model as the network's loader does, compare the weights; each step reports its
    findings and raises Stop when the rest is moot."""

    job: dict[str, Any]
    channel: Channel
    report: Report = field(default_factory=Report)

    def phase(self, name: str, **details: Any) -> None:
        self.channel.send({"phase": name, **details})

    def fail(self, exc: BaseException, doing: str, plan: Plan | None) -> Stop:
        """Report an exception from model code: GAS608 when memory ran out, else GAS601."""
        name = self.job["contract"]["model_file"]
        line = model_line(exc, plan.model_path) if plan is not None else None
        missing = missing_allowed_module(exc, self.job["contract"].get("allowed_imports", []))
        if missing is not None:
            message = (
                f"smoke test not run: model.py imports {missing}, which the network has but "
                "this Python lacks"
            )
            hint: str | None = (
                f"install {missing} here (pip install 'gasbuild[vision]'), or build with --no-smoke"
            )
            self.report.add("GAS600", "error", message, file=name, line=line, hint=hint)
        elif is_out_of_memory(exc):
            limit = self.job["memory_mb"]
            message = f"out of memory while {doing} ({one_line(exc)}); the limit is {limit} MB"
            self.report.add("GAS608", "error", message, file=name, line=line)
        elif (keys := state_dict_keys(exc)) is not None:
            absent, extra = keys
            found = [
                f"{len(names)} {kind} key(s): {listed(names)}"
                for kind, names in (("missing", absent), ("unexpected", extra))
                if names
            ]
            message = f"{doing} raised {type(exc).__name__}: load_state_dict found " + "; ".join(
                found
            )
            hint = _rename_hint(find_rename(absent, extra)) or (
                "the checkpoint lacks these tensors: was it saved from another architecture, or "
                "without its classifier head?"
                if not extra
                else "the checkpoint does not match the architecture: check the model name and "
                "weights.state_dict_key / strip_prefix / rename in gas.toml"
            )
            self.report.add("GAS601", "error", message, file=name, line=line, hint=hint)
        else:
            message = f"{doing} raised {one_line(exc)}"
            hint = _OFFLINE_HINT if is_network_error(exc) else known_fix(exc, plan)
            self.report.add("GAS601", "error", message, file=name, line=line, hint=hint)
        return Stop()

    def import_torch(self) -> Any:
        self.phase("importing torch")
        try:
            import torch
        except BaseException as exc:  # an ImportError, or MemoryError under a tiny limit
            limit = self.job["memory_mb"]
            message = f"cannot import torch: {one_line(exc)}"
            self.report.add(
                "GAS608" if is_out_of_memory(exc) else "GAS600",
                "error",
                message,
                hint=f"the memory limit is {limit} MB",
            )
            raise Stop from exc
        torch.set_num_threads(self.job["threads"])
        with contextlib.suppress(RuntimeError):
            torch.set_num_interop_threads(1)
        torch.manual_seed(_SEED)
        return torch

    def import_model(self, plan: Plan) -> ModuleType:
        """Import model.py as a lone module: unique name, its folder not on sys.path."""
        self.phase("importing model.py")
        try:
            name = f"gas_submission_{uuid.uuid4().hex}"
            spec = importlib.util.spec_from_file_location(name, plan.model_path)
            if spec is None or spec.loader is None:
                raise ImportError(f"cannot import {plan.model_path.name}")
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
        except BaseException as exc:
            raise self.fail(exc, "importing model.py", plan) from exc
        if not callable(getattr(module, "load_model", None)):
            self.report.add(
                "GAS601",
                "error",
                "model.py defines no load_model function",
                file=self.job["contract"]["model_file"],
            )
            raise Stop
        return module

    def load(self, plan: Plan, module: ModuleType, torch: Any) -> Any:
        """``load_model`` as the loader calls it, then the cast and eval the loader does."""
        self.phase("running load_model")
        load_model = module.load_model
        kwargs = self.bind(plan, load_model)
        doing = "load_model" if kwargs is plan.kwargs else "load_model (with num_classes only)"
        try:
            model = load_model(str(plan.weights_path), **kwargs)
        except BaseException as exc:
            raise self.fail(exc, doing, plan) from exc
        if not isinstance(model, torch.nn.Module):
            message = f"load_model returned {type(model).__name__}, not a torch.nn.Module"
            self.report.add("GAS602", "error", message, file=self.job["contract"]["model_file"])
            raise Stop
        self.phase("casting the model")
        try:
            model = model.to("cpu", getattr(torch, plan.dtype))
            model.eval()
        except BaseException as exc:
            raise self.fail(exc, f"model.to('cpu', {plan.dtype}).eval()", plan) from exc
        return model

    def bind(self, plan: Plan, load_model: Any) -> dict[str, Any]:
        """The keywords the loader passes: the model section's, or ``num_classes`` alone.

        The loader binds ``load_model``'s signature before calling it and falls back to
        ``num_classes`` only when the model section's keys do not fit (GAS603); a signature
        that takes neither is a failure. Older loaders called first and retried on any
        TypeError; binding first is the stricter of the two.
        """
        try:
            signature = inspect.signature(load_model)
        except (TypeError, ValueError):
            return plan.kwargs  # no signature to read (a C function): call it and see
        path = str(plan.weights_path)
        try:
            signature.bind(path, **plan.kwargs)
            return plan.kwargs
        except TypeError as exc:
            rejected = exc
        fallback = {"num_classes": plan.loader_num_classes}
        line = def_line(load_model)
        try:
            signature.bind(path, **fallback)
        except TypeError as exc:
            raise self.unbindable(signature, exc, line) from exc
        self.kwargs_rejected(plan, rejected, line)
        return fallback

    def unbindable(self, signature: inspect.Signature, exc: TypeError, line: int | None) -> Stop:
        """GAS601: a load_model that neither of the loader's two calls fits."""
        message = (
            f"load_model{signature} cannot be called as the loader calls it, "
            f"load_model(weights_path, **model) or load_model(weights_path, num_classes=...): "
            f"{one_line(exc)}"
        )
        self.report.add(
            "GAS601",
            "error",
            message,
            file=self.job["contract"]["model_file"],
            line=line,
            hint="define load_model(weights_path: str, num_classes: int = 2, **kwargs)",
        )
        return Stop()

    def kwargs_rejected(self, plan: Plan, exc: TypeError, line: int | None) -> None:
        keys = ", ".join(sorted(map(str, plan.kwargs))) or "no keywords"
        message = (
            f"load_model cannot take the model section's keys ({keys}): {one_line(exc)}; the "
            "loader then calls it with num_classes only, so the other keys are ignored"
        )
        hint = "make load_model take every key of the model section, or **kwargs"
        self.report.add(
            "GAS603",
            "warning",
            message,
            file=self.job["contract"]["model_file"],
            line=line,
            hint=hint,
        )

    def check_weights(self, plan: Plan, model: Any, torch: Any) -> None:
        """Compare what the model holds with what the weights file holds (GAS604)."""
        self.phase("comparing weights")
        try:
            findings = compare_weights(model, plan.weights_path, plan.weights_name, torch)
        except Exception as exc:  # an unreadable file is the weights check's business (GAS4xx)
            print(f"gasbuild smoke: weights not compared: {one_line(exc)}", file=sys.stderr)
            return
        self.report.findings.extend(findings)


def nonce_bytes(nonce: str, shape: tuple[int, ...]) -> bytes:
    """One byte per input element, from the parent's per-run nonce: SHAKE-256 of
    ``"<nonce>:<shape>"``. ``gasbuild.check.smoke`` derives the same bytes to check the
    measurements belong to this run's input."""
    import hashlib

    count = 1
    for size in shape:
        count *= size
    return hashlib.shake_256(f"{nonce}:{list(shape)}".encode()).digest(count)


def dummy_input(torch: Any, modality: str, shape: tuple[int, ...], nonce: str | None = None) -> Any:
    """The benchmark's input: uint8 pixels 0..255, or float32 audio in [-1, 1]; from the
    parent's nonce when given (``nonce_bytes``), else seeded."""
    if nonce is not None:
        pixels = torch.frombuffer(bytearray(nonce_bytes(nonce, shape)), dtype=torch.uint8)
        pixels = pixels.reshape(shape)
        return pixels.float() / 127.5 - 1 if modality == "audio" else pixels
    generator = torch.Generator().manual_seed(_SEED)
    if modality == "audio":
        return torch.rand(shape, generator=generator, dtype=torch.float32) * 2 - 1
    return torch.randint(0, _PIXEL_LEVELS, shape, generator=generator, dtype=torch.uint8)


def unwrap(output: Any) -> Any:
    """The logits inside a model's output, as the loader finds them."""
    if isinstance(output, dict):
        for key in ("logits", "output"):
            if key in output:
                return output[key]
        return next(iter(output.values())) if len(output) == 1 else output
    if hasattr(output, "logits"):
        return output.logits
    if isinstance(output, tuple | list) and len(output) == 1:
        return output[0]
    return output


def logits_problem(
    torch: Any, logits: Any, batch: int, num_classes: object, contract: Any
) -> str | None:
    """Why an output is not the ``[B, C]`` logits the benchmark reads, or None."""
    allowed = contract["num_classes_allowed"]
    if not isinstance(logits, torch.Tensor):
        return f"the output is {type(logits).__name__}; the loader needs a tensor of logits"
    shape = list(logits.shape)
    if logits.dim() != 2 or shape[0] != batch:
        hint = " (a single P(AI) logit is [B, 1])" if logits.dim() == 1 else ""
        return f"the logits have shape {shape}; expected [{batch}, C]{hint}"
    if not logits.is_floating_point():
        return f"the logits are {logits.dtype}; they must be floating point"
    classes = shape[1]
    if classes not in allowed:
        return f"C = {classes}; the benchmark misreads anything but C in {allowed}"
    if isinstance(num_classes, int) and classes != num_classes:
        return f"C = {classes}, but model.num_classes in the config is {num_classes}"
    return None


def forward_line(model: Any, model_path: Path) -> int | None:
    """Where the model's forward is defined, when model.py defines it."""
    code = getattr(type(model).forward, "__code__", None)
    if code is not None and code.co_filename == str(model_path):
        return int(code.co_firstlineno)
    return None


# ---------------------------------------------------------------------------------------------
# Weight names: what load_model loaded against what the file holds.


@dataclass
class KeyDiff:
    """Names on either side, after tied weights and verified renames are set aside."""

    missing: list[str]  # in the model, not in the file
    unexpected: list[str]  # in the file, not in the model
    rename: tuple[str, str] | None = None  # (file prefix, model prefix) that lines names up


def common_prefixes(names: list[str]) -> list[str]:
    """Dotted prefixes every name shares, longest first: ["a.b.", "a."] for a.b.x, a.b.y."""
    if not names:
        return []
    shared = os.path.commonprefix(names)  # noqa: RUF071 - names, not paths: char by char
    cuts = [i + 1 for i, c in enumerate(shared) if c == "."]
    return [shared[:i] for i in reversed(cuts)]


def find_rename(missing: list[str], unexpected: list[str]) -> tuple[str, str] | None:
    """A prefix to strip from the file's names, or to add to them, that matches model names."""
    wanted = set(missing)
    for prefix in common_prefixes(unexpected):
        if any(u[len(prefix) :] in wanted for u in unexpected):
            return prefix, ""
    for prefix in common_prefixes(missing):
        if any(prefix + u in wanted for u in unexpected):
            return "", prefix
    return None


def renamed(name: str, rename: tuple[str, str]) -> str | None:
    """The model name a file name maps to under a rename, when it does."""
    strip, add = rename
    return add + name[len(strip) :] if name.startswith(strip) else None


def compare_weights(model: Any, path: Path, file_name: str, torch: Any) -> list[dict[str, Any]]:
    """GAS604 findings: model tensors the file lacks, file tensors unused, values not loaded."""
    from safetensors import safe_open

    state = model.state_dict()
    params = {n for n, _ in model.named_parameters(remove_duplicate=False)}
    report = Report()
    with safe_open(str(path), framework="pt") as handle:
        file_keys = list(handle.keys())
        diff = key_diff(state, file_keys)
        present = set(file_keys)
        pairs = [k for k in state if k in present]
        differing = [k for k in pairs if not same_values(state[k], handle.get_tensor(k), torch)]
        renames = _renamed_pairs(diff, state)
        if renames and all(same_values(state[m], handle.get_tensor(f), torch) for m, f in renames):
            _drop_renamed(diff, renames)  # load_model renames the keys itself and loads them all
        _drop_renamed(diff, _pairs_by_value(diff, state, handle, torch))
    _key_findings(report, diff, params, file_name)
    if differing:
        message = (
            f"after load_model, {len(differing)} of {len(pairs)} tensors differ from the "
            f"{file_name} tensors of the same name: {listed(differing)}"
        )
        hint = "check that load_model loads the file (and does not transform the weights)"
        report.add("GAS604", "warning", message, file=file_name, hint=hint)
    return report.findings


def key_diff(state: dict[str, Any], file_keys: list[str]) -> KeyDiff:
    """Missing and unexpected names; a name tied to a loaded tensor is not missing."""
    present = set(file_keys)
    loaded_ptrs = {_identity(state[k]) for k in state if k in present}
    missing = [k for k in state if k not in present and _identity(state[k]) not in loaded_ptrs]
    unexpected = [k for k in file_keys if k not in state]
    return KeyDiff(missing, unexpected, find_rename(missing, unexpected))


def _identity(tensor: Any) -> tuple[int, tuple[int, ...]]:
    return int(tensor.data_ptr()), tuple(tensor.shape)


def _renamed_pairs(diff: KeyDiff, state: dict[str, Any]) -> list[tuple[str, str]]:
    """(model name, file name) pairs the rename lines up."""
    if diff.rename is None:
        return []
    wanted = set(diff.missing)
    pairs = [(renamed(u, diff.rename), u) for u in diff.unexpected]
    return [(m, u) for m, u in pairs if m is not None and m in wanted and m in state]


def _pairs_by_value(
    diff: KeyDiff, state: dict[str, Any], handle: Any, torch: Any
) -> list[tuple[str, str]]:
    """(model name, file name) pairs whose values match, for names no prefix lines up.

    A loader may map names itself: transformers' ``from_pretrained`` turns the names
    ``save_pretrained`` wrote into its modules' own, which can differ mid-name
    (``encoder.layer.0.attention.attention.query`` -> ``layers.0.attention.q_proj``). A missing
    model tensor that holds the values of an unused file tensor of the same shape was loaded
    under another name. Only tensors of one shape are compared, each file tensor used once.
    """
    by_shape: dict[tuple[int, ...], list[str]] = {}
    for name in diff.unexpected:
        by_shape.setdefault(tuple(handle.get_slice(name).get_shape()), []).append(name)
    loaded: dict[str, Any] = {}
    pairs: list[tuple[str, str]] = []
    for model_name in diff.missing:
        candidates = by_shape.get(tuple(state[model_name].shape), [])
        for file_name in candidates:
            if file_name not in loaded:
                loaded[file_name] = handle.get_tensor(file_name)
            if same_values(state[model_name], loaded[file_name], torch):
                pairs.append((model_name, file_name))
                candidates.remove(file_name)
                del loaded[file_name]
                break
    return pairs


def _drop_renamed(diff: KeyDiff, done: list[tuple[str, str]]) -> None:
    """Set aside pairs known to be loaded; what is left may still line up by a prefix."""
    if not done:
        return
    models, files = {m for m, _ in done}, {f for _, f in done}
    diff.missing = [k for k in diff.missing if k not in models]
    diff.unexpected = [k for k in diff.unexpected if k not in files]
    diff.rename = find_rename(diff.missing, diff.unexpected)


def same_values(loaded: Any, saved: Any, torch: Any) -> bool:
    """Whether a model tensor holds the file's values (after the dtype cast the loader does)."""
    if tuple(loaded.shape) != tuple(saved.shape):
        return False
    if loaded.is_floating_point() and saved.is_floating_point():
        return bool(torch.allclose(loaded.float(), saved.float(), rtol=_RTOL, atol=_ATOL))
    return bool(torch.equal(loaded, saved.to(loaded.dtype)))


def _key_findings(report: Report, diff: KeyDiff, params: set[str], file_name: str) -> None:
    hint = _rename_hint(diff.rename)
    missing_params = [k for k in diff.missing if k in params]
    missing_buffers = [k for k in diff.missing if k not in params]
    if missing_params:
        message = (
            f"{len(missing_params)} model parameter(s) have no tensor in {file_name} and keep "
            f"their initial values: {listed(missing_params)}"
        )
        report.add(
            "GAS604",
            "error",
            message,
            file=file_name,
            hint=hint or "save the full state_dict, and load it with strict=True",
        )
    if missing_buffers:
        message = f"{len(missing_buffers)} buffer(s) are not in {file_name}: "
        report.add("GAS604", "warning", message + listed(missing_buffers), file=file_name)
    if diff.unexpected:
        message = (
            f"{file_name} holds {len(diff.unexpected)} tensor(s) the model has no place for: "
            f"{listed(diff.unexpected)}"
        )
        report.add(
            "GAS604",
            "warning",
            message,
            file=file_name,
            hint=hint or "drop them when saving: they only make the zip larger",
        )


def _rename_hint(rename: tuple[str, str] | None) -> str | None:
    strip, add = rename if rename is not None else ("", "")
    if strip:
        return (
            f"the file's names carry a {strip!r} prefix the model lacks: set "
            f'weights.strip_prefix = "{strip}" in gas.toml (or strip it in load_model)'
        )
    if add:
        return (
            f"the model's names start with {add!r}, the file's do not: set "
            f'weights.rename = {{ "" = "{add}" }} in gas.toml (or load into that submodule)'
        )
    return None


# ---------------------------------------------------------------------------------------------
