"""Verdicts on dotted names: what importing or reaching ``torch.jit.script`` means."""

from __future__ import annotations

from gasbuild.check.static.policy import (
    ALLOWED_TOP_LEVEL,
    BLOCKED_CALL,
    BLOCKED_IMPORT,
    BLOCKED_MEMBER,
    BLOCKED_MEMBERS,
    CALL_HINTS,
    CLASS_BUILDERS,
    DISTINCTIVE_MEMBERS,
    DOWNLOAD_HINT,
    DOWNLOADER_NAMES,
    DUNDER,
    DUNDER_HINT,
    DYNAMIC_CODE,
    FILE_WRITERS,
    FUTURE,
    GUARDED_CALLS,
    GUARDED_PREFIXES,
    NAMESPACE_ALLOWLISTS,
    NOT_SMUGGLED,
    OPEN,
    PRIVATE_ALLOWED,
    STRING_EVALUATORS,
    SUBMODULES,
    TEST_COMPONENTS,
    UNLISTED_IMPORT,
    WRITER_NAMES,
    Guard,
    Verdict,
)
from gasbuild.submission import (
    ALLOWED_IMPORTS,
    BLOCKED_IMPORTS,
)

# --------------------------------------------------------------------------- module verdicts


def module_verdict(module: str) -> Verdict | None:
    """GAS303/GAS304/GAS307 for importing ``module``; None when it is allowed."""
    if module == FUTURE:
        hint = "remove it: __future__ is not on the allow-list and the network refuses it"
        return UNLISTED_IMPORT, "error", "from __future__ import is not allowed", hint
    blocked = blocked_prefix(module)
    if blocked is not None:
        via = "" if blocked == module else f" (a child of {blocked})"
        hint = "the network refuses model.py files that import it; use only allowed modules"
        return BLOCKED_IMPORT, "error", f"import of blocked module {module!r}{via}", hint
    member = blocked_member(module)
    if member is not None:
        return member_verdict(member, module)
    if module not in ALLOWED_IMPORTS:
        message = f"import of {module!r}, which is not on the allow-list"
        return UNLISTED_IMPORT, "error", message, _UNLISTED_HINT
    return None


_UNLISTED_HINT = (
    "import only the modules `gasbuild explain GAS304` lists; an unlisted submodule of an"
    " allowed package counts as unlisted, so reach it as an attribute of the allowed import instead"
)


def blocked_prefix(module: str) -> str | None:
    """The entry of BLOCKED_IMPORTS that ``module`` is or lies under."""
    parts = module.split(".")
    for end in range(1, len(parts) + 1):
        prefix = ".".join(parts[:end])
        if prefix in BLOCKED_IMPORTS:
            return prefix
    return None


def blocked_member(dotted: str) -> str | None:
    """The blocked member that ``dotted`` is or lies under, or None.

    Blocked are: the listed members (torch.jit.script, torch.hub ...) and what lies under them;
    names of a namespace with an allow-list (torch.jit, torch.utils ...) that it does not list;
    and private (``_x``) or test components (``testing``) of an allowed package's paths.
    """
    parts = dotted.split(".")
    for end in range(2, len(parts) + 1):
        prefix = ".".join(parts[:end])
        if prefix in BLOCKED_MEMBERS:
            return prefix
        parent, name = ".".join(parts[: end - 1]), parts[end - 1]
        allowed = NAMESPACE_ALLOWLISTS.get(parent)
        if allowed is not None and name not in allowed:
            return prefix
        if parts[0] in ALLOWED_TOP_LEVEL and _is_private_or_test(name, prefix):
            return prefix
    return None


def _is_private_or_test(name: str, prefix: str) -> bool:
    if name in TEST_COMPONENTS:
        return True
    return name.startswith("_") and not is_dunder(name) and prefix not in PRIVATE_ALLOWED


def member_verdict(member: str, reached: str) -> Verdict:
    via = "" if member == reached else f" (via {reached})"
    last = member.rsplit(".", 1)[-1]
    if last.startswith("_") or last in TEST_COMPONENTS:
        kind = "test helper" if last in TEST_COMPONENTS else "private name"
        hint = "private and test helpers of allowed packages run code; use the public API"
        return BLOCKED_MEMBER, "error", f"use of the {kind} {member}{via}", hint
    hint = "it compiles, downloads, runs programs, loads native code or unpickles"
    return BLOCKED_MEMBER, "error", f"use of blocked {member}{via}", hint


