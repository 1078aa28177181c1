"""Issue 16.7: findings point at files that exist. A build, and `gasbuild check` of a project,
check entries staged in memory: each finding names the file it comes from (model.py, the
rendered copy of a template's, gas.toml at a line, the weights), never a dist/ zip that was not
written; a zip checked as a zip is named by its path."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import run_cli
from gasbuild import located, manifest
from gasbuild.check import Finding
from gasbuild.manifest import ModelTarget, Project
from gasbuild.stages import render
from gasbuild.stages.package import Entry


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project as `init` leaves it (image), never built."""
    root = tmp_path_factory.mktemp("located") / "proj"
    assert run_cli("init", "-C", str(root)).returncode == 0
    return root


def _target(root: Path) -> tuple[Project, ModelTarget]:
    project = manifest.load(root / "gas.toml")
    return project, project.targets(None)[0]


def _entries(target: ModelTarget) -> list[Entry]:
    return [
        Entry.text("model_config.yaml", render.render_config(target)),
        Entry.text("model.py", b"import os\n"),
    ]


def test_each_entry_points_at_its_source(made: Path) -> None:
    project, target = _target(made)
    found = [
        Finding("GAS303", "error", "m", file="model.py", line=1, col=8),
        Finding("GAS401", "error", "w", file="model.safetensors"),
        Finding("GAS607", "error", "limit"),  # about the whole submission
        Finding("GAS110", "error", "x", file="notes.txt"),  # no entry of that name
    ]
    model, weights, whole, unknown = located.locate(project, target, _entries(target), found)
    assert Path(model.source or "").resolve() == made / "model.py"
    assert model.format("dist/image_detector.zip") == f"{model.source}:1:8: GAS303 error m"
    assert Path(weights.source or "").resolve() == made / "weights" / "image.safetensors"
    table = project.locate("models.image")
    for placed in (whole, unknown):
        assert Path(placed.source or "").resolve() == made / "gas.toml"
        assert (placed.line, placed.col) == (table.line, table.col)
    for placed in (model, weights, whole, unknown):
        assert "_detector.zip" not in placed.format("dist/image_detector.zip")


def test_a_config_line_points_at_its_gas_toml_key(made: Path) -> None:
    project, target = _target(made)
    config = render.render_config(target).decode()
    line = next(i for i, text in enumerate(config.splitlines(), 1) if "num_classes" in text)
    finding = Finding("GAS206", "error", "num_classes", file="model_config.yaml", line=line)
    (placed,) = located.locate(project, target, _entries(target), [finding])
    where = project.locate("models.image.num_classes")
    assert (placed.source, placed.line, placed.col) == (where.file, where.line, where.col)
    assert "num_classes" in (made / "gas.toml").read_text().splitlines()[where.line - 1]


@settings(max_examples=30, deadline=None)
@given(line=st.integers(min_value=-2, max_value=60) | st.none())
def test_every_config_line_lands_in_gas_toml(made: Path, line: int | None) -> None:
    project, target = _target(made)
    finding = Finding("GAS201", "error", "x", file="model_config.yaml", line=line)
    (placed,) = located.locate(project, target, _entries(target), [finding])
    assert Path(placed.source or "").name == "gas.toml"
    assert placed.line is not None and placed.line >= project.locate("models.image").line  # type: ignore[operator]


@pytest.mark.slow
def test_check_of_a_project_names_model_py_not_a_zip(tmp_path: Path) -> None:
    assert run_cli("init", "-C", str(tmp_path)).returncode == 0
    model = tmp_path / "model.py"
    lines = model.read_text().splitlines(keepends=True)
    at = next(i for i, text in enumerate(lines) if text.startswith("import "))
    lines.insert(at, "import subprocess\n")
    model.write_text("".join(lines))
    result = run_cli("check", "--no-smoke", cwd=tmp_path)
    assert result.returncode == 1
    assert f"model.py:{at + 1}:8: GAS303 error" in result.stderr
    assert "gas.toml [models.image]: FAIL" in result.stderr
    assert "_detector.zip" not in result.stderr
    assert not (tmp_path / "dist").exists()  # nothing written, nothing named
    report = json.loads(run_cli("check", "--no-smoke", "--json", cwd=tmp_path).stdout)
    (finding,) = report["submissions"][0]["findings"]
    assert (finding["source"], finding["line"], finding["col"]) == ("model.py", at + 1, 8)


