"""The lazy command groups (``gasbuild.cli.lazy``): help and completion without the commands.

``gasbuild --help`` lists every command from a table in ``gasbuild.cli.app`` instead of
importing the command modules. These tests hold the table to the real commands (names and
short help, at every width), and check in a real interpreter what the help, the completion and
the common commands import.
"""

from __future__ import annotations

import importlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import click
import pytest
from hypothesis import given
from hypothesis import strategies as st

from conftest import EXAMPLES
from gasbuild.cli import app
from gasbuild.cli.lazy import Lazy, LazyGroup

# The modules that define commands: none of them is needed to list the commands.
COMMAND_MODULES = (
    "gasbuild.cli.build",
    "gasbuild.cli.check",
    "gasbuild.cli.project",
    "gasbuild.cli.cache",
    "gasbuild.cli.push",
    "gasbuild.cli.eval",
    "gasbuild.cli.fastpath",
)
HEAVY = ("pydantic", "jinja2", "rich", "torch", "onnx", "onnxruntime", "bittensor", "httpx")
TABLES: dict[str, dict[str, Lazy]] = {
    "gasbuild": app.COMMANDS,
    "gascli discriminator": app.DISCRIMINATOR_COMMANDS,
}
# Print the modules a command loaded (after its own output) on stderr's last line.
WRAPPER = """\
import atexit, sys
atexit.register(lambda: print("MODULES=" + ",".join(sorted(sys.modules)), file=sys.stderr))
from gasbuild.cli import {entry}
{entry}({args!r})
"""


def loaded(
    *args: str, entry: str = "main", cwd: Path | None = None, env: dict[str, str] | None = None
) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """Run ``gasbuild ARGS`` (or ``gascli``) in a fresh interpreter: the run and its modules."""
    done = subprocess.run(
        [sys.executable, "-c", WRAPPER.format(entry=entry, args=list(args))],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=300,
    )
    line = done.stderr.rstrip("\n").rsplit("\n", 1)[-1]
    assert line.startswith("MODULES="), done.stderr
    return done, set(line.removeprefix("MODULES=").split(","))


def heavy_or_commands(modules: set[str]) -> list[str]:
    """The command modules and the heavy packages (by top-level name) among ``modules``."""
    found = {m for m in modules if m in COMMAND_MODULES}
    found |= {m.split(".")[0] for m in modules if m.split(".")[0] in HEAVY}
    return sorted(found)


@pytest.mark.parametrize(
    ("entry", "args"),
    [
        ("main", ["--help"]),
        ("main", []),
        ("main", ["--version"]),
        ("gascli_main", ["--help"]),
        ("gascli_main", ["d", "--help"]),
    ],
)
def test_help_imports_no_command_module(entry: str, args: list[str]) -> None:
    done, modules = loaded(*args, entry=entry)
    assert done.returncode in (0, 2), done.stderr  # click exits 2 for a bare group
    assert heavy_or_commands(modules) == []
    if "--help" in args:
        assert "Commands:" in done.stdout


def test_help_lists_every_command_as_the_commands_describe_themselves() -> None:
    """The group's help from the table equals the help once every command is imported."""
    lazy_text = help_text(fresh(app.COMMANDS))
    eager = fresh({})
    for name, (load, _) in app.COMMANDS.items():
        eager.add_command(load(), name)
    assert help_text(eager) == lazy_text
    for name in app.COMMANDS:
        assert f"\n  {name} " in lazy_text


def fresh(lazy: dict[str, Lazy]) -> LazyGroup:
    """A copy of the ``gasbuild`` group with nothing loaded yet."""
    return LazyGroup("gasbuild", lazy=lazy, params=app.cli.params, help=app.cli.help)


def help_text(group: click.Group) -> str:
    return group.get_help(click.Context(group, info_name="gasbuild"))


@given(limit=st.integers(min_value=1, max_value=200))
def test_the_table_shortens_as_each_command_does(limit: int) -> None:
    for table in TABLES.values():
        unloaded = LazyGroup(lazy=table)
        for name, (load, _) in table.items():
            assert unloaded.listed_help(name, limit) == load().get_short_help_str(limit), name
        assert unloaded.commands == {}  # listing loaded nothing


def test_the_table_names_each_command_as_it_names_itself() -> None:
    for table in TABLES.values():
        for name, (load, _) in table.items():
            assert load().name == name


def test_no_command_is_missing_from_the_table() -> None:
    """Every command a command module defines (or registers) is listed, and nothing else."""
    defined: set[str] = set()
    for module in COMMAND_MODULES[:-1]:
        values = vars(importlib.import_module(module)).values()
        found = [v for v in values if isinstance(v, click.Command)]
        nested = {c for v in found if isinstance(v, click.Group) for c in v.commands.values()}
        defined |= {c.name for c in found if c not in nested and c.name is not None}
    from gasbuild.cli import push

    top, discriminator = click.Group(), click.Group()
    push.register(top, discriminator)
    assert defined | set(top.commands) == set(app.COMMANDS)
    assert set(discriminator.commands) == set(app.DISCRIMINATOR_COMMANDS)


