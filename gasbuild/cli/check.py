"""``gasbuild check`` and ``gasbuild explain``: the network's checks on zips, directories and
projects, and what each finding's code means."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

import click

from gasbuild.cli.options import smoke_limit_options, verbosity_options
from gasbuild.submission import FORMATS, MODALITIES


@click.command("check")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path, exists=True))
@click.option(
    "--modality",
    type=click.Choice(MODALITIES),
    help="Expected modality (default: from each model_config.yaml or the ONNX input).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    help="Expected format (default: inferred from the files).",
)
@click.option("--no-smoke", is_flag=True, help="Skip loading and running the model.")
@click.option("--deep", is_flag=True, help="Stream every weight to reject NaN/Inf.")
@click.option(
    "--smoke-batch",
    type=click.IntRange(1, 64),
    default=2,
    show_default=True,
    help="Batch size of the smoke test's dummy input.",
)
@click.option(
    "--allow-dynamic-hw",
    is_flag=True,
    help="ONNX: a dynamic input H/W is a warning (the benchmark feeds 224x224), not an error.",
)
@smoke_limit_options
@click.option("--json", "as_json", is_flag=True, help="Print findings as JSON on stdout.")
@verbosity_options
def check(
    paths: Sequence[Path],
    modality: str | None,
    fmt: str | None,
    no_smoke: bool,
    deep: bool,
    smoke_batch: int,
    allow_dynamic_hw: bool,
    smoke_memory: int | None,
    smoke_timeout: float | None,
    as_json: bool,
) -> None:
    """Check submissions as strictly as the network: zips, directories, or projects.

    No PATHS: the project (gas.toml) in the current directory. A directory holding a
    gas.toml is a project: its declared models are checked as `gasbuild build` would.

    Every finding is one line: path:line:col: CODE severity message (hint).
    `gasbuild explain CODE` prints what a code means and how to fix it.

    Exit status: 0 no errors, 1 errors found, 2 usage error.
    """
    from gasbuild import ui
    from gasbuild.check import CheckOptions
    from gasbuild.check import paths as checking

    sandboxes: list[dict[str, str]] = []  # the containment layers of each smoke test run
    opts = CheckOptions(
        modality=modality,  # type: ignore[arg-type]
        format=fmt,  # type: ignore[arg-type]
        deep=deep,
        smoke=not no_smoke,
        smoke_batch=smoke_batch,
        smoke_memory_mb=smoke_memory,
        smoke_timeout=smoke_timeout,
        allow_dynamic_hw=allow_dynamic_hw,
        on_sandbox=sandboxes.append,
    )
    import functools
    from contextlib import nullcontext

    from gasbuild._api import check_project

    # spinners and bars on a terminal, as in build; none with --json (and no import of the
    # build plan, which loads pydantic, for a check of zips)
    step = (lambda _name: nullcontext()) if as_json else ui.step
    progress = None if as_json else ui.progress_factory()
    reports = checking.check_paths(
        list(paths),
        opts,
        check_manifest=functools.partial(check_project, step=step, progress=progress),
        step=step,
    )
    errors = sum(1 for _, fs in reports for f in fs if f.severity == "error")
    warnings = sum(1 for _, fs in reports for f in fs if f.severity == "warning")
    if as_json:
        ui.print_json(
            {
                "submissions": [
                    {"path": origin, "findings": [f.to_json() for f in findings]}
                    for origin, findings in reports
                ],
                "errors": errors,
                "warnings": warnings,
                "sandbox": sandboxes,
            }
        )
    else:
        if ui.verbosity > 0:  # -v: which containment layers held
            for layers in sandboxes:
                held = ", ".join(f"{k}: {v}" for k, v in layers.items())
                ui.err.print(f"sandbox: {held}", markup=False, highlight=False)
        for origin, findings in reports:
            ui.print_findings(origin, findings)
            verdict = "FAIL" if any(f.severity == "error" for f in findings) else "ok"
            ui.err.print(f"{origin}: {verdict}", markup=False, highlight=False)
        ui.err.print(
            f"{len(reports)} submission(s) checked: {errors} error(s), {warnings} warning(s)",
            markup=False,
            highlight=False,
        )
    if errors:
        raise click.exceptions.Exit(1)


@click.command("explain")
@click.argument("code")
def explain(code: str) -> None:
    """Print what a check code (GAS304, or 304) means, why it matters and how to fix it."""
    from gasbuild.explain import explain as explain_code

    sys.stdout.write(explain_code(code))