@pytest.mark.slow
def test_check_of_a_template_project_names_the_rendered_copy(tmp_path: Path) -> None:
    """A project template whose model.py the static checks refuse: the finding names the
    rendered copy, which is there to be read."""
    assert run_cli("init", "-C", str(tmp_path), "--template", "audio-cnn").returncode == 0
    mine = tmp_path / "templates" / "bad-audio"
    mine.mkdir(parents=True)
    (mine / "template.toml").write_text(
        'description = "audio model that imports subprocess"\nmodalities = ["audio"]\n'
    )
    (mine / "model.py.j2").write_text(
        "import subprocess\n\n\ndef load_model(weights_path, **kwargs):\n    return None\n"
    )
    text = (tmp_path / "gas.toml").read_text()
    text = text.replace('template = "audio-cnn"', 'template = "bad-audio"')
    text = text.replace("[build]\n", '[build]\ntemplates = "templates"\n', 1)
    text = text.replace('path = "checkpoints/audio.pt"', 'path = "audio.safetensors"')
    (tmp_path / "gas.toml").write_text(text)
    from safetensors.numpy import save_file

    save_file({"w": np.zeros(4, dtype=np.float32)}, str(tmp_path / "audio.safetensors"))
    result = run_cli("check", "--no-smoke", cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    rendered = tmp_path / ".gasbuild" / "rendered" / "audio" / "model.py"
    assert ".gasbuild/rendered/audio/model.py:1:8: GAS303" in result.stderr, result.stderr
    assert rendered.read_text().startswith("import subprocess")
    assert "_detector.zip" not in result.stderr


@pytest.mark.slow
def test_a_zip_checked_as_a_zip_is_named_by_its_path(tmp_path: Path) -> None:
    assert run_cli("init", "-C", str(tmp_path)).returncode == 0
    assert run_cli("build", "--no-smoke", cwd=tmp_path).returncode == 0
    built = tmp_path / "dist" / "image_detector.zip"
    bad = tmp_path / "dist" / "edited.zip"
    with zipfile.ZipFile(built) as good, zipfile.ZipFile(bad, "w") as out:
        for info in good.infolist():
            data = good.read(info)
            out.writestr(
                info, b"import subprocess\n" + data if info.filename == "model.py" else data
            )
    result = run_cli("check", "--no-smoke", "dist/edited.zip", cwd=tmp_path)
    assert result.returncode == 1
    assert "dist/edited.zip/model.py:1:8: GAS303 error" in result.stderr
    assert "dist/edited.zip: FAIL" in result.stderr
    ok = run_cli("check", "--no-smoke", "dist/image_detector.zip", cwd=tmp_path)
    assert ok.returncode == 0 and "dist/image_detector.zip: ok" in ok.stderr


@pytest.mark.slow
def test_check_of_an_onnx_export_names_model_py(tmp_path: Path) -> None:
    """format = "onnx" from model.py: the export runs model.py, so its checks come first, and
    `check` reports them (it used to say "see above" with nothing above)."""
    assert run_cli("init", "-C", str(tmp_path)).returncode == 0
    toml = tmp_path / "gas.toml"
    toml.write_text(toml.read_text().replace('format = "safetensors"', 'format = "onnx"', 1))
    model = tmp_path / "model.py"
    model.write_text("import subprocess\n" + model.read_text())
    result = run_cli("check", "--no-smoke", cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    assert "model.py:1:8: GAS303 error" in result.stderr
    assert "gas.toml [models.image]: FAIL" in result.stderr
    assert "see above" not in result.stderr and "_detector.zip" not in result.stderr
