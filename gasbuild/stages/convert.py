"""Convert stage: PyTorch checkpoints and sharded checkpoints to one deterministic safetensors file.

A GAS submission carries its weights as ``model.safetensors``, but miners train with PyTorch and
hold ``.pt``/``.pth``/``.bin``/``.ckpt`` files, or Hugging Face shards behind an ``*.index.json``.
This module turns any of those into a single safetensors file, optionally stripping or rewriting
name prefixes and casting floating-point tensors.

Safety comes first: a checkpoint is a pickle, and unpickling can run arbitrary code. Checkpoints
are read only with ``torch.load(weights_only=True)``, whose restricted unpickler refuses every
global outside a small allow-list; gasbuild never falls back to a full unpickle and says which
global was refused instead. Safetensors inputs are read with safetensors itself.

The output depends only on the tensors: ``write_safetensors`` lays them out as the safetensors
library does (by dtype size, then name; fixed metadata) and streams each tensor's memory to the
file without a ``bytes`` copy, so the same input gives the same bytes and the same cache digest
every time.
Torch is imported inside the functions that need it, so ``gasbuild check`` and the CLI start fast
on machines without it.
"""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Literal

from gasbuild.blobs import HashingWriter, replace_into, temp_beside
from gasbuild.errors import BuildError, UserError, display_path
from gasbuild.submission import DTYPES

if TYPE_CHECKING:
    import torch

STAGE_VERSION = "1"
CHECKPOINT_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt")
SHARD_SUFFIXES = (".safetensors", ".bin")

# Where training frameworks put the state dict inside a larger checkpoint (Lightning, timm,
# DeepSpeed, EMA trainers); used only to suggest ``state_dict_key``, never to guess silently.
CONTAINER_KEYS = ("state_dict", "model", "model_state_dict", "module", "ema")

_DTYPE_NAMES = DTYPES  # the loader's spellings: fp16 and float16 are one cache key
# What safetensors can store; anything else fails with a clear message before writing.
# What safetensors can store: torch dtype name -> the format's dtype code.
_STORABLE_DTYPES = {
    "float64": "F64",
    "float32": "F32",
    "float16": "F16",
    "bfloat16": "BF16",
    "complex64": "C64",
    "int64": "I64",
    "int32": "I32",
    "int16": "I16",
    "int8": "I8",
    "uint64": "U64",
    "uint32": "U32",
    "uint16": "U16",
    "uint8": "U8",
    "bool": "BOOL",
    "float8_e4m3fn": "F8_E4M3",
    "float8_e4m3fnuz": "F8_E4M3FNUZ",
    "float8_e5m2": "F8_E5M2",
    "float8_e5m2fnuz": "F8_E5M2FNUZ",
}
_HEADER_ALIGN = 8  # the header is space-padded so that the data starts 8-byte aligned
_SHOWN = 3  # how many names an error message quotes before "..."
_ZIP_MAGIC = b"PK\x03\x04"
_LFS_POINTER = b"version https://git-lfs.github.com/spec/"
_SAVE_HINT = 'save only the tensors: torch.save(model.state_dict(), "model.pt")'
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


class ConversionError(UserError):
    """The weights cannot be converted as configured: a refused pickle, a wrong key, a bad index.

    A user error (exit code 2): the fix is always in the checkpoint or in the ``weights`` section
    of gas.toml, never a retry.
    """


@dataclass(frozen=True)
class ConvertOptions:
    """How to turn the loaded tensors into the submitted ones; all unset means "use as is"."""

    state_dict_key: str | None = None  # dotted path to the state dict, e.g. "model.ema"
    strip_prefix: tuple[str, ...] = ()  # each removed, in order, from names that start with it
    rename: tuple[tuple[str, str], ...] = ()  # (old_prefix, new_prefix); first match wins
    dtype: str | None = None  # "float32" | "float16" | "bfloat16"; floating tensors only

    def __post_init__(self) -> None:
        # A bare string would be iterated character by character and strip single letters.
        if isinstance(self.strip_prefix, str):
            raise TypeError("strip_prefix must be a tuple of strings, not a string")
        if any(len(pair) != 2 for pair in self.rename):
            raise TypeError("rename must hold (old_prefix, new_prefix) pairs")

    @property
    def is_identity(self) -> bool:
        """True when no option is set: a safetensors input can then be used unchanged."""
        return not (self.state_dict_key or self.strip_prefix or self.rename or self.dtype)

    def params(self) -> dict[str, Any]:
        """The options as JSON-able values for the cache key; dtype aliases share one key."""
        dtype = _DTYPE_NAMES.get(self.dtype, self.dtype) if self.dtype else None
        return {
            "state_dict_key": self.state_dict_key,
            "strip_prefix": list(self.strip_prefix),
            "rename": [[old, new] for old, new in self.rename],
            "dtype": dtype,
        }


