"""The command line's entry points: ``gasbuild`` (and ``python -m gasbuild``) and ``gascli``.

Kept tiny on purpose. :func:`main` first offers the command line to the no-op replay
(``fastpath``: the standard library and a small record, no click, no pydantic), and imports
click and the command group (``app``) only when the replay declines; the group in turn imports
a command's module only when that command runs (``lazy``). Every error a user can cause ends as
one line on stderr and exit code 2 (see ``app._run`` and ``gasbuild.errors``).

The click layer's names (``cli``, ``gascli``, ``_run``, ...) are still reachable here: they are
imported on first access (PEP 562), so ``from gasbuild.cli import cli`` keeps working.
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (a few ms of start-up)
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any

    from gasbuild.cli.app import _run, cli, discriminator, gascli
    from gasbuild.cli.build import _print_report

# name -> module that defines it (imported on first attribute access)
_NAMES = {
    "cli": "gasbuild.cli.app",
    "gascli": "gasbuild.cli.app",
    "discriminator": "gasbuild.cli.app",
    "_run": "gasbuild.cli.app",
    "_print_report": "gasbuild.cli.build",
}

__all__ = ["_print_report", "_run", "cli", "discriminator", "gascli", "gascli_main", "main"]


def main(args: Sequence[str] | None = None, prog_name: str = "gasbuild") -> None:
    """Entry point of the ``gasbuild`` script (and ``python -m gasbuild``)."""
    argv = list(sys.argv[1:] if args is None else args)
    if "build" in argv:  # the only command the replay may answer
        from gasbuild.cli import fastpath

        if fastpath.replay_argv(prog_name, argv):
            sys.exit(0)
    from gasbuild.cli.app import _run, cli

    sys.exit(_run(cli, argv, prog_name))


def gascli_main(args: Sequence[str] | None = None) -> None:
    """Entry point of the ``gascli`` script."""
    from gasbuild.cli.app import _run, gascli

    sys.exit(_run(gascli, args, "gascli"))


def __getattr__(name: str) -> Any:
    module = _NAMES.get(name)
    if module is None:
        raise AttributeError(f"module 'gasbuild.cli' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value
