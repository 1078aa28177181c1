"""The public API: the exported names are pinned, and the exception tree in errors.py's
docstring is the one the code defines (after httpx's tests/test_exported_members.py)."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import gasbuild
from conftest import EXAMPLES
from gasbuild import errors

PUBLIC = {
    "BuildError",
    "BuildReport",
    "CheckFailed",
    "Finding",
    "GasbuildError",
    "ManifestError",
    "ModelResult",
    "Project",
    "PublishError",
    "PushItem",
    "PushReport",
    "PushSettings",
    "SourceError",
    "TransportError",
    "UsageError",
    "UserError",
    "__version__",
    "build",
    "check_submission",
    "load_project",
    "open_cache",
    "push",
}


def test_the_exported_names_are_pinned() -> None:
    assert set(gasbuild.__all__) == PUBLIC
    assert len(gasbuild.__all__) == len(PUBLIC)  # no duplicates


@pytest.mark.parametrize("name", sorted(PUBLIC))
def test_every_exported_name_resolves(name: str) -> None:
    value = getattr(gasbuild, name)
    assert value is not None
    if name != "__version__":
        assert name in dir(gasbuild)


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no_such_thing"):
        gasbuild.no_such_thing  # type: ignore[attr-defined]  # noqa: B018


def test_importing_gasbuild_imports_nothing_heavy() -> None:
    code = (
        "import sys, gasbuild; "
        "print(sorted(m for m in ('pydantic','rich','jinja2','torch','httpx') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


def _all_modules() -> list[str]:
    names = []
    for info in pkgutil.walk_packages(gasbuild.__path__, "gasbuild."):
        if info.name.endswith("_child") or info.name == "gasbuild.__main__":
            continue  # child scripts are run by path, in their own process
        names.append(info.name)
    return names


def _error_classes() -> dict[str, type[BaseException]]:
    found: dict[str, type[BaseException]] = {}
    for name in _all_modules():
        module = importlib.import_module(name)
        for attr, value in vars(module).items():
            if (
                inspect.isclass(value)
                and issubclass(value, BaseException)
                and value.__module__ == name
            ):
                found[attr] = value
    return found


def _drawn() -> dict[str, str]:
    """Class name -> the name of its parent in the docstring's tree."""
    doc = errors.__doc__ or ""
    lines = [line for line in doc.splitlines() if re.match(r"^\s{4}[│├└─ ]*[A-Z]\w+", line)]
    parents: dict[int, str] = {}
    drawn: dict[str, str] = {}
    for line in lines:
        match = re.match(r"^\s{4}([│├└─ ]*)([A-Z]\w+)", line)
        assert match is not None
        depth = len(match.group(1)) // 4
        name = match.group(2)
        parents[depth] = name
        drawn[name] = parents[depth - 1] if depth else "Exception"
    return drawn


def test_every_exception_gasbuild_raises_is_in_the_drawn_tree() -> None:
    classes = _error_classes()
    drawn = _drawn()
    assert len(drawn) >= 20 and "ArgError" in drawn
    undrawn = sorted(n for n, c in classes.items() if issubclass(c, errors.GasbuildError))
    undrawn = [n for n in undrawn if n not in drawn]
    assert not undrawn, f"draw these in errors.py's docstring: {undrawn}"
    internal = (errors.__doc__ or "").split("(internal:", 1)[1]
    outside = sorted(
        n
        for n, c in classes.items()
        if not issubclass(c, errors.GasbuildError) and f"{n} [" not in internal
    )
    assert not outside, f"exceptions outside the tree and not named internal: {outside}"


def test_the_drawn_tree_is_the_code_s_tree() -> None:
    classes = _error_classes()
    for name, parent in _drawn().items():
        assert name in classes, f"{name} is drawn but not defined"
        if parent != "Exception":
            assert parent in {b.__name__ for b in classes[name].__mro__[1:]}, (name, parent)


def test_the_public_api_builds_and_checks_the_quickstart(tmp_path: Path) -> None:
    root = tmp_path / "quickstart"
    shutil.copytree(EXAMPLES / "quickstart", root)
    project = gasbuild.load_project(root)
    report = gasbuild.build(project, only=["image"], smoke=False, out_dir=tmp_path / "dist")
    [result] = report.results
    assert result.zip_path == tmp_path / "dist" / "image_detector.zip"
    assert zipfile.ZipFile(result.zip_path).namelist() == [
        "model.py",
        "model.safetensors",
        "model_config.yaml",
    ]
    assert gasbuild.check_submission(result.zip_path, smoke=False) == []
    with pytest.raises(gasbuild.UserError) as info:
        gasbuild.load_project(tmp_path / "nowhere")
    assert info.value.exit_code == 2
