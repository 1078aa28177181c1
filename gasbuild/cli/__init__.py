"""The command line: ``gasbuild`` (init, build, check, schema) and the ``gascli`` alias.

Commands import their stages inside the function body, so ``gasbuild --help`` loads click and
little else; torch, onnx and bittensor are only ever imported by the stages that need them.
Every error a user can cause ends as one line on stderr and exit code 2 (see ``errors``).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from gasbuild import __version__
from gasbuild._api import open_cache
from gasbuild.cli import eval as _cli_eval
from gasbuild.cli import fastpath as _fastpath
from gasbuild.cli import push as _cli_push
from gasbuild.cli.options import (
    checked_only,
    maybe_project,
    project_options,
    smoke_limit_options,
    verbosity_options,
)
from gasbuild.errors import GasbuildError, UsageError
from gasbuild.submission import FORMATS, MODALITIES

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


_project_options = project_options


@click.group(context_settings=CONTEXT)
@click.version_option(__version__, "-V", "--version", prog_name="gasbuild")
@click.option("-v", "--verbose", count=True, help="More detail: stages, causes of errors.")
@click.option("-q", "--quiet", is_flag=True, help="Only errors and results (no warnings).")
def cli(verbose: int, quiet: bool) -> None:
    """Build, check and push GAS (subnet 34) discriminator submissions from one gas.toml.

    \b
    Typical use:
      gasbuild init --modality image   write a commented gas.toml and a starter model.py
      gasbuild build                   fetch, validate and package dist/<modality>_detector.zip
      gasbuild check                   check the project here (or zips, directories)
      gasbuild explain GAS304          what a check code means and how to fix it

    \b
    Shell completion (bash; zsh and fish alike):
      eval "$(_GASBUILD_COMPLETE=bash_source gasbuild)"   in ~/.bashrc
    """
    _set_verbosity(verbose, quiet)


def _set_verbosity(verbose: int, quiet: bool) -> None:
    if verbose and quiet:
        raise UsageError("-v and -q contradict each other", hint="pass one of them")
    from gasbuild import ui

    ui.set_verbosity(-1 if quiet else verbose)


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
    return _project_options(smoke_limit_options(func))


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
    recorder: _fastpath.Recorder | None = None,
) -> None:
    from gasbuild import manifest, plan, ui
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


def _watch_build(recorder: _fastpath.Recorder, project: Any, cache: Any) -> None:
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
    """``build`` (and ``lock``): replay the last no-op build's report when nothing it read has
    changed (``_fastpath``, standard library only); else the full build, which records the
    report when it turns out to be a no-op and otherwise removes any old record."""
    replayable = not flags.get("no_cache") and not flags.get("refresh")
    if replayable and _fastpath.replay(directory, manifest_file, flags):
        return
    if not replayable:
        _fastpath.forget(directory, manifest_file)
        _run_build(directory, manifest_file, **flags)
        return
    recorder = _fastpath.Recorder(directory, manifest_file, flags)
    try:
        with recorder.capturing():
            _run_build(directory, manifest_file, recorder=recorder, **flags)
    finally:
        recorder.finish()


def _findings_json(seen: list[tuple[str, list[Any]]]) -> list[dict[str, Any]]:
    return [
        {"path": f.source or origin, **f.to_json()} for origin, findings in seen for f in findings
    ]


@cli.command()
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


@cli.command()
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


@cli.command()
@click.option(
    "--check",
    "check_file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Exit 1 if FILE differs from the current schema instead of printing it.",
)
def schema(check_file: Path | None) -> None:
    """Print the JSON Schema of gas.toml (editors can validate against it)."""
    from gasbuild.manifest import json_schema

    text = json.dumps(json_schema(), indent=2) + "\n"
    if check_file is None:
        sys.stdout.write(text)
        return
    if not check_file.exists() or check_file.read_text("utf-8") != text:
        raise GasbuildError(
            f"{check_file} is out of date", hint=f"run `gasbuild schema > {check_file}`"
        )


@cli.command()
@click.option(
    "-C",
    "--directory",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path("."),
    help="Where to write gas.toml and model.py (default: here).",
)
@click.option(
    "--modality",
    "modalities",
    type=click.Choice(MODALITIES),
    multiple=True,
    help="Modality to declare; repeat for several (default: image).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default="safetensors",
    show_default=True,
    help="Submission format.",
)
@click.option(
    "--template",
    metavar="NAME",
    help="Declare the architecture with a template (`gasbuild templates`) instead of writing "
    "a model.py; the modality defaults to the template's.",
)
@click.option("--name", help="Model name prefix (default: the directory's name).")
@click.option("--force", is_flag=True, help="Overwrite existing files.")
@verbosity_options
def init(
    directory: Path,
    modalities: Sequence[str],
    fmt: str,
    template: str | None,
    name: str | None,
    force: bool,
) -> None:
    """Write a commented gas.toml (and a starter model.py per modality, unless --template).

    \b
    Also writes gas.schema.json (editors validate gas.toml against it), untrained starter
    weights for the starter model, and .gitignore entries for dist/ and .gasbuild/.
    In an existing project, --modality X adds a [models.X] table (with its own hotkey).
    """
    from gasbuild import scaffold, ui
    from gasbuild.errors import display_path

    done = scaffold.init(
        directory, tuple(modalities), fmt, name=name, force=force, template=template
    )
    for path in done.written:
        ui.info(f"wrote {display_path(path)}")
    for line in done.next_steps:
        ui.info(line)


@cli.command()
@click.argument("name", required=False)
@_project_options
@click.option("--json", "as_json", is_flag=True, help="Print the declarations as JSON.")
def templates(
    name: str | None, directory: Path | None, manifest_file: Path | None, as_json: bool
) -> None:
    """List the architecture templates, or show one template's arguments.

    \b
    Built-in templates, plus the project's own ([build] templates in gas.toml, when
    there is a gas.toml here or in -C DIR). Use one with:
      architecture = { template = "NAME", args = { ... } }
    """
    from gasbuild import ui
    from gasbuild.templates import registry

    project = maybe_project(directory, manifest_file)
    reg = project.template_registry() if project is not None else registry()
    chosen = sorted(reg.templates.values(), key=lambda t: t.name)
    if name is not None:
        template = reg.get(name)
        if template is None:
            raise UsageError(f"no template named {name!r}", hint=reg.suggest(name))
        chosen = [template]
    if as_json:
        sys.stdout.write(json.dumps([ui.template_json(t) for t in chosen], indent=2) + "\n")
    elif name is None:
        ui.print_template_list(chosen)
    else:
        ui.print_template(chosen[0])


@cli.command()
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

    \b
    No PATHS: the project (gas.toml) in the current directory. A directory holding a
    gas.toml is a project: its declared models are checked as `gasbuild build` would.
    Exit status: 0 no errors, 1 errors found, 2 usage error.
    Every finding is one line: path:line:col: CODE severity message (hint).
    `gasbuild explain CODE` prints what a code means and how to fix it.
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

    from gasbuild._api import check_project
    from gasbuild.plan import no_step

    # spinners and bars on a terminal, as in build; none with --json
    step = no_step if as_json else ui.step
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


@cli.command()
@click.argument("code")
def explain(code: str) -> None:
    """Print what a check code (GAS304, or 304) means, why it matters and how to fix it."""
    from gasbuild.explain import explain as explain_code

    sys.stdout.write(explain_code(code))


@cli.group("cache")
def cache_group() -> None:
    """Inspect and trim the local cache: the [cache] dir of the gas.toml here (or -C DIR),
    else $GASBUILD_CACHE_DIR or the user cache dir."""


def _local_cache(directory: Path | None, manifest_file: Path | None) -> Any:
    """The cache of the project in -C DIR / -f FILE / here (its ``[cache] dir``), else
    $GASBUILD_CACHE_DIR or the user cache: the one its builds use."""
    from gasbuild.cache import Cache, default_cache_dir

    project = maybe_project(directory, manifest_file)
    if project is None:
        return Cache(default_cache_dir())
    return Cache(default_cache_dir(project.manifest.cache.dir, project.root))


@cache_group.command("ls")
@_project_options
def cache_ls(directory: Path | None, manifest_file: Path | None) -> None:
    """List the stored objects (fetched files) and how many records there are."""
    from gasbuild import cache as cache_mod
    from gasbuild import ui

    cache = _local_cache(directory, manifest_file)
    entries = cache_mod.scan(cache)
    rows = [
        [e.path.name, ui.human_size(e.size), _age(e.mtime)] for e in entries if e.kind == "object"
    ]
    ui.table(f"objects in {cache.root}", ["sha256", "size", "last used"], rows)
    counts = {k: sum(1 for e in entries if e.kind == k) for k in ("action", "stat", "tmp")}
    ui.out.print(", ".join(f"{n} {k} records" for k, n in counts.items()), highlight=False)


@cache_group.command("du")
@_project_options
def cache_du(directory: Path | None, manifest_file: Path | None) -> None:
    """Disk used by the cache, per kind of entry."""
    from gasbuild import cache as cache_mod
    from gasbuild import ui

    cache = _local_cache(directory, manifest_file)
    entries = cache_mod.scan(cache)
    rows = []
    for kind in ("object", "action", "stat", "tmp"):
        chosen = [e for e in entries if e.kind == kind]
        rows.append([kind, str(len(chosen)), ui.human_size(sum(e.size for e in chosen))])
    rows.append(["total", str(len(entries)), ui.human_size(sum(e.size for e in entries))])
    ui.table(str(cache.root), ["kind", "entries", "size"], rows)


@cache_group.command("verify")
@_project_options
def cache_verify(directory: Path | None, manifest_file: Path | None) -> None:
    """Rehash every object and parse every record; remove anything corrupt."""
    from gasbuild import cache as cache_mod
    from gasbuild import ui

    removed = cache_mod.verify(_local_cache(directory, manifest_file))
    for line in removed:
        ui.print_warning(f"removed corrupt {line}")
    ui.out.print(f"{len(removed)} corrupt entries removed", highlight=False)


@cache_group.command("gc")
@click.option(
    "--max-size", metavar="SIZE", help="Evict least recently used entries above SIZE (e.g. 20G)."
)
@click.option("--older-than", metavar="AGE", help="Remove entries unused for AGE (e.g. 30d, 12h).")
@_project_options
def cache_gc(
    directory: Path | None, manifest_file: Path | None, max_size: str | None, older_than: str | None
) -> None:
    """Remove stale temp files, old entries, and the least recently used beyond a size."""
    from gasbuild import cache as cache_mod
    from gasbuild import ui

    removed = cache_mod.gc(
        _local_cache(directory, manifest_file),
        max_size=None if max_size is None else _parse_size(max_size, "--max-size"),
        older_than=None if older_than is None else _parse_age(older_than),
    )
    freed = sum(e.size for e in removed)
    ui.out.print(f"removed {len(removed)} entries, freed {ui.human_size(freed)}", highlight=False)
    from gasbuild.sandbox.runner import sweep_sandbox_dirs

    swept = sweep_sandbox_dirs()  # smoke/export temp dirs a killed gasbuild left behind
    if swept:
        ui.out.print(f"removed {swept} orphaned sandbox directories", highlight=False)


def _parse_size(text: str, flag: str) -> int:
    units = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
    value = text.strip().upper().removesuffix("B").removesuffix("I")
    unit = value[-1:] if value[-1:] in units else ""
    try:
        return int(float(value[: len(value) - len(unit)]) * units[unit])
    except ValueError:
        raise UsageError(f"{flag}: {text!r} is not a size", hint="e.g. 500M, 20G") from None


def _parse_age(text: str) -> float:
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    value = text.strip().lower()
    try:
        return float(value[:-1]) * units[value[-1]]
    except (KeyError, ValueError, IndexError):
        raise UsageError(f"--older-than: {text!r} is not an age", hint="e.g. 12h, 30d") from None


def _age(mtime: float) -> str:
    import time

    seconds = max(0.0, time.time() - mtime)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f}{unit} ago"
    return "just now"


# --------------------------------------------------------------------------------------------
# gascli: BitMind's command names, kept working on top of gasbuild.


@click.group(context_settings=CONTEXT)
@click.version_option(__version__, "-V", "--version", prog_name="gascli (gasbuild)")
def gascli() -> None:
    """BitMind's `gascli`, provided by gasbuild for compatibility."""


