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
from gasbuild.errors import GasbuildError, UsageError
from gasbuild.submission import FORMATS, MODALITIES, Modality

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def _parse_only(value: str | None) -> frozenset[Modality] | None:
    if not value:
        return None
    chosen = {part.strip() for part in value.split(",") if part.strip()}
    unknown = sorted(chosen - set(MODALITIES))
    if unknown:
        raise UsageError(
            f"--only: unknown modality {', '.join(unknown)}",
            hint=f"choose from {', '.join(MODALITIES)}",
        )
    return frozenset(chosen)  # type: ignore[arg-type]


def _project_options(func: Any) -> Any:
    func = click.option(
        "-f",
        "--file",
        "manifest_file",
        type=click.Path(path_type=Path, dir_okay=False),
        help="Manifest to use (default: gas.toml in DIR).",
    )(func)
    func = click.option(
        "-C",
        "--directory",
        type=click.Path(path_type=Path, file_okay=False),
        help="Run as if started in DIR.",
    )(func)
    return func


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


@cli.command()
@_project_options
@click.option("--only", metavar="MODALITIES", help="Comma-separated subset: image,video,audio.")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="Output directory (default: [build] out, i.e. dist/).",
)
@click.option("--no-smoke", is_flag=True, help="Skip the smoke test (loading and running models).")
@click.option("--deep", is_flag=True, help="Also scan every weight for NaN/Inf.")
@click.option("--no-cache", is_flag=True, help="Ignore cached results (still records new ones).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON on stdout.")
def build(
    directory: Path | None,
    manifest_file: Path | None,
    only: str | None,
    out_dir: Path | None,
    no_smoke: bool,
    deep: bool,
    no_cache: bool,
    as_json: bool,
) -> None:
    """Build the submission zips declared in gas.toml, byte for byte reproducibly."""
    from gasbuild import manifest, plan, ui
    from gasbuild.cache import Cache, default_cache_dir

    project = manifest.load(manifest.find_manifest(directory, manifest_file))
    cache = Cache(default_cache_dir(), enabled=not no_cache)
    options = plan.BuildOptions(
        only=_parse_only(only),
        out_dir=None if out_dir is None else (Path.cwd() / out_dir),
        smoke=not no_smoke,
        deep=deep,
    )
    if options.only is not None:
        declared = {m for m, _ in project.manifest.declared()}
        missing = sorted(options.only - declared)
        if missing:
            raise UsageError(
                f"--only: {', '.join(missing)} is not declared in {project.path.name}",
                hint=f"declared: {', '.join(sorted(declared))}",
            )
    report = plan.build(project, cache, options, on_findings=ui.print_findings)
    if as_json:
        ui.print_json(_report_json(report))
        return
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
        ]
        for r in report.results
    ]
    ui.table("gasbuild build", ["modality", "format", "zip", "size", "sha256", "status"], rows)


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
@click.option("--name", help="Model name prefix (default: the directory's name).")
@click.option("--force", is_flag=True, help="Overwrite existing files.")
def init(
    directory: Path, modalities: Sequence[str], fmt: str, name: str | None, force: bool
) -> None:
    """Write a commented gas.toml (and a starter model.py per modality)."""
    from gasbuild import scaffold, ui

    written = scaffold.init_project(
        directory, tuple(modalities) or ("image",), fmt, name=name, force=force
    )
    for path in written:
        ui.err.print(f"wrote {path}", markup=False, highlight=False)


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


def _run(group: click.Group, args: Sequence[str] | None, prog_name: str) -> int:
    """Run a click group with gasbuild's error policy; return the exit code."""
    try:
        group.main(args=args, prog_name=prog_name, standalone_mode=False)
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
    return 0


def main(args: Sequence[str] | None = None, prog_name: str = "gasbuild") -> None:
    """Entry point of the ``gasbuild`` script (and ``python -m gasbuild``)."""
    sys.exit(_run(cli, args, prog_name))


def gascli_main(args: Sequence[str] | None = None) -> None:
    """Entry point of the ``gascli`` script."""
    sys.exit(_run(gascli, args, "gascli"))
