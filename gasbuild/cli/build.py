"""``gasbuild build`` and ``gasbuild lock``: the full build, and the report it prints.

A no-op build is usually answered before this module is imported: ``gasbuild.cli.main`` offers
the command line to the replay (``fastpath``, standard library only). When that declines, the
build runs here, and it records its report for the next replay when it turns out to be a no-op.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from gasbuild.cli.options import checked_only, project_options, smoke_limit_options
from gasbuild.errors import GasbuildError

if TYPE_CHECKING:
    from gasbuild.cli.fastpath import Recorder


def _build_options(func: Any) -> Any:
    options = [
        click.option(
            "--only", metavar="MODALITIES", help="Comma-separated subset: image,video,audio."
        ),
        click.option(
            "--out",
            "out_dir",
            type=click.Path(path_type=Path, file_okay=False),
            help="Output directory (default: [build] out, i.e. dist/).",
        ),
        click.option(
            "--no-smoke", is_flag=True, help="Skip the smoke test (loading and running models)."
        ),
        click.option("--deep", is_flag=True, help="Also scan every weight for NaN/Inf."),
        click.option(
            "--no-cache",
            is_flag=True,
            help="Ignore cached results (new results are still recorded).",
        ),
        click.option(
            "--offline",
            is_flag=True,
            envvar="GASBUILD_OFFLINE",
            help="Use only what is cached; fail naming what is missing.",
        ),
        click.option("--json", "as_json", is_flag=True, help="Print the report as JSON on stdout."),
    ]
    for option in reversed(options):
        func = option(func)
    return project_options(smoke_limit_options(func))


def _run_build(
    directory: Path | None,
    manifest_file: Path | None,
    *,
    only: str | None,
    out_dir: Path | None,
    no_smoke: bool,
    deep: bool,
    no_cache: bool,
    offline: bool,
    as_json: bool,
    smoke_memory: int | None = None,
    smoke_timeout: float | None = None,
    locked: bool = False,
    refresh: bool = False,
    recorder: Recorder | None = None,
) -> None:
    from gasbuild import manifest, plan, ui
    from gasbuild._api import open_cache
    from gasbuild.stages.fetch import FetchOptions

    project = manifest.load(manifest.find_manifest(directory, manifest_file))
    options = plan.BuildOptions(
        only=checked_only(project, only),
        out_dir=None if out_dir is None else (Path.cwd() / out_dir),
        smoke=not no_smoke,
        deep=deep,
        smoke_memory_mb=smoke_memory,
        smoke_timeout=smoke_timeout,
        locked=locked,
        # --json: the document and errors only, no spinner or bar (CI runs it on a tty too)
        fetch=FetchOptions(
            offline=offline, refresh=refresh, progress=None if as_json else ui.progress_factory()
        ),
        step=plan.no_step if as_json else ui.step,
    )
    cache = open_cache(project, enabled=not no_cache, offline=offline)
    if recorder is not None:
        _watch_build(recorder, project, cache)
    seen: list[tuple[str, list[Any]]] = []

    def on_findings(origin: str, findings: list[Any]) -> None:
        seen.append((origin, findings))
        ui.print_findings(origin, findings)

    try:
        report = plan.build(project, cache, options, on_findings=on_findings)
    except GasbuildError as error:
        if as_json:  # the failure as JSON too, with the findings that caused it
            ui.print_json(ui.error_json(error, error.exit_code, findings=_findings_json(seen)))
        raise
    finally:
        ui.stop_progress()
    if as_json:
        ui.print_json(_report_json(report))
    else:
        _print_report(report)
    if recorder is not None:
        # A remote cache may warn (or answer) differently next time: never replayed.
        remote = project.manifest.cache.remote is not None and not offline
        recorder.noop = not remote and _was_noop(report)


def _watch_build(recorder: Recorder, project: Any, cache: Any) -> None:
    """What a no-op build reads besides the cache entries and files it stat-checks: the
    template folders (built in and the project's)."""
    from gasbuild.templates import builtin_dir

    recorder.watch(cache)
    recorder.watch_tree(builtin_dir())
    extra = project.manifest.build.templates
    if extra:
        recorder.watch_tree(project.resolve(extra))


def _was_noop(report: Any) -> bool:
    """Every stage answered by the cache, no zip written, gas.lock unchanged."""
    return not report.lock_written and all(
        not r.rebuilt and all(s.hit for s in r.stages) for r in report.results
    )


def _build_entry(directory: Path | None, manifest_file: Path | None, **flags: Any) -> None:
    """``build`` (and ``lock``), the full path: it records its report for the replay when it
    turns out to be a no-op (keyed on the command line ``_run`` is running), and otherwise
    removes any old record, so that a replay never outlives a build that changed something."""
    from gasbuild.cli import fastpath
    from gasbuild.cli.app import invoked

    command_line = invoked()
    if command_line is None or flags.get("no_cache") or flags.get("refresh"):
        fastpath.forget(directory, manifest_file)
        _run_build(directory, manifest_file, **flags)
        return
    recorder = fastpath.Recorder(directory, manifest_file, command_line)
    try:
        with recorder.capturing():
            _run_build(directory, manifest_file, recorder=recorder, **flags)
    finally:
        recorder.finish()


def _findings_json(seen: list[tuple[str, list[Any]]]) -> list[dict[str, Any]]:
    return [
        {"path": f.source or origin, **f.to_json()} for origin, findings in seen for f in findings
    ]


@click.command("build")
@_build_options
@click.option(
    "--locked", is_flag=True, help="Fail if gas.lock is missing or would change (for CI)."
)
@click.option(
    "--refresh",
    is_flag=True,
    help="Re-resolve URLs (branches, changed files) instead of trusting gas.lock.",
)
def build(directory: Path | None, manifest_file: Path | None, **flags: Any) -> None:
    """Build the submission zips declared in gas.toml, byte for byte reproducibly."""
    _build_entry(directory, manifest_file, **flags)


@click.command("lock")
@_build_options
def lock(directory: Path | None, manifest_file: Path | None, **flags: Any) -> None:
    """Re-resolve every input (URLs, branches) and rewrite gas.lock, building as needed."""
    _build_entry(directory, manifest_file, refresh=True, **flags)


def _print_report(report: Any) -> None:
    from gasbuild import ui

    for result in report.results:
        if result.format == "onnx":
            ui.print_warning(
                f"{result.zip_path.name}: the network stopped accepting new ONNX submissions in"
                ' early 2026 and may refuse it; prefer format = "safetensors"'
            )
    wide = ui.wide()
    if wide:
        columns = ["modality", "format", "zip", "size", "sha256", "status", "smoke", "stages"]
        rows = [
            [
                r.modality,
                r.format,
                _shown(r.zip_path),
                ui.human_size(r.size),
                r.sha256,
                _status(r),
                _SMOKE_SHOWN[r.smoke],
                _stages(r),
            ]
            for r in report.results
        ]
    else:  # 80 columns: a short digest marked as short, the smoke state only when missing
        columns = ["modality", "zip", "size", "sha256", "status"]
        rows = [
            [
                r.modality,
                _shown(r.zip_path),
                ui.human_size(r.size),
                ui.short_digest(r.sha256),
                _status(r) + ("" if r.smoke == "passed" else f", {_SMOKE_SHOWN[r.smoke]}"),
            ]
            for r in report.results
        ]
    ui.table("gasbuild build", columns, rows)
    if not wide:
        for r in report.results:
            ui.detail(f"{r.modality}: {_stages(r)}")
        if rows:
            ui.info("full digests: gasbuild build --json")
    _warn_untested(report.results)


def _status(result: Any) -> str:
    return "rebuilt" if result.rebuilt else "up to date"


def _stages(result: Any) -> str:
    return " ".join(f"{s.name}:{'hit' if s.hit else 'miss'}" for s in result.stages)


_SMOKE_SHOWN = {"passed": "smoke ok", "skipped": "no smoke test", "not run": "NOT SMOKE-TESTED"}


def _warn_untested(results: Sequence[Any]) -> None:
    """Zips nobody loaded and ran are said loudly, not only in a warning line above."""
    from gasbuild import ui

    untested = [r for r in results if r.smoke != "passed"]
    if not untested:
        return
    why = {r.smoke for r in untested}
    hint = (
        "torch is not installed: pip install 'gasbuild[torch]', then build again"
        if "not run" in why
        else "built with --no-smoke: build without it before pushing"
    )
    lines = [f"NOT SMOKE-TESTED: {_shown(r.zip_path)}" for r in untested]
    lines += ["  never loaded or run here, but the network will;", f"  {hint}"]
    for line in lines:
        ui.err.print(line, style="bold red", markup=False, highlight=False)


def _shown(path: Path) -> str:
    from gasbuild.errors import display_path

    return display_path(path)


def _report_json(report: Any) -> dict[str, Any]:
    return {
        "lock": str(report.lock_path),
        "lock_written": report.lock_written,
        "models": [
            {
                "modality": r.modality,
                "format": r.format,
                "zip": str(r.zip_path),
                "sha256": r.sha256,
                "size": r.size,
                "rebuilt": r.rebuilt,
                "smoke": r.smoke,
                "stages": {s.name: "hit" if s.hit else "miss" for s in r.stages},
                "findings": [f.to_json() for f in r.findings],
            }
            for r in report.results
        ],
    }
