"""Terminal output: tables and findings with rich, or JSON for CI (``--json``).

Messages and findings go to stderr, results (tables, JSON) to stdout, so ``gasbuild build --json |
jq`` sees only the report.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console

    from gasbuild.check.findings import Finding
    from gasbuild.errors import GasbuildError
    from gasbuild.templates import Template

    out: Console
    err: Console

_consoles: dict[str, Any] = {}


def __getattr__(name: str) -> Any:
    """``out`` and ``err``, made at first use: importing rich costs more than a no-op build, and
    ``--json`` output or ``--help`` never needs it."""
    if name not in ("out", "err"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    if name not in _consoles:
        from rich.console import Console

        # Piped output (CI logs, `| grep`) gets a wide console so that digests and paths never
        # wrap; $COLUMNS wins (see _width).
        if name == "out":
            _consoles[name] = Console(soft_wrap=True, width=_width(sys.stdout))
        else:
            _consoles[name] = Console(
                stderr=True,
                soft_wrap=True,
                highlight=False,
                width=_width(sys.stderr),
            )
    return _consoles[name]


def _out() -> Console:
    """stdout's console (one assigned to ``ui.out``, by a test say, wins)."""
    return globals().get("out") or __getattr__("out")  # type: ignore[no-any-return]


def _err() -> Console:
    """stderr's console (one assigned to ``ui.err`` wins)."""
    return globals().get("err") or __getattr__("err")  # type: ignore[no-any-return]


def _width(stream: Any) -> int | None:
    """$COLUMNS when set; the terminal's width on a terminal; else wide, so that piped output
    (CI logs, `| grep`) never wraps a digest or a path."""
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit() and int(columns) > 0:
        return int(columns)
    return None if stream.isatty() else 250


# -1 with -q (errors and results only), 0 by default, 1+ with -v (stage details, causes).
verbosity = 0
# Set once a JSON document is on stdout, so a failure after it does not print a second one.
json_printed = False

# Below this many columns a digest is shown short (and marked so), and the stages are left out.
FULL_DIGEST_COLUMNS = 150


def set_verbosity(level: int) -> None:
    global verbosity
    verbosity = level


def info(message: str) -> None:
    """A progress or next-step line on stderr; silent with -q."""
    if verbosity >= 0:
        _err().print(message, markup=False, highlight=False, emoji=False)


def detail(message: str) -> None:
    """A line for -v only."""
    if verbosity > 0:
        _err().print(message, markup=False, highlight=False, emoji=False)


def short_digest(digest: str, keep: int = 12) -> str:
    """``788f7d7d0a1b…``: visibly shortened, so nobody copies it as the whole digest."""
    return digest if len(digest) <= keep else digest[:keep] + "…"


def wide() -> bool:
    """Whether stdout has room for full digests and the stage column."""
    return _out().width >= FULL_DIGEST_COLUMNS


# Off for a --json run (set by the CLI): its stderr may be a terminal, but CI reads it as a log.
live = True


def interactive() -> bool:
    """Spinners and bars only on a terminal (and not with -q or --json): nothing extra when
    piped."""
    return live and verbosity >= 0 and _err().is_terminal


@contextlib.contextmanager
def step(name: str) -> Iterator[None]:
    """A spinner naming a long step on a terminal (the smoke test, an export, a conversion).

    Steps nest: an inner step's name replaces the outer one's while it runs. A byte bar
    (``progress_factory``) takes the spinner's place while it runs (rich shows one live
    display at a time) and hands it back when it finishes.
    """
    if not interactive():
        yield
        return
    _steps.append(name)
    _show_step()
    try:
        yield
    finally:
        _steps.pop()
        if _steps:
            _show_step()
        else:
            _end_status()


# The names of the steps running now, innermost last; the spinner shows the last one.
_steps: list[str] = []
_status: Any = None


def _show_step() -> None:
    """The spinner with the innermost step's name (none while a bar is shown)."""
    global _status
    if _progress is not None or not _steps:
        return
    if _status is None:
        _status = _err().status(_fit(_steps[-1]), spinner="dots")
        _status.start()
    _status.update(_fit(_steps[-1]))  # drawn now, not at the next tick: a short step shows


def _fit(text: str, reserve: int = 4) -> str:
    """A live line never wraps (a wrapped spinner or bar leaves a copy of itself per refresh):
    ``text`` cut to the width less ``reserve`` columns (the spinner; a bar's other columns)."""
    room = max(_err().width - reserve, 10)
    return text if len(text) <= room else text[: room - 1] + "…"


def _end_status() -> None:
    """Stop the spinner (a progress bar replaces it: rich shows one live display at a time)."""
    global _status
    if _status is not None:
        _status.stop()
        _status = None


def print_error(error: GasbuildError) -> None:
    """One line per problem: ``error: file:line:col: message (hint)``."""
    from rich.markup import escape

    for problem in (error, *error.more):  # escaped: "gasbuild[torch]" is text, not a style tag
        _err().print(f"[bold red]error:[/] {escape(str(problem))}", highlight=False, emoji=False)


def print_warning(message: str) -> None:
    if verbosity < 0:
        return
    from rich.markup import escape

    _err().print(f"[yellow]warning:[/] {escape(message)}", highlight=False, emoji=False)


def print_findings(origin: str, findings: list[Finding]) -> None:
    for finding in findings:
        if verbosity < 0 and finding.severity != "error":
            continue
        colour = "red" if finding.severity == "error" else "yellow"
        _err().print(finding.format(origin), style=colour, markup=False, highlight=False)


