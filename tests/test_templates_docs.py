"""docs/templates.md: every complete gas.toml it shows loads, and every built-in template is
documented with its arguments."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from conftest import REPO
from gasbuild import manifest
from gasbuild.templates import registry

DOC = REPO / "docs" / "templates.md"
BLOCKS = re.findall(r"```toml\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)
COMPLETE = [b for b in BLOCKS if b.startswith("#:schema")]


def test_the_doc_shows_a_complete_gas_toml_for_each_builtin_template() -> None:
    shown = {m for b in COMPLETE for m in re.findall(r'template = "([a-z0-9-]+)"', b)}
    assert shown == set(registry().templates)


@pytest.mark.parametrize("block", COMPLETE, ids=lambda b: re.findall(r"\[models\.(\w+)", b)[0])
def test_each_complete_gas_toml_in_the_doc_loads(block: str, tmp_path: Path) -> None:
    path = tmp_path / "gas.toml"
    path.write_text(block, encoding="utf-8")
    project = manifest.load(path)  # raises ManifestError on any mistake in the doc
    assert project.targets()


def test_every_builtin_argument_is_documented() -> None:
    text = DOC.read_text(encoding="utf-8")
    for template in registry().templates.values():
        section = text.split(f"## {template.name}\n", 1)[1].split("\n## ", 1)[0]
        for name in template.args:
            assert f"`{name}`" in section, (template.name, name)
