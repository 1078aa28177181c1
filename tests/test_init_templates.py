"""``gasbuild init --template NAME``: a gas.toml that declares the architecture by template (no
model.py), with the template's example arguments, which loads as written."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import run_cli
from gasbuild import manifest
from gasbuild.errors import UsageError
from gasbuild.scaffold import init_project
from gasbuild.templates import ArgError, example_args, registry, toml_value


@pytest.mark.parametrize("name", sorted(registry().templates))
def test_init_with_each_builtin_template_writes_a_manifest_that_loads(
    tmp_path: Path, name: str
) -> None:
    written = init_project(tmp_path, (), "safetensors", template=name)
    # no model.py to maintain, no starter weights: a template is fed a checkpoint
    assert [p.name for p in written] == ["gas.toml", "gas.schema.json", ".gitignore"]
    project = manifest.load(tmp_path / "gas.toml")
    (target,) = project.targets()
    template = registry().get(name)
    assert template is not None
    assert target.modality == template.modalities[0]
    arch = target.spec.architecture
    assert arch is not None and arch.template == name
    assert list(template.resolve_args(arch.args)) == []
    assert target.spec.weights.path == f"checkpoints/{target.modality}.pt"


def test_init_refuses_a_template_for_another_modality(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="timm-video is for video models, not image"):
        init_project(tmp_path, ("image",), "safetensors", template="timm-video")
    assert not (tmp_path / "gas.toml").exists()


def test_init_with_an_unknown_template_is_a_usage_error(tmp_path: Path) -> None:
    result = run_cli("init", "-C", str(tmp_path), "--template", "timm-imag")
    assert result.returncode == 2
    assert 'did you mean "timm-image"' in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_examples_are_checked_against_the_argument_type(tmp_path: Path) -> None:
    from gasbuild.templates import load_template

    root = tmp_path / "bad"
    root.mkdir()
    (root / "model.py.j2").write_text("def load_model(p, num_classes=2):\n    return None\n")
    (root / "template.toml").write_text(
        'description = "x"\nmodalities = ["image"]\n'
        '[args.width]\ntype = "integer"\nrequired = true\nhelp = "w"\nexample = "wide"\n'
    )
    with pytest.raises(Exception, match=r"args\.width\.example must be an integer"):
        load_template(root, builtin=False)


def test_snippets_are_toml_that_round_trips() -> None:
    import tomllib

    for template in registry().templates.values():
        snippet = f"args = {example_args(template)}\n"
        parsed = tomllib.loads(snippet)["args"]
        assert set(parsed) == {n for n, a in template.args.items() if a.required}
    value = ['a "quoted" \\ value', 1, 2.5, True]
    assert tomllib.loads(f"v = {toml_value(value)}")["v"] == value
    assert issubclass(ArgError, ValueError)