@gascli.group("discriminator", context_settings=CONTEXT)
def discriminator() -> None:
    """Discriminator (miner) commands."""


gascli.add_command(discriminator, "d")
_cli_push.register(cli, discriminator)
_cli_eval.register(cli)


def _run(group: click.Group, args: Sequence[str] | None, prog_name: str) -> int:
    """Run a click group with gasbuild's error policy; return the exit code.

    With ``--json`` stdout always holds one JSON document: a failure that printed none yet
    prints ``{"ok": false, "error": {...}}`` (the one-line error still goes to stderr).
    """
    argv = list(sys.argv[1:] if args is None else args)
    as_json = "--json" in argv[: argv.index("--")] if "--" in argv else "--json" in argv
    from gasbuild import ui

    ui.json_printed = False  # per run: an earlier run in this process printed its own
    if not as_json:
        return _run_guarded(group, argv, prog_name, as_json)
    ui.live = False  # no spinner or bar in any command's --json run
    try:
        return _run_guarded(group, argv, prog_name, as_json)
    finally:
        ui.live = True


def _run_guarded(group: click.Group, argv: list[str], prog_name: str, as_json: bool) -> int:
    """``_run``'s error policy around the command."""
    try:
        # Without standalone mode click *returns* the code of an Exit instead of raising it.
        code = group.main(args=argv, prog_name=prog_name, standalone_mode=False)
    except GasbuildError as error:
        from gasbuild import ui

        ui.print_error(error)
        _verbose_causes(error)
        return _failed(as_json, error, error.exit_code)
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
    return code if isinstance(code, int) else 0


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


def main(args: Sequence[str] | None = None, prog_name: str = "gasbuild") -> None:
    """Entry point of the ``gasbuild`` script (and ``python -m gasbuild``)."""
    sys.exit(_run(cli, args, prog_name))


def gascli_main(args: Sequence[str] | None = None) -> None:
    """Entry point of the ``gascli`` script."""
    sys.exit(_run(gascli, args, "gascli"))
