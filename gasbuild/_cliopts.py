"""Options shared by gasbuild's commands (kept apart so that command modules need not import
each other: nothing imports ``cli``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click


def project_options(func: Any) -> Any:
    """``-C DIR`` and ``-f FILE``: which gas.toml a command works on."""
    func = click.option(
        "-f",
        "--file",
        "manifest_file",
        type=click.Path(path_type=Path, dir_okay=False),
        help="Manifest to use (default: gas.toml in DIR).",
    )(func)
    return click.option(
        "-C",
        "--directory",
        type=click.Path(path_type=Path, file_okay=False),
        help="Run as if started in DIR.",
    )(func)