def print_json(data: Any) -> None:
    global json_printed
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=False) + "\n")
    sys.stdout.flush()
    json_printed = True


def error_json(
    error: BaseException, exit_code: int, *, message: str | None = None, **extra: Any
) -> dict[str, Any]:
    """The ``--json`` document of a failure: what went wrong, its hint and the exit code."""
    from gasbuild.errors import GasbuildError

    if isinstance(error, GasbuildError):
        problems = [
            {"message": p.message, "hint": p.hint, "location": str(p.location or "") or None}
            for p in (error, *error.more)
        ]
    else:
        text = message or str(error) or type(error).__name__
        problems = [{"message": text, "hint": None, "location": None}]
    first = {"kind": type(error).__name__, "exit_code": exit_code, **problems[0]}
    return {"ok": False, "error": first, "problems": problems, **extra}


def human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"  # pragma: no cover


def table(title: str, columns: list[str], rows: list[list[str]]) -> None:
    """A table when it fits the terminal unwrapped; otherwise one record per line (cells
    separated by two spaces), so nothing is cut or folded into an unreadable column."""
    from rich.table import Table
    from rich.text import Text

    widths = [max([len(c), *(len(r[i]) for r in rows)]) for i, c in enumerate(columns)]
    if sum(widths) + 3 * (len(columns) - 1) > _out().width:
        _out().print(title, markup=False, highlight=False)
        for row in rows:
            _out().print("  ".join(cell for cell in row if cell), markup=False, highlight=False)
        return
    grid = Table(title=Text(title), title_justify="left", show_edge=False, pad_edge=False)
    for column in columns:
        grid.add_column(column, no_wrap=True)
    for row in rows:
        grid.add_row(*(Text(cell) for cell in row))  # cells are data, never markup
    _out().print(grid)


_progress: Any = None
# What a bar's line needs besides its label: the bar (at least 10), ``1023.5/1024.0 MiB``,
# ``123.4 MiB/s``, ``0:00:05`` and the spaces between (see _new_progress).
BAR_COLUMNS = 52


class Bar:
    """One progress bar: ``advance(n)`` bytes (or samples) done, ``finish()`` removes it.

    Off a terminal (or with -q) a bar does nothing: nothing extra in logs and pipes. When the
    last bar finishes, the spinner of the step still running comes back.
    """

    def __init__(self, task: Any = None) -> None:
        self._task = task

    def advance(self, n: int) -> None:
        if self._task is not None and _progress is not None:
            _progress.advance(self._task, n)

    def finish(self) -> None:
        if self._task is not None and _progress is not None:
            _progress.remove_task(self._task)
            if not _progress.tasks:
                stop_progress()
                _show_step()
        self._task = None


def progress_factory() -> Callable[[str, int | None], Bar]:
    """Progress bars on stderr for long reads and writes, one per (label, total bytes)."""

    def start(label: str, total: int | None) -> Bar:
        global _progress
        if not interactive():
            return Bar()
        _end_status()
        if _progress is None:
            _progress = _new_progress()
            _progress.start()
        task = _progress.add_task(_fit(label, BAR_COLUMNS), total=total)
        _progress.refresh()  # drawn now, not at the next tick: a short read shows
        return Bar(task)

    return start


def _new_progress() -> Any:
    """label, bar, ``512.0/1024.0 MiB``, speed, time left: the bar takes what the others
    leave of the line, so it fits 80 columns (labels are cut to fit, see ``_fit``)."""
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(bar_width=None),
        DownloadColumn(binary_units=True),  # KiB/MiB, as the tables; never "0.0 kB"
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=_err(),
        transient=True,
    )


def stop_progress() -> None:
    """Stop the bars (a command ending, or failing, mid-transfer leaves no live display)."""
    global _progress
    if _progress is not None:
        _progress.stop()
        _progress = None


def template_json(template: Template) -> dict[str, Any]:
    """A template's declaration as plain data (``gasbuild templates --json``)."""
    return {
        "name": template.name,
        "description": template.description,
        "modalities": list(template.modalities),
        "requires": list(template.requires),
        "source": "builtin" if template.builtin else str(template.directory.parent),
        "files": dict(template.files),
        "args": {
            name: {
                "type": arg.type,
                "required": arg.required,
                "default": arg.default,
                "help": arg.help,
                **({"choices": list(arg.choices)} if arg.choices else {}),
                **({"items": arg.items} if arg.items else {}),
            }
            for name, arg in template.args.items()
        },
    }


def print_template_list(templates: Sequence[Template]) -> None:
    rows = [
        [
            t.name,
            ", ".join(t.modalities),
            ", ".join(t.requires) or "torch",
            t.description + ("" if t.builtin else " (project)"),
        ]
        for t in templates
    ]
    table("templates", ["name", "modality", "needs", "description"], rows)
    _out().print("\nArguments of one template: gasbuild templates NAME", highlight=False)


def print_template(template: Template) -> None:
    from rich.markup import escape

    _out().print(f"[bold]{template.name}[/]: {escape(template.description)}", highlight=False)
    _out().print(f"modalities: {', '.join(template.modalities)}", highlight=False)
    _out().print(f"needs: {', '.join(('torch', *template.requires))}", highlight=False)
    rows = [[name, arg.describe(), arg.help] for name, arg in template.args.items()]
    table("arguments", ["name", "type", "help"], rows)
    from gasbuild.templates import example_args

    snippet = (
        f"\n[models.{template.modalities[0]}]\n"
        f'architecture = {{ template = "{template.name}", args = {example_args(template)} }}'
    )
    _out().print(snippet, markup=False, highlight=False)