def _smuggled_module(dotted: str) -> str | None:
    """A blocked module reached as an attribute of an allowed one (``pathlib.os``, ``torch.os``)."""
    parts = dotted.split(".")
    for start in range(1, len(parts)):
        if ".".join(parts[: start + 1]) in NOT_SMUGGLED:
            continue
        blocked = blocked_prefix(".".join(parts[start:]))
        if blocked is not None:
            return blocked
    return None


def chain_verdict(dotted: str) -> Verdict | None:
    """The verdict on using the resolved attribute chain ``dotted`` (e.g. ``torch.jit.script``).

    Guarded calls (torch.load, numpy.load ...) are judged where they are called, by their
    arguments; file writers are refused however they are reached.
    """
    if dotted in GUARDED_CALLS:
        return None
    if is_file_writer(dotted):
        message = f"use of {dotted}, which writes files"
        return BLOCKED_CALL, "error", message, CALL_HINTS[OPEN]
    member = blocked_member(dotted)
    if member is not None:
        return member_verdict(member, dotted)
    parts = dotted.split(".")
    if len(parts) > 1 and parts[0] in ALLOWED_TOP_LEVEL and parts[-1] in DOWNLOADER_NAMES:
        message = f"use of {dotted}, which downloads or uploads"
        return BLOCKED_MEMBER, "error", message, DOWNLOAD_HINT
    smuggled = _smuggled_module(dotted)
    if smuggled is not None:
        message = f"blocked module {smuggled!r} reached through {dotted!r}"
        return BLOCKED_MEMBER, "error", message, "a blocked module is blocked however it is reached"
    if dotted in STRING_EVALUATORS:
        message = f"use of {dotted}, which evaluates strings as code"
        return DYNAMIC_CODE, "error", message, _EVALUATOR_HINT
    if dotted in CLASS_BUILDERS:
        message = f"use of {dotted}, which builds a class at run time"
        return DYNAMIC_CODE, "error", message, "write a class statement"
    return None


def is_file_writer(dotted: str) -> bool:
    """A writer of an allowed package: listed, or named like one (``skimage.io.imsave``)."""
    if dotted in FILE_WRITERS:
        return True
    parts = dotted.split(".")
    return len(parts) > 1 and parts[0] in ALLOWED_TOP_LEVEL and parts[-1] in WRITER_NAMES


def guards_of(dotted: str) -> tuple[Guard, ...]:
    """The guarded arguments of the allowed function ``dotted`` (empty when none)."""
    if dotted in GUARDED_CALLS:
        return GUARDED_CALLS[dotted]
    for prefix, guards in GUARDED_PREFIXES.items():
        if dotted.startswith(prefix):
            return guards
    return ()


_EVALUATOR_HINT = "write annotations as real types and never resolve them at run time"


def tail_verdict(attrs: list[str]) -> Verdict | None:
    """Blocked members spotted on an object gasbuild cannot resolve (``self.t.jit.script``)."""
    for name in attrs:
        if name in DISTINCTIVE_MEMBERS:
            return member_verdict(name, ".".join(attrs))
    for member in sorted(BLOCKED_MEMBERS):
        tail = member.split(".")[1:]
        if len(tail) >= 2 and _contains_run(attrs, tail):
            return member_verdict(member, "." + ".".join(attrs))
    return None


def _contains_run(items: list[str], run: list[str]) -> bool:
    return any(items[i : i + len(run)] == run for i in range(len(items) - len(run) + 1))


def import_member_verdict(module: str, name: str) -> Verdict | None:
    """The verdict on ``from module import name`` once ``module`` itself is known to be fine."""
    dotted = f"{module}.{name}"
    if dotted in ALLOWED_IMPORTS:
        return None
    if is_dunder(name):
        return DUNDER, "error", f"import of the dunder name {name!r} from {module}", DUNDER_HINT
    verdict = chain_verdict(dotted)
    if verdict is not None and verdict[1] == "error":
        return verdict
    if name in SUBMODULES.get(module, frozenset()) or name.startswith("_"):
        message = f"import of {dotted!r}, which is not on the allow-list"
        return UNLISTED_IMPORT, "error", message, _UNLISTED_HINT
    return None


def is_dunder(name: str) -> bool:
    return len(name) > 4 and name.startswith("__") and name.endswith("__")
