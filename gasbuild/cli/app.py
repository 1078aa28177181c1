"""The click groups (``gasbuild``, ``gascli``) and the error policy every command runs under.

The groups are :class:`~gasbuild.cli.lazy.LazyGroup`: each command lives in a module of its own
(``build``, ``check``, ``project``, ``cache``, ``push``, ``eval``) and is imported only when it
runs or its ``--help`` is asked, so ``gasbuild --help`` and shell completion load click and this
module alone. ``COMMANDS`` holds each command's loader and short help; a test compares it with
the real commands.
"""

from __future__ import annotations

import contextvars
import importlib
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import click

from gasbuild._version import __version__
from gasbuild.cli.lazy import Lazy, LazyGroup

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}

# The program name and argv of the command line being run (``_run``): the no-op record of a
# build is keyed on them, since ``gasbuild.cli.main`` matches argv before click parses it.
_INVOKED: contextvars.ContextVar[tuple[str, tuple[str, ...]] | None] = contextvars.ContextVar(
    "gasbuild_invoked", default=None
)


def invoked() -> tuple[str, tuple[str, ...]] | None:
    """``(prog_name, argv)`` of the command line ``_run`` is running (None outside one)."""
    return _INVOKED.get()


def _attribute(module: str, name: str) -> Callable[[], click.Command]:
    """A loader of a command defined at a module's top level."""

    def load() -> click.Command:
        command = getattr(importlib.import_module(module), name)
        assert isinstance(command, click.Command)
        return command

    return load


def _push_command(name: str, group: str = "gasbuild") -> Callable[[], click.Command]:
    """A loader of a command that ``gasbuild.cli.push.register`` adds to ``group``."""

    def load() -> click.Command:
        from gasbuild.cli import push

        groups = {"gasbuild": click.Group("gasbuild"), "discriminator": click.Group("d")}
        push.register(groups["gasbuild"], groups["discriminator"])
        return groups[group].commands[name]

    return load


# name -> (loader, short help: the first paragraph of the command's docstring)
COMMANDS: dict[str, Lazy] = {
    "build": (
        _attribute("gasbuild.cli.build", "build"),
        "Build the submission zips declared in gas.toml, byte for byte reproducibly.",
    ),
    "lock": (
        _attribute("gasbuild.cli.build", "lock"),
        "Re-resolve every input (URLs, branches) and rewrite gas.lock, building as needed.",
    ),
    "check": (
        _attribute("gasbuild.cli.check", "check"),
        "Check submissions as strictly as the network: zips, directories, or projects.",
    ),
    "explain": (
        _attribute("gasbuild.cli.check", "explain"),
        "Print what a check code (GAS304, or 304) means, why it matters and how to fix it.",
    ),
    "init": (
        _attribute("gasbuild.cli.project", "init"),
        "Write a commented gas.toml (and a starter model.py per modality, unless --template).",
    ),
    "templates": (
        _attribute("gasbuild.cli.project", "templates"),
        "List the architecture templates, or show one template's arguments.",
    ),
    "schema": (
        _attribute("gasbuild.cli.project", "schema"),
        "Print the JSON Schema of gas.toml (editors can validate against it).",
    ),
    "cache": (
        _attribute("gasbuild.cli.cache", "cache_group"),
        "Inspect and trim the local cache: the [cache] dir of the gas.toml here (or -C DIR),"
        " else $GASBUILD_CACHE_DIR or the user cache dir.",
    ),
    "push": (
        _push_command("push"),
        "Build (from the cache) and push the zips to GAS, then commit them on chain.",
    ),
    "burn": (
        _push_command("burn"),
        "Burn for a further counted submission on a hotkey, and push with the receipt.",
    ),
    "status": (
        _push_command("status"),
        "Per modality: the local zip's digest, its push receipt, and the chain's commitment.",
    ),
    "eval": (
        _attribute("gasbuild.cli.eval", "eval_command"),
        "Score zips on labelled data exactly as the network's benchmark does.",
    ),
    "predict": (
        _attribute("gasbuild.cli.eval", "predict_command"),
        "Print P(AI-generated) for each file (a folder: its media; video: frame folders too).",
    ),
}

DISCRIMINATOR_COMMANDS: dict[str, Lazy] = {
    "push": (
        _push_command("push", "discriminator"),
        "Push detector zips (BitMind's flags), with gasbuild's checks and resumable receipts.",
    ),
}


@click.group(cls=LazyGroup, lazy=COMMANDS, context_settings=CONTEXT)
@click.version_option(__version__, "-V", "--version", prog_name="gasbuild")
@click.option("-v", "--verbose", count=True, help="More detail: stages, causes of errors.")
@click.option("-q", "--quiet", is_flag=True, help="Only errors and results (no warnings).")
def cli(verbose: int, quiet: bool) -> None:
    """Build, check and push GAS (subnet 34) discriminator submissions from one gas.toml.

    \b
    Typical use:
      gasbuild init --modality image  a commented gas.toml, a starter model.py
      gasbuild build                  build dist/<modality>_detector.zip
      gasbuild check                  check the project here (or zips, folders)
      gasbuild explain GAS304         what a check code means, how to fix it

    \b
    Shell completion (bash; zsh and fish alike), in ~/.bashrc:
      eval "$(_GASBUILD_COMPLETE=bash_source gasbuild)"
    """
    _set_verbosity(verbose, quiet)


