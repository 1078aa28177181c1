"""Constant-string folding: names spelled from pieces (``"o" + "s"``, ``"".join``, ``chr``)."""

from __future__ import annotations

import ast
import re
from typing import Final

from gasbuild.check.static.policy import BLOCKED_WORDS, MODE_LETTERS, STRING_BUILTINS, WRITE_MODE
from gasbuild.check.static.verdicts import blocked_member, blocked_prefix, is_dunder
from gasbuild.submission import (
    BLOCKED_IMPORTS,
)

# Folded strings longer than this are not names; stop folding rather than build big strings.
_MAX_FOLD = 256
FORMAT_DUNDER = re.compile(r"[.\[]\s*__\w+__")
_SIMPLE_FORMAT = re.compile(r"(?:[^{}]|\{\{|\}\}|\{\d*\})*")
_SIMPLE_PERCENT = re.compile(r"(?:[^%]|%%|%s)*")

_STR_METHODS: Final = frozenset(
    {"lower", "upper", "strip", "lstrip", "rstrip", "casefold", "title", "capitalize", "swapcase"}
)


def suspicious_string(value: str, *, built: bool) -> str | None:
    """What a string names that model.py must not reach, or None.

    A plain literal is flagged only when it spells a dunder or a blocked builtin: every way of
    looking a name up at run time (getattr, ``__dict__``, vars, importlib) is blocked on its own,
    so a plain word such as a buffer named ``"signal"`` or ``mode="trace"`` reaches nothing, and
    flagging it would refuse honest models. Strings *built* from pieces are obfuscation and are
    held to every blocked name, dotted paths included.
    """
    if value in STRING_BUILTINS:
        return "a blocked builtin"
    if is_dunder(value):
        return "a dunder"
    if not built:
        return None
    if value in BLOCKED_IMPORTS:
        return "a blocked module"
    if value in BLOCKED_WORDS or (blocked_member(value) is not None and "." in value):
        return "a blocked member"
    if built and "." in value and blocked_prefix(value) is not None:
        return "a blocked module"
    if built and FORMAT_DUNDER.search(value):
        return "a dunder"
    return None


def fold_string(node: ast.AST, folds: dict[int, str]) -> str | None:
    """The value of a string expression made only of constants, from its children's values."""
    value: str | None = None
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        value = node.value
    elif isinstance(node, ast.BinOp):
        value = _fold_binop(node, folds)
    elif isinstance(node, ast.JoinedStr):
        parts = [folds.get(id(v)) for v in node.values]
        value = None if None in parts else "".join(p for p in parts if p is not None)
    elif isinstance(node, ast.FormattedValue):
        plain = node.conversion == -1 and node.format_spec is None
        value = folds.get(id(node.value)) if plain else None
    elif isinstance(node, ast.Call):
        value = _fold_call(node, folds)
    elif isinstance(node, ast.Subscript):
        value = _fold_slice(node, folds)
    return value if value is not None and len(value) <= _MAX_FOLD else None


def _fold_binop(node: ast.BinOp, folds: dict[int, str]) -> str | None:
    left, right = folds.get(id(node.left)), folds.get(id(node.right))
    if isinstance(node.op, ast.Add) and left is not None and right is not None:
        return left + right
    if isinstance(node.op, ast.Mod) and left is not None and _SIMPLE_PERCENT.fullmatch(left):
        return _fold_percent(left, node.right, folds)
    if isinstance(node.op, ast.Mult):
        text, count = (left, node.right) if left is not None else (right, node.left)
        times = count.value if isinstance(count, ast.Constant) else None
        if text is not None and isinstance(times, int) and 0 <= times * len(text) <= _MAX_FOLD:
            return text * times
    return None


def _fold_percent(template: str, right: ast.expr, folds: dict[int, str]) -> str | None:
    items = right.elts if isinstance(right, ast.Tuple) else [right]
    pieces = [folds.get(id(item)) for item in items]
    if None in pieces:
        return None
    try:
        return template % tuple(pieces)
    except (TypeError, ValueError):
        return None