def test_a_command_is_imported_only_when_it_runs() -> None:
    group = LazyGroup(lazy=app.COMMANDS)
    with click.Context(group) as ctx:
        assert group.list_commands(ctx) == sorted(app.COMMANDS)
        command = group.get_command(ctx, "explain")
    assert command is not None and command.name == "explain"
    assert set(group.commands) == {"explain"}


def test_a_mistyped_command_suggests_a_lazy_one() -> None:
    done, modules = loaded("pussh")
    assert done.returncode == 2
    assert "No such command 'pussh'" in done.stderr
    if hasattr(click.exceptions, "NoSuchCommand"):  # click 8.4 on suggests close names
        assert "push" in done.stderr.split("No such command", 1)[1]
    assert heavy_or_commands(modules) == []


def test_completion_lists_commands_without_importing_them() -> None:
    env = {"_GASBUILD_COMPLETE": "bash_complete", "COMP_WORDS": "gasbuild b", "COMP_CWORD": "1"}
    done, modules = loaded(env=env)
    assert done.stdout.split() == ["plain,build", "plain,burn"]
    assert heavy_or_commands(modules) == []
    env = {**env, "_GASBUILD_COMPLETE": "zsh_complete", "COMP_WORDS": "gasbuild st"}
    done, _ = loaded(env=env)
    status = app.COMMANDS["status"][0]().get_short_help_str()
    assert done.stdout.split("\n")[:3] == ["plain", "status", status]
    done, _ = loaded(env={"_GASBUILD_COMPLETE": "bash_source"})
    assert "_gasbuild_completion" in done.stdout


def test_completion_inside_a_command_still_works() -> None:
    env = {
        "_GASBUILD_COMPLETE": "bash_complete",
        "COMP_WORDS": "gasbuild build --no-s",
        "COMP_CWORD": "2",
    }
    done, _ = loaded(env=env)
    assert done.stdout.split() == ["plain,--no-smoke"]


def test_templates_without_a_manifest_loads_no_manifest(tmp_path: Path) -> None:
    done, modules = loaded("templates", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "audio-cnn" in done.stdout
    assert "gasbuild.manifest" not in modules and "pydantic" not in modules
    assert {"jinja2", "torch", "onnx", "bittensor"}.isdisjoint(modules)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """The quickstart project, built without the smoke test: (project, env)."""
    root = tmp_path_factory.mktemp("lazy")
    project = root / "qs"
    shutil.copytree(EXAMPLES / "quickstart", project)
    env = {"GASBUILD_CACHE_DIR": str(root / "cache")}
    done, _ = loaded("build", "-C", str(project), "--no-smoke", env=env)
    assert done.returncode == 0, done.stderr
    return project, env


def test_check_of_a_zip_without_smoke_loads_only_the_checker(
    built: tuple[Path, dict[str, str]],
) -> None:
    project, env = built
    zip_path = project / "dist" / "image_detector.zip"
    done, modules = loaded("check", str(zip_path), "--no-smoke", env=env)
    assert done.returncode == 0, done.stderr
    assert heavy_or_commands(modules) == ["gasbuild.cli.check", "rich"]  # rich: the report
    assert "gasbuild.manifest" not in modules


def test_status_on_a_memory_chain_loads_no_chain_sdk(
    built: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    project, env = built
    chain = tmp_path / "chain.json"
    chain.write_text('{"registered": []}')
    env = {**env, "GASBUILD_CHAIN": f"memory:{chain}"}
    done, modules = loaded("status", "-C", str(project), "--json", env=env)
    assert done.returncode == 0, done.stderr
    assert '"models"' in done.stdout
    assert heavy_or_commands(modules) == ["gasbuild.cli.push", "pydantic"]  # gas.toml


def _every_command(group: click.Group, path: tuple[str, ...]) -> list[tuple[str, ...]]:
    """Each command's argv path under ``group`` (sub-groups included), the group's own first."""
    ctx = click.Context(group)
    found = [path]
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        assert command is not None, name
        if isinstance(command, click.Group):
            found += _every_command(command, (*path, name))
        else:
            found.append((*path, name))
    return found


@pytest.mark.parametrize("program", ["gasbuild", "gascli"])
def test_every_help_fits_80_columns(program: str) -> None:
    """Help text is read on an 80-column terminal: a ``\\b`` block click cannot rewrap must be
    written to fit, and prose must be left to click to wrap."""
    from click.testing import CliRunner

    group = app.cli if program == "gasbuild" else app.gascli
    runner = CliRunner(env={"COLUMNS": "80"})
    wide: list[str] = []
    for path in _every_command(group, ()):
        result = runner.invoke(group, [*path, "--help"], prog_name=program)
        assert result.exit_code == 0, (path, result.output)
        wide += [
            f"{' '.join(path)}: {line}" for line in result.output.splitlines() if len(line) > 80
        ]
    assert not wide, "\n".join(wide)
