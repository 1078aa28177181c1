"""Guarded calls: the one argument that decides whether a call unpickles, writes or downloads.

A guarded argument is judged from the call as written. Only a literal known to be safe is safe:
another literal is the dangerous value it spells, an expression (``mode=m``) may be anything and
so is taken as dangerous, and ``*args``/``**kwargs`` that could carry it (``**{"allow_pickle":
True}``) hide it, so the call is judged as if the dangerous value were given. An argument passed
explicitly with a safe literal cannot be overridden by a spread (Python refuses a keyword given
twice), so ``timm.create_model(name, pretrained=False, **kwargs)`` stays safe.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import Literal

from gasbuild.check.findings import Severity
from gasbuild.check.static.policy import (
    BLOCKED_CALL,
    BLOCKED_MEMBER,
    CALL_HINTS,
    DOWNLOAD_HINT,
    OPEN,
    PICKLE_HINT,
    READ_MODE,
    Guard,
    Verdict,
)

StateKind = Literal["safe", "literal", "expression", "spread", "absent"]


@dataclass(frozen=True)
class ArgumentState:
    """What a call says about one guarded argument."""

    kind: StateKind
    node: ast.expr | None = None  # the argument, when it is given
    spread: str = ""  # "*args" or "**kwargs", when a spread may carry it


def argument_state(call: ast.Call, guard: Guard, position: int | None = None) -> ArgumentState:
    """Judge ``guard``'s argument in ``call`` (``position`` overrides the guard's own index)."""
    index = guard.position if position is None else position
    for keyword in call.keywords:
        if keyword.arg == guard.keyword:
            return _judge(keyword.value, guard)
    if index is not None:
        for at, arg in enumerate(call.args):
            if isinstance(arg, ast.Starred):
                return ArgumentState("spread", spread="*args")
            if at == index:
                return _judge(arg, guard)
    if any(keyword.arg is None for keyword in call.keywords):
        return ArgumentState("spread", spread="**kwargs")
    return ArgumentState("absent")


def _judge(value: ast.expr, guard: Guard) -> ArgumentState:
    if not isinstance(value, ast.Constant):
        return ArgumentState("expression", value)
    return ArgumentState("safe" if is_safe_literal(value.value, guard) else "literal", value)


def is_safe_literal(value: object, guard: Guard) -> bool:
    """Whether the literal ``value`` is one ``guard`` knows to be safe (``True`` is not ``1``)."""
    if guard.safe == READ_MODE:
        return isinstance(value, str) and bool(value) and set(value) <= _READ_LETTERS
    return any(type(value) is type(safe) and value == safe for safe in guard.safe)


def guard_verdict(label: str, guard: Guard, state: ArgumentState) -> Verdict | None:
    """The finding for a guarded argument in a call of ``label``; None when it is safe."""
    if state.kind == "safe" or (state.kind == "absent" and guard.absent == "safe"):
        return None
    code = BLOCKED_CALL if guard.danger == "write" else BLOCKED_MEMBER
    hint = _HINTS[guard.danger]
    safe = _safe_text(guard)
    if state.kind == "absent":
        severity: Severity = "warning" if guard.absent == "warning" else "error"
        default = "" if guard.absent == "warning" else f" (its default {guard.danger}s)"
        return code, severity, f"{label} without {guard.keyword}={safe}{default}", hint
    if state.kind == "literal" and isinstance(state.node, ast.Constant):
        message = f"{label} with {guard.keyword}={state.node.value!r}, which {_VERBS[guard.danger]}"
    elif state.kind == "expression":
        message = (
            f"{label} with {guard.keyword} set by an expression: only the literal {safe} is "
            f"known not to {_INFINITIVES[guard.danger]}"
        )
    else:
        message = (
            f"{label} with {state.spread}, which may set {guard.keyword}: the call is judged "
            f"as if it did ({_VERBS[guard.danger]})"
        )
    return code, "error", message, hint


_READ_LETTERS = frozenset("rbt")


def _safe_text(guard: Guard) -> str:
    if guard.safe == READ_MODE:
        return "'r'"
    return repr(guard.safe[0])


_VERBS: dict[str, str] = {
    "unpickle": "unpickles arbitrary objects",
    "write": "writes files",
    "download": "downloads at load time",
    "remote code": "runs code downloaded at load time",
}
_INFINITIVES: dict[str, str] = {
    "unpickle": "unpickle",
    "write": "write files",
    "download": "download",
    "remote code": "run remote code",
}
_HINTS: dict[str, str] = {
    "unpickle": PICKLE_HINT,
    "write": CALL_HINTS[OPEN],
    "download": DOWNLOAD_HINT,
    "remote code": DOWNLOAD_HINT,
}