def _fold_call(node: ast.Call, folds: dict[int, str]) -> str | None:
    func, args = node.func, node.args
    if node.keywords:
        return None
    if isinstance(func, ast.Name) and func.id == "chr" and len(args) == 1:
        code = args[0].value if isinstance(args[0], ast.Constant) else None
        return chr(code) if isinstance(code, int) and 0 <= code < 0x110000 else None
    if isinstance(func, ast.Name) and func.id == "str" and len(args) == 1:
        return folds.get(id(args[0]))
    if _is_bytes_decode(node):
        assert isinstance(func, ast.Attribute) and isinstance(func.value, ast.Constant)
        raw = func.value.value
        return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else None
    if not isinstance(func, ast.Attribute) or id(func.value) not in folds:
        return None
    base = folds[id(func.value)]
    if func.attr == "join" and len(args) == 1:
        parts = _fold_pieces(args[0], folds)
        return None if parts is None else base.join(parts)
    if func.attr == "format" and _SIMPLE_FORMAT.fullmatch(base):
        pieces = [folds.get(id(a)) for a in args]
        if None not in pieces and not any(isinstance(a, ast.Starred) for a in args):
            return _try_format(base, [p for p in pieces if p is not None])
    if func.attr in _STR_METHODS and not args:
        result: str = getattr(base, func.attr)()
        return result
    if func.attr == "replace" and len(args) == 2:
        old, new = folds.get(id(args[0])), folds.get(id(args[1]))
        if old and new is not None and len(base) * max(len(new), 1) <= _MAX_FOLD:
            return base.replace(old, new)
    return None


def is_write_mode(mode: str) -> bool:
    """A file mode string (``"w"``, ``"ab"``, ``"r+"``) that writes; file names never match."""
    return 0 < len(mode) <= 3 and set(mode) <= MODE_LETTERS and bool(set(mode) & WRITE_MODE)


def _is_bytes_decode(node: ast.Call) -> bool:
    func = node.func
    return (
        isinstance(func, ast.Attribute)
        and func.attr == "decode"
        and isinstance(func.value, ast.Constant)
        and isinstance(func.value.value, bytes)
        and len(node.args) <= 1
    )


def _fold_pieces(node: ast.expr, folds: dict[int, str]) -> list[str] | None:
    """The strings of ``["a", "b"]`` or ``map(chr, [111, 115])``, for ``"".join(...)``."""
    if isinstance(node, ast.List | ast.Tuple):
        parts = [folds.get(id(e)) for e in node.elts]
        return None if None in parts else [p for p in parts if p is not None]
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)):
        return None
    if node.func.id != "map" or len(node.args) != 2:
        return None
    mapper, items = node.args
    if not (isinstance(mapper, ast.Name) and mapper.id == "chr"):
        return None
    if not isinstance(items, ast.List | ast.Tuple):
        return None
    codes = [e.value if isinstance(e, ast.Constant) else None for e in items.elts]
    if not all(type(c) is int and 0 <= c < 0x110000 for c in codes):
        return None
    return [chr(c) for c in codes if isinstance(c, int)]


# Only plain ``{}``/``{0}`` fields and ``%s``: format specs could build huge strings.


def _try_format(template: str, pieces: list[str]) -> str | None:
    try:
        return template.format(*pieces)
    except (IndexError, KeyError, ValueError):
        return None


def _fold_slice(node: ast.Subscript, folds: dict[int, str]) -> str | None:
    base = folds.get(id(node.value))
    index = node.slice
    if base is None:
        return None
    if isinstance(index, ast.Slice):
        bounds = [_int_or_none(part) for part in (index.lower, index.upper, index.step)]
        if any(b is False for b in bounds) or bounds[2] == 0:
            return None
        return base[slice(*bounds)]
    value = _int_or_none(index)
    if type(value) is int and -len(base) <= value < len(base):
        return base[value]
    return None


def _int_or_none(node: ast.expr | None) -> int | bool | None:
    """An int constant, None for an absent part, False for anything else."""
    if node is None:
        return None
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        inner = _int_or_none(node.operand)
        return -inner if isinstance(inner, int) and not isinstance(inner, bool) else False
    if isinstance(node, ast.Constant) and type(node.value) is int:
        return node.value
    return False
