"""``gasbuild eval`` and ``gasbuild predict``: score zips as the network's benchmark does.

``register(cli)`` adds both commands to the click group of ``gasbuild.cli``; their bodies live
here so that the CLI module stays small and cheap to import (numpy, OpenCV, Pillow and the
sandbox load only when a command runs). See docs/eval.md.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from gasbuild._api import open_cache
from gasbuild.cli.options import checked_only, maybe_project, project_options
from gasbuild.errors import UsageError, display_path
from gasbuild.submission import MODALITIES

if TYPE_CHECKING:
    from gasbuild.cache import Cache
    from gasbuild.manifest import Project

_ZIP = click.Path(path_type=Path, dir_okay=False, exists=True)
_COLUMNS = ["modality", "zip", "n", "err", "acc", "mcc", "brier", "sn34", "ms"]


def register(cli_group: click.Group) -> None:
    cli_group.add_command(eval_command, "eval")
    cli_group.add_command(predict_command, "predict")


def _run_options(func: Any) -> Any:
    func = click.option(
        "--batch-size",
        type=click.IntRange(1, 1024),
        help="Samples per forward (default: the benchmark's: image 32, video 4, audio 16).",
    )(func)
    return click.option(
        "--modality", type=click.Choice(MODALITIES), help="Override the zip's config modality."
    )(func)


@click.command("eval")
@click.argument("zip_path", required=False, type=_ZIP)
@project_options
@click.option("--data", metavar="DIR|URL", help="Labelled data (default: [eval] data).")
@click.option("--only", metavar="MODALITIES", help="Comma-separated subset: image,video,audio.")
@click.option("--compare", "compare", type=_ZIP, help="Also score this zip on the same samples.")
@click.option("--limit", type=click.IntRange(1), help="At most N samples per class folder.")
@_run_options
@click.option("--no-cache", is_flag=True, help="Score again even if this eval is cached.")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON on stdout.")
def eval_command(
    zip_path: Path | None,
    directory: Path | None,
    manifest_file: Path | None,
    data: str | None,
    only: str | None,
    compare: Path | None,
    limit: int | None,
    batch_size: int | None,
    modality: str | None,
    no_cache: bool,
    as_json: bool,
) -> None:
    """Score zips on labelled data exactly as the network's benchmark does.

    \b
    Data layout: DIR/<image|video|audio>/<real|synthetic|semisynthetic>/...
    Without ZIP, builds this project's zips (from the cache) and scores each.
    Figures: accuracy, binary MCC, Brier score and the subnet's sn34 score.
    """
    from gasbuild import ui
    from gasbuild.eval.engine import EvalOptions, EvalRequest, evaluate
    from gasbuild.eval.gate import record
    from gasbuild.eval.source import project_data_dir

    project = maybe_project(directory, manifest_file)
    cache = _cache(project, no_cache)
    data_dir = project_data_dir(project, data, cache)
    options = EvalOptions(batch_size=batch_size, limit=limit)
    zips = _zips(project, zip_path, only, compare)
    results = []
    for zip_file in zips:
        request = EvalRequest(zip_file, data_dir, modality, options)  # type: ignore[arg-type]
        try:
            result = evaluate(request, cache, progress=_progress(zip_file.name))
        finally:
            ui.stop_progress()
        if project is not None:
            record(project, result)
        results.append(result)
    if as_json:
        ui.print_json({"data": str(data_dir), "results": results})
        return
    _print_results(results)


def _cache(project: Project | None, no_cache: bool) -> Cache:
    from gasbuild.cache import Cache, default_cache_dir

    if project is not None:
        return open_cache(project, enabled=not no_cache)
    return Cache(default_cache_dir(None, Path.cwd()), enabled=not no_cache)


def _zips(
    project: Project | None, zip_path: Path | None, only: str | None, compare: Path | None
) -> list[Path]:
    """The zips to score: the one given, else the project's (built now), then ``--compare``."""
    if zip_path is not None:
        if only:
            raise UsageError("--only applies to a project's zips, not to a ZIP argument")
        chosen = [zip_path]
    elif project is None:
        raise UsageError(
            "no zip to evaluate and no gas.toml here",
            hint="pass a zip (gasbuild eval dist/image_detector.zip --data DIR) or -C PROJECT",
        )
    else:
        chosen = _build(project, only, compare)
    return chosen + ([compare] if compare is not None else [])


def _build(project: Project, only: str | None, compare: Path | None) -> list[Path]:
    from gasbuild import plan, ui
    from gasbuild.eval.engine import read_model_info
    from gasbuild.stages.fetch import FetchOptions

    subset = checked_only(project, only)
    if compare is not None and subset is None:
        subset = frozenset({read_model_info(compare).modality})
    cache = open_cache(project)
    try:
        options = plan.BuildOptions(
            only=subset, fetch=FetchOptions(progress=ui.progress_factory()), step=ui.step
        )
        report = plan.build(project, cache, options, on_findings=ui.print_findings)
    finally:
        ui.stop_progress()
    return [r.zip_path for r in report.results]