@dataclass(frozen=True)
class ConvertResult:
    """What a conversion did, for the build log and the manifest."""

    tensors: int  # tensors written
    renamed: int  # names changed by strip_prefix / rename
    cast: int  # floating-point tensors whose dtype changed
    unshared: int  # tensors copied because they shared storage with another or were not contiguous
    dropped: tuple[str, ...] = ()  # names left out; always empty: nothing is dropped silently
    sha256: str = ""  # of the file written, measured while writing it
    crc32: int = 0
    size: int = 0


# ------------------------------------------------------------------------------------------------
# Names and indexes (no torch)


def weights_kind(name: str) -> Literal["safetensors", "checkpoint", "index"]:
    """What a weights file is, from its name (the build plan picks stages before reading it)."""
    lower = name.lower()
    if lower.endswith(".index.json"):
        return "index"
    if lower.endswith(".safetensors"):
        return "safetensors"
    if lower.endswith(CHECKPOINT_SUFFIXES):
        return "checkpoint"
    raise ConversionError(
        f"{name}: not a weights file gasbuild can convert",
        hint="use .safetensors, a PyTorch checkpoint (" + ", ".join(CHECKPOINT_SUFFIXES) + ") "
        "or a sharded checkpoint's *.index.json",
    )


def needs_conversion(name: str, options: ConvertOptions) -> bool:
    """Checkpoints and indexes always; a safetensors file only when an option changes it."""
    kind = weights_kind(name)
    return kind != "safetensors" or not options.is_identity


