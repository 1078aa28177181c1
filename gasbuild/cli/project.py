"""``gasbuild init``, ``gasbuild templates`` and ``gasbuild schema``: writing and describing a
gas.toml. ``templates`` loads a manifest only when there is one here (or in -C DIR)."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

import click

from gasbuild.cli.options import maybe_project, project_options, verbosity_options
from gasbuild.errors import GasbuildError, UsageError
from gasbuild.submission import FORMATS, MODALITIES


@click.command("schema")
@click.option(
    "--check",
    "check_file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Exit 1 if FILE differs from the current schema instead of printing it.",
)
def schema(check_file: Path | None) -> None:
    """Print the JSON Schema of gas.toml (editors can validate against it)."""
    import json

    from gasbuild.manifest import json_schema

    text = json.dumps(json_schema(), indent=2) + "\n"
    if check_file is None:
        sys.stdout.write(text)
        return
    if not check_file.exists() or check_file.read_text("utf-8") != text:
        raise GasbuildError(
            f"{check_file} is out of date", hint=f"run `gasbuild schema > {check_file}`"
        )


@click.command("init")
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


@click.command("templates")
@click.argument("name", required=False)
@project_options
@click.option("--json", "as_json", is_flag=True, help="Print the declarations as JSON.")
def templates(
    name: str | None, directory: Path | None, manifest_file: Path | None, as_json: bool
) -> None:
    """List the architecture templates, or show one template's arguments.

    Built-in templates, plus the project's own ([build] templates in gas.toml, when
    there is a gas.toml here or in -C DIR). Use one with:

    \b
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
        import json

        sys.stdout.write(json.dumps([ui.template_json(t) for t in chosen], indent=2) + "\n")
    elif name is None:
        ui.print_template_list(chosen)
    else:
        ui.print_template(chosen[0])
