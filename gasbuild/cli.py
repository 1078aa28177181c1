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

from gasbuild import __version__, _cli_push
from gasbuild._cliopts import (
    checked_only,
    maybe_project,
    open_cache,
    project_options,
    smoke_limit_options,
)
from gasbuild.errors import GasbuildError, UsageError
from gasbuild.submission import FORMATS, MODALITIES

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


_project_options = project_options


@click.group(context_settings=CONTEXT)
@click.version_option(__version__, "-V", "--version", prog_name="gasbuild")
def cli() -> None:
    """Build, check and push GAS (subnet 34) discriminator submissions from one gas.toml.

    \b
    Typical use:
      gasbuild init --modality image   write a commented gas.toml and a starter model.py
      gasbuild build                   fetch, validate and package dist/<modality>_detector.zip
      gasbuild check dist/*.zip        check zips (or directories) as strictly as the network
    """


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
        fetch=FetchOptions(offline=offline, refresh=refresh, progress=ui.progress_factory()),
    )
    cache = open_cache(project, enabled=not no_cache, offline=offline)
    try:
        report = plan.build(project, cache, options, on_findings=ui.print_findings)
    finally:
        ui.stop_progress()
    if as_json:
        ui.print_json(_report_json(report))
        return
    _print_report(report)


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
    _run_build(directory, manifest_file, **flags)


@cli.command()
@_build_options
def lock(directory: Path | None, manifest_file: Path | None, **flags: Any) -> None:
    """Re-resolve every input (URLs, branches) and rewrite gas.lock, building as needed."""
    _run_build(directory, manifest_file, refresh=True, **flags)


def _print_report(report: Any) -> None:
    from gasbuild import ui

    for result in report.results:
        if result.format == "onnx":
            ui.print_warning(
                f"{result.zip_path.name}: the network stopped accepting new ONNX submissions in"
                ' early 2026 and may refuse it; prefer format = "safetensors"'
            )
    rows = [
        [
            r.modality,
            r.format,
            _shown(r.zip_path),
            ui.human_size(r.size),
            r.sha256,
            "rebuilt" if r.rebuilt else "up to date",
            " ".join(f"{s.name}:{'hit' if s.hit else 'miss'}" for s in r.stages),
        ]
        for r in report.results
    ]
    columns = ["modality", "format", "zip", "size", "sha256", "status", "stages"]
    ui.table("gasbuild build", columns, rows)


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
def init(
    directory: Path,
    modalities: Sequence[str],
    fmt: str,
    template: str | None,
    name: str | None,
    force: bool,
) -> None:
    """Write a commented gas.toml (and a starter model.py per modality, unless --template)."""
    from gasbuild import scaffold, ui

    written = scaffold.init_project(
        directory, tuple(modalities), fmt, name=name, force=force, template=template
    )
    for path in written:
        ui.err.print(f"wrote {path}", markup=False, highlight=False)


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
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path, exists=True))
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
@click.option("-v", "--verbose", is_flag=True, help="Also print which sandbox layers held.")
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
    verbose: bool,
) -> None:
    """Check submissions as strictly as the network: zips, directories, or a gas.toml.

    \b
    Exit status: 0 no errors, 1 errors found, 2 usage error.
    Every finding is one line: path:line:col: CODE severity message (hint).
    Codes are documented in docs/checks.md.
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
    reports = checking.check_paths(list(paths), opts, open_cache=open_cache)
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
        if verbose:
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


def _run(group: click.Group, args: Sequence[str] | None, prog_name: str) -> int:
    """Run a click group with gasbuild's error policy; return the exit code."""
    try:
        # Without standalone mode click *returns* the code of an Exit instead of raising it.
        code = group.main(args=args, prog_name=prog_name, standalone_mode=False)
    except GasbuildError as error:
        from gasbuild import ui

        ui.print_error(error)
        return error.exit_code
    except click.exceptions.Exit as done:
        return done.exit_code
    except click.ClickException as error:
        error.show()
        return 2  # every click error is a usage error: wrong flag, bad value, missing file
    except click.Abort:
        click.echo("aborted", err=True)
        return 130
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        return 130
    return code if isinstance(code, int) else 0


def main(args: Sequence[str] | None = None, prog_name: str = "gasbuild") -> None:
    """Entry point of the ``gasbuild`` script (and ``python -m gasbuild``)."""
    sys.exit(_run(cli, args, prog_name))


def gascli_main(args: Sequence[str] | None = None) -> None:
    """Entry point of the ``gascli`` script."""
    sys.exit(_run(gascli, args, "gascli"))
