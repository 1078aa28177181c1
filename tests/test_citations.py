"""Issue 16.7: what gasbuild tells a user cites only what a user has: the commands
(`gasbuild schema`, `gasbuild explain CODE`, `--help`) and the project's published pages,
never SPEC.md, docs/*.md or gas.toml.example, which a wheel does not ship.

Every string literal in gasbuild/ is read (messages, hints, help texts), except docstrings
(for readers of the code) other than gasbuild/cli/'s functions' (a command's is its --help);
and the templates a user renders.
"""

from __future__ import annotations

import ast
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import REPO

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

PACKAGE = REPO / "gasbuild"
UNSHIPPED = re.compile(r"SPEC\.md|README\.md|gas\.toml\.example|(?:^|[^\w/.-])docs/[\w.-]+")


def _repository_url() -> str:
    urls = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["urls"]
    return str(urls["Documentation"]).split("#", 1)[0].rstrip("/")


def _docstrings(tree: ast.Module) -> set[int]:
    """ids of the docstring constants of a module and its classes and functions."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                found.add(id(body[0].value))
    return found


def _user_strings(path: Path) -> Iterator[tuple[int, str]]:
    tree = ast.parse(path.read_text("utf-8"))
    skip = _docstrings(tree)
    if path.is_relative_to(PACKAGE / "cli"):  # a command's docstring is its --help
        skip = {id(tree.body[0].value)} & skip if isinstance(tree.body[0], ast.Expr) else set()  # type: ignore[attr-defined]
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip:
            yield node.lineno, node.value


def _cited(text: str, repository: str) -> list[str]:
    """Citations of files a user does not have: any not inside a URL of the project's."""
    bad = []
    for token in text.split():
        if UNSHIPPED.search(token) and not token.strip("()[]`'\",.;:").startswith(repository):
            bad.append(token)
    return bad


def _sources() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", _sources(), ids=lambda p: str(p.relative_to(REPO)))
def test_messages_cite_only_what_ships(path: Path) -> None:
    repository = _repository_url()
    bad = [
        (line, token) for line, text in _user_strings(path) for token in _cited(text, repository)
    ]
    assert not bad, bad


def test_templates_cite_only_what_ships() -> None:
    repository = _repository_url()
    bad = []
    for path in sorted((REPO / "templates").rglob("*")):
        if path.is_file():
            for line, text in enumerate(path.read_text("utf-8").splitlines(), 1):
                bad += [(str(path), line, t) for t in _cited(text, repository)]
    assert not bad, bad


def test_the_check_catches_a_citation() -> None:
    """The rule itself: relative citations are caught, the project's URLs are not."""
    repository = _repository_url()
    assert _cited("see SPEC.md §2", repository) == ["SPEC.md"]
    assert _cited("(see docs/eval.md)", repository) == ["docs/eval.md)"]
    assert _cited("copy gas.toml.example", repository) == ["gas.toml.example"]
    assert _cited(f"see {repository}/blob/main/gas.toml.example", repository) == []
    assert _cited("`gasbuild explain GAS304` lists them", repository) == []
