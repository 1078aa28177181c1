"""Terminal output: tables and findings with rich, or JSON for CI (``--json``).

Messages and findings go to stderr, results (tables, JSON) to stdout, so ``gasbuild build --json |
jq`` sees only the report.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
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
        # wrap; the width is decided when the console is made, as before.
        if name == "out":
            _consoles[name] = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 250)
        else:
            _consoles[name] = Console(
                stderr=True,
                soft_wrap=True,
                highlight=False,
                width=None if sys.stderr.isatty() else 250,
            )
    return _consoles[name]


def _out() -> Console:
    return __getattr__("out")  # type: ignore[no-any-return]


def _err() -> Console:
    return __getattr__("err")  # type: ignore[no-any-return]


def print_error(error: GasbuildError) -> None:
    """One line per problem: ``error: file:line:col: message (hint)``."""
    from rich.markup import escape

    for problem in (error, *error.more):  # escaped: "gasbuild[torch]" is text, not a style tag
        _err().print(f"[bold red]error:[/] {escape(str(problem))}", highlight=False, emoji=False)


def print_warning(message: str) -> None:
    from rich.markup import escape

    _err().print(f"[yellow]warning:[/] {escape(message)}", highlight=False, emoji=False)


def print_findings(origin: str, findings: list[Finding]) -> None:
    for finding in findings:
        colour = "red" if finding.severity == "error" else "yellow"
        _err().print(finding.format(origin), style=colour, markup=False, highlight=False)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=False) + "\n")


def human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"  # pragma: no cover


def table(title: str, columns: list[str], rows: list[list[str]]) -> None:
    from rich.table import Table
    from rich.text import Text

    grid = Table(title=Text(title), title_justify="left", show_edge=False, pad_edge=False)
    for column in columns:
        grid.add_column(column, no_wrap=column in ("sha256", "zip"), overflow="fold")
    for row in rows:
        grid.add_row(*(Text(cell) for cell in row))  # cells are data, never markup
    _out().print(grid)


_progress: Any = None


def progress_factory() -> Callable[[str, int | None], Callable[[int], None]]:
    """Progress bars on stderr for long transfers; ``advance(-1)`` finishes a bar."""

    def start(label: str, total: int | None) -> Callable[[int], None]:
        global _progress
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        if _progress is None:
            _progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                DownloadColumn(),
                TransferSpeedColumn(),
                TimeRemainingColumn(),
                console=_err(),
                transient=True,
            )
            _progress.start()
        task = _progress.add_task(label, total=total)

        def advance(n: int) -> None:
            if n < 0:
                _progress.remove_task(task)
            else:
                _progress.advance(task, n)

        return advance

    return start


def stop_progress() -> None:
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