def _set_verbosity(verbose: int, quiet: bool) -> None:
    from gasbuild.errors import UsageError

    if verbose and quiet:
        raise UsageError("-v and -q contradict each other", hint="pass one of them")
    from gasbuild import ui

    ui.set_verbosity(-1 if quiet else verbose)


# --------------------------------------------------------------------------------------------
# gascli: BitMind's command names, kept working on top of gasbuild.


@click.group(context_settings=CONTEXT)
@click.version_option(__version__, "-V", "--version", prog_name="gascli (gasbuild)")
def gascli() -> None:
    """BitMind's `gascli`, provided by gasbuild for compatibility."""


@gascli.group("discriminator", cls=LazyGroup, lazy=DISCRIMINATOR_COMMANDS, context_settings=CONTEXT)
def discriminator() -> None:
    """Discriminator (miner) commands."""


gascli.add_command(discriminator, "d")


@contextmanager
def _invoking(prog_name: str, argv: Sequence[str]) -> Iterator[None]:
    token = _INVOKED.set((prog_name, tuple(argv)))
    try:
        yield
    finally:
        _INVOKED.reset(token)


def _run(group: click.Group, args: Sequence[str] | None, prog_name: str) -> int:
    """Run a click group with gasbuild's error policy; return the exit code.

    With ``--json`` stdout always holds one JSON document: a failure that printed none yet
    prints ``{"ok": false, "error": {...}}`` (the one-line error still goes to stderr).
    """
    argv = list(sys.argv[1:] if args is None else args)
    as_json = "--json" in argv[: argv.index("--")] if "--" in argv else "--json" in argv
    if "gasbuild.ui" in sys.modules:  # not imported for --help: nothing to reset then
        from gasbuild import ui

        ui.json_printed = False  # per run: an earlier run in this process printed its own
    if not as_json:
        return _run_guarded(group, argv, prog_name, as_json)
    from gasbuild import ui

    ui.live = False  # no spinner or bar in any command's --json run
    try:
        return _run_guarded(group, argv, prog_name, as_json)
    finally:
        ui.live = True


def _run_guarded(group: click.Group, argv: list[str], prog_name: str, as_json: bool) -> int:
    """``_run``'s error policy around the command."""
    try:
        _require_utf8(argv)
        # Without standalone mode click *returns* the code of an Exit instead of raising it.
        with _invoking(prog_name, argv):
            code = group.main(args=argv, prog_name=prog_name, standalone_mode=False)
    except click.exceptions.Exit as done:
        return done.exit_code
    except click.ClickException as error:
        error.show()
        # every click error is a usage error: wrong flag, bad value, missing file
        return _failed(as_json, error, 2)
    except click.Abort as error:
        if isinstance(error.__cause__ or error.__context__, KeyboardInterrupt):
            # click turns a Ctrl-C in a command into Abort: it was interrupted, not declined
            click.echo("interrupted", err=True)
            return _failed(as_json, error, 130, "interrupted")
        # Ctrl-D at a prompt: nothing was done (exit 130); a "no" is exit 1 (PushDeclined)
        click.echo("aborted: nothing was done", err=True)
        return _failed(as_json, error, 130, "aborted: nothing was done")
    except KeyboardInterrupt as error:
        click.echo("interrupted", err=True)
        return _failed(as_json, error, 130, "interrupted")
    except Exception as error:
        # gasbuild's own errors, imported only once one happened (--help needs none of them)
        from gasbuild.errors import GasbuildError

        if not isinstance(error, GasbuildError):
            raise
        from gasbuild import ui

        ui.print_error(error)
        _verbose_causes(error)
        return _failed(as_json, error, error.exit_code)
    return code if isinstance(code, int) else 0


def _require_utf8(argv: Sequence[str]) -> None:
    """Refuse an argument that is not valid UTF-8 (a Linux file name in another encoding
    arrives as surrogate escapes): paths end up in JSON records, gas.lock and lock names, which
    are UTF-8, so it would fail later with a traceback instead of now with a line."""
    for arg in argv:
        try:
            arg.encode("utf-8")
        except UnicodeEncodeError:
            from gasbuild.errors import UsageError

            raise UsageError(
                f"argument {arg.encode('utf-8', 'surrogateescape')!r} is not valid UTF-8",
                hint="rename the file or folder, or pass a path that is valid UTF-8",
            ) from None


def _failed(as_json: bool, error: BaseException, code: int, message: str | None = None) -> int:
    from gasbuild import ui

    if as_json and not ui.json_printed:
        if isinstance(error, click.ClickException):
            message = error.format_message()
        ui.print_json(ui.error_json(error, code, message=message))
    return code


def _verbose_causes(error: BaseException) -> None:
    """With -v, the chain of causes behind a one-line error (never a traceback)."""
    from gasbuild import ui

    cause = error.__cause__ or error.__context__
    for _ in range(8):
        if cause is None:
            return
        ui.detail(f"  caused by {type(cause).__name__}: {cause}")
        cause = cause.__cause__ or cause.__context__