def index_weight_map(index_path: Path, *, key: str) -> dict[str, str]:
    """An HF index's ``weight_map`` (tensor name -> shard file name), checked.

    Shard names come from a downloaded file and are joined to a directory or URL by the caller,
    so each must be a plain file name: no folders, no ``..``, a known shard suffix.
    """
    label = display_path(index_path)
    try:
        data = json.loads(index_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConversionError(f"{key}: {label}: not a readable JSON index ({exc})") from exc
    weight_map = data.get("weight_map") if isinstance(data, dict) else None
    if not isinstance(weight_map, dict) or not weight_map:
        raise ConversionError(
            f"{key}: {label}: no weight_map in the index",
            hint='a sharded checkpoint index is {"weight_map": {"<tensor>": "<shard file>"}}',
        )
    for tensor, shard in weight_map.items():
        if not isinstance(shard, str):
            raise ConversionError(f"{key}: {label}: weight_map[{tensor!r}] is not a file name")
        _check_shard_name(shard, key, label)
    suffixes = {Path(shard).suffix.lower() for shard in weight_map.values()}
    if len(suffixes) > 1:
        raise ConversionError(f"{key}: {label}: the index mixes .safetensors and .bin shards")
    return dict(weight_map)


def index_shards(index_path: Path, *, key: str) -> list[str]:
    """The shard file names an HF index points to, each once, sorted (a stable fetch order)."""
    return sorted(set(index_weight_map(index_path, key=key).values()))


def _check_shard_name(shard: str, key: str, label: str) -> None:
    """Refuse shard names that would reach outside the index's folder or are not shards."""
    plain = (
        shard not in ("", ".", "..")
        and "/" not in shard
        and "\\" not in shard
        and not shard.startswith(".")
        and "\x00" not in shard
    )
    if not plain:
        raise ConversionError(
            f"{key}: {label}: shard name {shard!r} is not a plain file name",
            hint="an index may only name files in its own folder",
        )
    if not shard.lower().endswith(SHARD_SUFFIXES):
        raise ConversionError(
            f"{key}: {label}: shard {shard!r} is neither .safetensors nor .bin",
        )


def rewrite_names(names: Iterable[str], options: ConvertOptions, *, key: str) -> dict[str, str]:
    """Map each tensor name to its submitted name: strip prefixes, then rewrite prefixes.

    ``strip_prefix`` entries apply in order, each once, to names that start with it, so
    ``("module.", "model.")`` turns ``module.model.fc`` into ``fc``. ``rename`` rules are tried in
    order and the first whose old prefix matches rewrites the name (an empty old prefix matches
    every name, which adds a prefix). An option that changes no name is an error: it is almost
    always a typo, and a silently ignored prefix only shows up later as a failed strict load.
    """
    old_names = list(dict.fromkeys(names))
    current = {name: name for name in old_names}
    for prefix in options.strip_prefix:
        if not prefix:
            raise ConversionError(f"{key}: strip_prefix contains an empty prefix")
        hits = [old for old, new in current.items() if new.startswith(prefix)]
        if not hits:
            raise _unmatched(f"strip_prefix {prefix!r}", list(current.values()), key)
        for old in hits:
            current[old] = current[old][len(prefix) :]
    current = _apply_renames(current, options.rename, key)
    _check_injective(current, key)
    return current


def _apply_renames(
    current: dict[str, str], rules: Sequence[tuple[str, str]], key: str
) -> dict[str, str]:
    """Apply the first matching rename rule to each name; every rule must rewrite something."""
    used = [False] * len(rules)
    out: dict[str, str] = {}
    for old, name in current.items():
        for i, (prefix, replacement) in enumerate(rules):
            if name.startswith(prefix):
                name = replacement + name[len(prefix) :]
                used[i] = True
                break
        out[old] = name
    for i, (prefix, replacement) in enumerate(rules):
        if used[i]:
            continue
        what = f"rename {prefix!r} -> {replacement!r}"
        shadowed = any(name.startswith(prefix) for name in current.values())
        if shadowed:
            raise ConversionError(
                f"{key}: {what} never applies: an earlier rename takes every name it matches",
                hint="order rename rules from the most specific prefix to the least",
            )
        raise _unmatched(what, list(current.values()), key)
    return out


def _unmatched(what: str, names: Sequence[str], key: str) -> ConversionError:
    return ConversionError(
        f"{key}: {what} matches no tensor name (names look like {_quote(sorted(names))})",
        hint="check the prefix for a typo; it is compared with the start of each name, "
        "after any earlier strip_prefix",
    )


def _check_injective(mapping: Mapping[str, str], key: str) -> None:
    """Two tensors under one name would silently lose one of them: refuse."""
    seen: dict[str, str] = {}
    for old, new in mapping.items():
        if new in seen:
            raise ConversionError(
                f"{key}: {seen[new]!r} and {old!r} would both be named {new!r}",
                hint="strip_prefix/rename must keep tensor names distinct",
            )
        seen[new] = old


def _a(noun: str) -> str:
    """``an int``, ``a list``: type names read as English in messages."""
    return f"an {noun}" if noun[:1].lower() in "aeiou" else f"a {noun}"


def _quote(names: Sequence[str], shown: int = _SHOWN) -> str:
    """A few names for a message: ``'a', 'b', 'c', ... (12 in all)``."""
    head = ", ".join(repr(n) for n in names[:shown])
    if len(names) > shown:
        return f"{head}, ... ({len(names)} in all)"
    return head or "none"


# ------------------------------------------------------------------------------------------------
# Conversion (torch)


def convert(
    files: Sequence[Path],
    options: ConvertOptions,
    out: Path,
    *,
    key: str,
    index: Path | None = None,
    labels: Sequence[str] | None = None,
) -> ConvertResult:
    """Convert one checkpoint, one safetensors file or an index's shards to ``out``.

    Each file's format is read from its first bytes, not its name, since fetched files sit in
    the cache under their digest. With ``index``, the merged names must be exactly the index's
    ``weight_map``. ``labels`` name the files in messages (default: their paths). ``out`` is
    written through a temp file in its own folder and a rename, so it is whole or absent.
    """
    if not files:
        raise ConversionError(f"{key}: no weights files to convert")
    _require_torch(key)
    shown = list(labels) if labels is not None else [display_path(f) for f in files]
    if len(shown) != len(files):
        raise ValueError("labels must name every file")
    target = _target_dtype(options.dtype, key)
    tensors = _load_all(files, shown, options.state_dict_key, key)
    if index is not None:
        _check_against_index(tensors, index, key)
    mapping = rewrite_names(tensors, options, key=key)
    renamed = sum(old != new for old, new in mapping.items())
    tensors = {mapping[name]: tensor for name, tensor in tensors.items()}
    _check_storable(tensors, key)
    tensors, cast = _cast(tensors, target)
    tensors, unshared = _unshare(tensors)
    sha256, crc, size = _write(tensors, out, key)
    return ConvertResult(
        tensors=len(tensors),
        renamed=renamed,
        cast=cast,
        unshared=unshared,
        sha256=sha256,
        crc32=crc,
        size=size,
    )


def _require_torch(key: str) -> None:
    """Converting needs torch; without it, say so in one line rather than a traceback."""
    try:
        import torch  # noqa: F401
    except ImportError:
        raise ConversionError(
            f"{key}: converting a checkpoint to safetensors needs torch, which is not installed",
            hint="pip install 'gasbuild[torch]', or give a ready .safetensors file",
        ) from None


def _target_dtype(name: str | None, key: str) -> torch.dtype | None:
    if name is None:
        return None
    canonical = _DTYPE_NAMES.get(name)
    if canonical is None:
        raise ConversionError(
            f"{key}: dtype {name!r} is not one gasbuild stores",
            hint="use float32, float16 or bfloat16",
        )
    import torch

    dtype: torch.dtype = getattr(torch, canonical)
    return dtype


def _load_all(
    files: Sequence[Path], labels: Sequence[str], state_dict_key: str | None, key: str
) -> dict[str, torch.Tensor]:
    """Load every file and merge them; a name found in two files is an error, not an overwrite."""
    merged: dict[str, torch.Tensor] = {}
    origin: dict[str, str] = {}
    for path, label in zip(files, labels, strict=True):
        if _is_safetensors(path):
            if state_dict_key:
                raise ConversionError(
                    f"{key}: {label}: state_dict_key applies to pickled checkpoints, and this "
                    "is a safetensors file",
                    hint="remove state_dict_key",
                )
            part = _load_safetensors(path, label, key)
        else:
            part = _select_state_dict(
                _load_checkpoint(path, label, key), state_dict_key, label, key
            )
        for name, tensor in part.items():
            if name in merged:
                raise ConversionError(
                    f"{key}: tensor {name!r} is in both {origin[name]} and {label}",
                    hint="each tensor must sit in exactly one shard",
                )
            merged[name] = tensor
            origin[name] = label
    return merged


def _is_safetensors(path: Path) -> bool:
    """A safetensors file starts with a little-endian u64 header length, then a JSON object."""
    try:
        with path.open("rb") as f:
            head = f.read(9)
            size = os.fstat(f.fileno()).st_size
    except OSError:
        return False  # let the checkpoint loader report the unreadable file
    if len(head) < 9 or head[8:9] != b"{":
        return False
    return 2 <= int.from_bytes(head[:8], "little") <= size - 8


def _load_safetensors(path: Path, label: str, key: str) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    try:
        tensors: dict[str, torch.Tensor] = load_file(path)
    except Exception as exc:  # SafetensorError and friends: a damaged file, reported in one line
        raise ConversionError(
            f"{key}: {label}: not a readable safetensors file ({_first_line(exc)})"
        ) from exc
    if not tensors:
        raise ConversionError(f"{key}: {label}: the safetensors file holds no tensors")
    return tensors


def _load_checkpoint(path: Path, label: str, key: str) -> object:
    """``torch.load`` with the weights-only unpickler, and nothing else, ever.

    Memory-mapping keeps a large zip checkpoint out of RAM; the legacy (pre-1.6, non-zip) format
    cannot be mapped and is read normally. Both go through the same restricted unpickler.
    """
    import torch

    mmap = _is_zip_checkpoint(path, label, key)
    try:
        with _allowed_data_classes(torch):
            try:
                return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
            except RuntimeError as exc:
                if not mmap or "mmap" not in str(exc):
                    raise
                return torch.load(path, map_location="cpu", weights_only=True, mmap=False)
    except pickle.UnpicklingError as exc:
        raise _refused(exc, label, key) from exc
    except EOFError as exc:
        raise ConversionError(
            f"{key}: {label}: not a PyTorch checkpoint: it ends early (empty or truncated)",
        ) from exc
    except Exception as exc:  # a corrupt zip, an unreadable file: one line, no torch traceback
        raise ConversionError(
            f"{key}: {label}: not a readable PyTorch checkpoint ({_first_line(exc)})",
            hint="is the file complete, and was it written by torch.save?",
        ) from exc


def _allowed_data_classes(torch: Any) -> contextlib.AbstractContextManager[object]:
    """Let the weights-only unpickler rebuild ``argparse.Namespace``, and nothing more.

    timm's train.py saves its command line as a Namespace beside the state dict, so refusing
    it would refuse most timm checkpoints. A Namespace is plain data: the unpickler creates an
    empty one and fills its ``__dict__`` with what it may already load (tensors, containers,
    numbers, strings); no code of the checkpoint's choosing runs. Every other global is still
    refused.
    """
    import argparse

    safe_globals = getattr(torch.serialization, "safe_globals", None)
    if safe_globals is None:  # torch < 2.5: no allow-list, Namespace stays refused
        return contextlib.nullcontext()
    manager: contextlib.AbstractContextManager[object] = safe_globals([argparse.Namespace])
    return manager


def _is_zip_checkpoint(path: Path, label: str, key: str) -> bool:
    """Whether ``path`` is a zip (torch >= 1.6) checkpoint; a Git LFS pointer is an error.

    A repository cloned without LFS holds 130-byte pointer files where the weights should be;
    saying so beats a confusing "unsupported pickle opcode".
    """
    try:
        with path.open("rb") as f:
            head = f.read(len(_LFS_POINTER))
    except OSError as exc:
        raise ConversionError(f"{key}: {label}: cannot read the file ({_first_line(exc)})") from exc
    if head == _LFS_POINTER:
        raise ConversionError(
            f"{key}: {label}: a Git LFS pointer, not the weights",
            hint="fetch the real file first: git lfs pull",
        )
    return head.startswith(_ZIP_MAGIC)


def _refused(exc: pickle.UnpicklingError, label: str, key: str) -> ConversionError:
    """Turn the weights-only unpickler's page-long refusal into one line that says why."""
    text = _ANSI.sub("", str(exc))
    name = _refused_global(text)
    if name is not None:
        return ConversionError(
            f"{key}: {label}: refused: loading it would need the Python global `{name}`, which "
            "a weights-only load does not allow; gasbuild never runs a checkpoint's pickled code",
            hint=_SAVE_HINT,
        )
    opcode = re.search(r"Unsupported operand (\d+)", text)
    if opcode is not None:
        return ConversionError(
            f"{key}: {label}: not a checkpoint torch.save wrote (the weights-only loader met "
            f"pickle opcode {opcode.group(1)}); gasbuild never fully unpickles a checkpoint",
            hint=_SAVE_HINT,
        )
    return ConversionError(
        f"{key}: {label}: refused by the weights-only loader: {_refusal_detail(text)}; "
        "gasbuild never runs a checkpoint's pickled code",
        hint=_SAVE_HINT,
    )


def _refused_global(text: str) -> str | None:
    """The global named in torch's refusal, module included (torch drops ``builtins.``)."""
    blocked = re.search(r"unsupported GLOBAL (\S+) whose module", text)
    if blocked is not None:
        return blocked.group(1)
    unsupported = re.search(r"GLOBAL (\S+) was not an allowed global", text)
    if unsupported is None:
        return None
    name = unsupported.group(1)
    return name if "." in name else f"builtins.{name}"


def _refusal_detail(text: str) -> str:
    """The line of torch's message that names the problem, without its boilerplate."""
    marker = "WeightsUnpickler error:"
    body = text.split(marker, 1)[1] if marker in text else text
    body = body.replace("Weights only load failed.", "", 1)
    boilerplate = ("Check the documentation", "In PyTorch 2.6", "Re-running", "Please file")
    lines = [ln.strip() for ln in body.splitlines()]
    lines = [ln for ln in lines if ln and not ln.startswith(boilerplate)]
    return lines[0][:200] if lines else "no reason given"


def _first_line(exc: BaseException, limit: int = 160) -> str:
    """The first sentence of an exception's message, short enough for a one-line report."""
    text = _ANSI.sub("", str(exc)).strip()
    line = text.splitlines()[0] if text else type(exc).__name__
    line = line.split(". ", 1)[0].rstrip(".")
    return line if len(line) <= limit else line[: limit - 3] + "..."


# ------------------------------------------------------------------------------------------------
# Finding the state dict


def _select_state_dict(
    obj: object, state_dict_key: str | None, label: str, key: str
) -> dict[str, torch.Tensor]:
    """The dict of tensors to convert: at ``state_dict_key``, or the loaded object itself.

    Without a key, a checkpoint that keeps its weights one level down (Lightning's
    ``state_dict``, a trainer's ``model``) is an error that names the key to set: guessing would
    pick the wrong one of ``model``/``ema`` without a word.
    """
    if state_dict_key:
        chosen = _walk(obj, state_dict_key, label, key)
        return _tensor_dict(chosen, obj, state_dict_key, label, key)
    if not _holds_tensors(obj):
        raise _no_state_dict(obj, label, key)
    return _tensor_dict(obj, obj, None, label, key)


def _walk(obj: object, dotted: str, label: str, key: str) -> object:
    """Follow a dotted path; a key that itself contains dots is matched whole first."""
    parts = dotted.split(".")
    node, taken = obj, ""
    while parts:
        where = f"{taken!r}" if taken else "the checkpoint"
        if not isinstance(node, Mapping):
            raise ConversionError(
                f"{key}: {label}: state_dict_key {dotted!r}: {where} is "
                f"{_a(type(node).__name__)}, not a dict"
            )
        for n in range(len(parts), 0, -1):
            step = ".".join(parts[:n])
            if step in node:
                node, parts = node[step], parts[n:]
                taken = f"{taken}.{step}" if taken else step
                break
        else:
            raise ConversionError(
                f"{key}: {label}: state_dict_key {dotted!r}: no {parts[0]!r} in {where}; "
                f"it has {_quote([str(k) for k in node], shown=8)}",
                hint=_suggest_hint(obj) or "state_dict_key is a dotted path of dict keys",
            )
    return node


def _tensor_dict(
    obj: object, root: object, state_dict_key: str | None, label: str, key: str
) -> dict[str, torch.Tensor]:
    """``obj`` (the checkpoint, or the entry at ``state_dict_key``) if it is a state dict; else
    an error whose hint points at a better entry when the checkpoint has one."""
    problem = _state_dict_problem(obj)
    if problem is None and isinstance(obj, Mapping):
        return dict(obj)
    what = f"the entry at {state_dict_key!r}" if state_dict_key else "the checkpoint"
    fallback = "state_dict_key may point at the wrong entry" if state_dict_key else _SAVE_HINT
    raise ConversionError(
        f"{key}: {label}: {what} {problem}",
        hint=_suggest_hint(root, exclude=state_dict_key) or fallback,
    )


def _state_dict_problem(obj: object) -> str | None:
    """Why ``obj`` is not a non-empty mapping of string names to tensors, or None if it is."""
    import torch

    if not isinstance(obj, Mapping):
        return f"is {_a(type(obj).__name__)}, not a dict of tensors"
    if not obj:
        return "is an empty dict, no tensors"
    bad_keys = [repr(k) for k in obj if not isinstance(k, str)]
    if bad_keys:
        return f"has non-string names: {', '.join(bad_keys[:_SHOWN])}"
    bad = [f"{k!r} ({type(v).__name__})" for k, v in obj.items() if not isinstance(v, torch.Tensor)]
    if bad:
        more = f", ... ({len(bad)} in all)" if len(bad) > _SHOWN else ""
        return f"has non-tensor values: {', '.join(bad[:_SHOWN])}{more}"
    return None


def _holds_tensors(obj: object) -> bool:
    import torch

    return isinstance(obj, Mapping) and any(isinstance(v, torch.Tensor) for v in obj.values())


def _state_dict_paths(obj: object, depth: int = 3) -> list[str]:
    """Dotted paths below ``obj`` to dicts holding tensors: nearest first, known names first."""
    found: list[tuple[int, int, str]] = []

    def visit(node: object, path: str, level: int) -> None:
        if level > depth or not isinstance(node, Mapping):
            return
        for name, value in node.items():
            if not isinstance(name, str):
                continue
            sub = f"{path}.{name}" if path else name
            if _holds_tensors(value):
                rank = CONTAINER_KEYS.index(name) if name in CONTAINER_KEYS else len(CONTAINER_KEYS)
                found.append((level, rank, sub))
            visit(value, sub, level + 1)

    visit(obj, "", 1)
    return [path for _, _, path in sorted(found, key=lambda item: item[:2])]


def _suggest_hint(root: object, exclude: str | None = None) -> str | None:
    """``set state_dict_key = "..."`` naming the likeliest dict of tensors, if there is one."""
    paths = [p for p in _state_dict_paths(root) if p != exclude]
    if not paths:
        return None
    others = f"; other dicts of tensors: {_quote(paths[1:])}" if len(paths) > 1 else ""
    return f'set state_dict_key = "{paths[0]}"{others}'


def _no_state_dict(obj: object, label: str, key: str) -> ConversionError:
    """Explain what was loaded instead of a dict of tensors, and what to set."""
    import torch

    hint = _suggest_hint(obj)
    if hint is not None:
        return ConversionError(
            f"{key}: {label}: the checkpoint keeps its tensors one level down, not at the top",
            hint=hint,
        )
    if isinstance(obj, torch.Tensor):
        found = "a single tensor, not a dict of named tensors"
    elif isinstance(obj, Mapping) and not obj:
        found = "an empty dict"
    elif isinstance(obj, Mapping):
        found = f"a dict with no tensors (keys: {_quote([str(k) for k in obj], shown=8)})"
    else:
        found = f"{_a(type(obj).__name__)}, not a dict of named tensors"
    return ConversionError(f"{key}: {label}: the checkpoint holds {found}", hint=_SAVE_HINT)


# ------------------------------------------------------------------------------------------------
# Tensors and output


def _check_against_index(tensors: Mapping[str, object], index: Path, key: str) -> None:
    """The shards must hold exactly the tensors the index lists: no more, no fewer."""
    listed = index_weight_map(index, key=key)
    missing = sorted(set(listed) - set(tensors))
    extra = sorted(set(tensors) - set(listed))
    if missing:
        raise ConversionError(
            f"{key}: the index lists tensors no shard holds: {_quote(missing)}",
            hint="the index and its shards come from different saves?",
        )
    if extra:
        raise ConversionError(
            f"{key}: the shards hold tensors the index does not list: {_quote(extra)}",
            hint="the index and its shards come from different saves?",
        )


def _check_storable(tensors: Mapping[str, torch.Tensor], key: str) -> None:
    """Safetensors stores dense tensors of plain dtypes only: say which tensor is not one."""
    import torch

    storable = {getattr(torch, n) for n in _STORABLE_DTYPES if hasattr(torch, n)}
    for name, tensor in sorted(tensors.items()):
        if tensor.layout != torch.strided:
            problem = f"is a {tensor.layout} tensor"
        elif tensor.is_quantized:
            problem = "is quantized"
        elif tensor.dtype not in storable:
            problem = f"has dtype {tensor.dtype}"
        else:
            continue
        raise ConversionError(
            f"{key}: tensor {name!r} {problem}, which safetensors cannot store",
            hint="convert it before saving: .to_dense(), .dequantize() or a float dtype",
        )


def _cast(
    tensors: dict[str, torch.Tensor], target: torch.dtype | None
) -> tuple[dict[str, torch.Tensor], int]:
    """Cast floating-point tensors to ``target``; integer and bool tensors are data, not weights."""
    if target is None:
        return tensors, 0
    out: dict[str, torch.Tensor] = {}
    cast = 0
    for name, tensor in tensors.items():
        if tensor.is_floating_point() and tensor.dtype != target:
            tensor = tensor.to(target)
            cast += 1
        out[name] = tensor
    return out, cast


def _unshare(tensors: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], int]:
    """Give every tensor its own contiguous storage, keeping every name.

    Tied weights (an embedding reused as the output layer) load as two names over one storage,
    and safetensors refuses to write shared or strided tensors. Dropping one name would break a
    strict ``load_state_dict``, so the later names (in sorted order, for determinism) are copied.
    """
    import torch

    seen: set[int] = set()
    out: dict[str, torch.Tensor] = {}
    copied = 0
    for name in sorted(tensors):
        tensor = tensors[name].detach()
        storage = tensor.untyped_storage()
        ptr = storage.data_ptr() if storage.nbytes() else None
        if (ptr is not None and ptr in seen) or not tensor.is_contiguous():
            tensor = tensor.clone(memory_format=torch.contiguous_format)
            copied += 1
        elif ptr is not None:
            seen.add(ptr)
        out[name] = tensor
    return out, copied