def _progress(label: str) -> Callable[[int, int], None] | None:
    """Samples per second on a terminal's stderr; nothing when piped."""
    from gasbuild import ui

    if not ui.err.is_terminal:
        return None
    bar = ui.progress_factory()
    state: dict[str, Any] = {}

    def advance(done: int, total: int) -> None:
        if "advance" not in state:
            state["advance"] = bar(f"eval {label} (samples)", total)
            state["done"] = 0
        state["advance"].advance(done - state["done"])
        state["done"] = done

    return advance


def _fmt(value: Any, digits: int = 3) -> str:
    return f"{value:.{digits}f}" if isinstance(value, int | float) else "-"


def _print_results(results: list[dict[str, Any]]) -> None:
    from gasbuild import ui

    rows = []
    for r in results:
        name = Path(str(r.get("zip", "?"))).name + (" *" if r.get("cached") else "")
        rows.append(
            [
                str(r["modality"]),
                name,
                str(r["samples"]),
                str(r["errors"]),
                _fmt(r["accuracy"]),
                _fmt(r["mcc"]),
                _fmt(r["brier"]),
                _fmt(r["sn34_score"], 4),
                _fmt(r["ms_per_sample"], 1),
            ]
        )
    ui.table("gasbuild eval", _COLUMNS, rows)
    for r in results:
        for line in r.get("skipped_files", []):
            ui.print_warning(f"{line} (skipped)")
        for error in r.get("batch_errors", []):
            ui.print_warning(f"{Path(str(r.get('zip'))).name}: a batch failed: {error}")
        classes = ", ".join(
            f"{name} {g['accuracy']:.3f} ({g['samples']})" for name, g in r["per_class"].items()
        )
        ui.err.print(f"{r['modality']}: accuracy per class: {classes}", markup=False)
    if any(r.get("cached") for r in results):
        ui.err.print("* from the cache: same zip, same data, same eval code", markup=False)


@click.command("predict")
@click.argument("zip_path", type=_ZIP)
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path, exists=True))
@_run_options
@click.option("--json", "as_json", is_flag=True, help="Print the predictions as JSON on stdout.")
def predict_command(
    zip_path: Path,
    paths: Sequence[Path],
    batch_size: int | None,
    modality: str | None,
    as_json: bool,
) -> None:
    """Print P(AI-generated) for each file (a folder: its media; video: frame folders too)."""
    from gasbuild import ui
    from gasbuild.eval.engine import EvalOptions, predict_files, read_model_info

    info = read_model_info(zip_path, modality)
    files = _expand(list(paths), info.modality)
    if not files:
        raise UsageError(
            f"no {info.modality} file among the paths given",
            hint=f"give {info.modality} files, or folders holding them (`gasbuild predict --help`)",
        )
    _, output = predict_files(zip_path, files, info.modality, EvalOptions(batch_size=batch_size))
    rows = _prediction_rows(output)
    if as_json:
        ui.print_json({"zip": display_path(zip_path), "modality": info.modality, "files": rows})
        return
    ui.table(
        f"gasbuild predict ({info.modality})",
        ["file", "P(AI)", "verdict"],
        [[r["file"], _fmt(r["p_ai"], 4), r["verdict"]] for r in rows],
    )


def _expand(paths: list[Path], modality: str) -> list[Path]:
    from gasbuild.eval.data import _is_frame_folder
    from gasbuild.eval.media import EXTENSIONS

    found: list[Path] = []
    for path in paths:
        if path.is_file():
            found.append(path)
            continue
        entries = sorted(p for p in path.iterdir() if not p.name.startswith("."))
        if modality == "video" and _is_frame_folder(entries):
            found.append(path)
            continue
        found.extend(_expand(entries, modality) if entries else [])
    return [p for p in found if p.is_dir() or p.suffix.lower() in EXTENSIONS[modality]]


def _prediction_rows(output: Any) -> list[dict[str, Any]]:
    rows = []
    for item in output.scored:
        p = item.prediction
        rows.append(
            {
                "file": display_path(item.sample.path),
                "p_ai": p.p_ai if p else None,
                "probs": list(p.probs) if p else None,
                "verdict": ("AI" if p.predicted else "real") if p else f"error: {item.error}",
            }
        )
    for sample, why in output.skipped:
        rows.append(
            {
                "file": display_path(sample.path),
                "p_ai": None,
                "probs": None,
                "verdict": f"skipped: {why}",
            }
        )
    return rows