def _write(tensors: dict[str, torch.Tensor], out: Path, key: str) -> tuple[str, int, int]:
    """Write the safetensors file through a temp file beside ``out`` and an atomic rename;
    its sha256, CRC-32 and size, measured while writing (the build never reads it back).

    A failed write (disk full, no permission) is the machine's fault (BuildError).
    """
    try:
        with temp_beside(out) as tmp:
            with tmp.open("wb") as raw:
                stream = HashingWriter(raw)
                write_safetensors(tensors, stream, metadata={"format": "pt"})
            replace_into(tmp, out)
    except OSError as exc:
        raise BuildError(f"{key}: cannot write {display_path(out)}: {_first_line(exc)}") from exc
    return stream.hexdigest(), stream.crc32, stream.size


def write_safetensors(
    tensors: Mapping[str, torch.Tensor], stream: BinaryIO | HashingWriter, metadata: dict[str, str]
) -> int:
    """Serialise contiguous tensors to ``stream`` in the safetensors format; the bytes written.

    Written by hand rather than with ``safetensors.torch.save_file``, which first turns every
    tensor into a ``bytes`` copy: here each tensor's own memory (often the checkpoint's mmap)
    goes straight to the file, so converting never holds a second copy of the model. The
    layout is the library's: tensors by dtype size (largest first, so each is naturally
    aligned), then by name; a compact JSON header padded with spaces to 8 bytes. The same
    tensors always give the same bytes.
    """
    order = sorted(tensors, key=lambda n: (-tensors[n].element_size(), n))
    header: dict[str, Any] = {"__metadata__": dict(sorted(metadata.items()))}
    offset = 0
    for name in order:
        tensor = tensors[name]
        size = tensor.numel() * tensor.element_size()
        header[name] = {
            "dtype": _STORABLE_DTYPES[str(tensor.dtype).removeprefix("torch.")],
            "shape": list(tensor.shape),
            "data_offsets": [offset, offset + size],
        }
        offset += size
    raw = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    raw += b" " * (-len(raw) % _HEADER_ALIGN)
    stream.write(len(raw).to_bytes(8, "little"))
    stream.write(raw)
    for name in order:
        tensor = tensors[name]
        if tensor.numel():
            stream.write(_byte_view(tensor).numpy().data)
    return 8 + len(raw) + offset


def _byte_view(tensor: torch.Tensor) -> torch.Tensor:
    """The tensor's memory as uint8, without a copy (it is contiguous: see ``_unshare``)."""
    import torch

    flat = tensor.reshape(-1)
    return flat if flat.dtype == torch.uint8 else flat.view(torch.uint8)
