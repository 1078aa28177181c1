"""The command line as a user meets it: help, version, errors, init, schema, build."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from conftest import REPO, run_cli

HEAVY = ("torch", "onnx", "onnxruntime", "bittensor", "s3fs", "huggingface_hub")


def test_help_imports_nothing_heavy() -> None:
    code = (
        "import sys\n"
        "from gasbuild.cli import main\n"
        "try:\n"
        "    main(['--help'])\n"
        "except SystemExit as e:\n"
        "    assert e.code == 0, e.code\n"
        f"heavy = [m for m in {HEAVY!r} if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "gasbuild build" in result.stdout


def test_version_and_module_entry_point() -> None:
    from gasbuild import __version__

    result = run_cli("--version")
    assert result.returncode == 0
    assert __version__ in result.stdout


def test_user_errors_are_one_line_exit_2(tmp_path: Path) -> None:
    (tmp_path / "gas.toml").write_text("[models.image]\nnum_classes = 7\n")
    result = run_cli("build", "-C", str(tmp_path))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines[0].startswith("error: ")
    assert "gas.toml:" in lines[0] and "models.image" in lines[0]


def test_missing_manifest_and_bad_flags_exit_2(tmp_path: Path) -> None:
    missing = run_cli("build", "-C", str(tmp_path))
    assert missing.returncode == 2 and "gasbuild init" in missing.stderr
    bad_flag = run_cli("build", "--frobnicate")
    assert bad_flag.returncode == 2 and "Traceback" not in bad_flag.stderr
    (tmp_path / "gas.toml").write_text(
        '[models.image]\narchitecture = { file = "m.py" }\nweights = { path = "w" }\n'
    )
    bad_only = run_cli("build", "-C", str(tmp_path), "--only", "imgae")
    assert bad_only.returncode == 2 and "unknown modality imgae" in bad_only.stderr
    undeclared = run_cli("build", "-C", str(tmp_path), "--only", "audio")
    assert undeclared.returncode == 2 and "audio is not declared" in undeclared.stderr
    no_weights = run_cli("build", "-C", str(tmp_path))
    assert no_weights.returncode == 2
    assert "gas.toml:3:13: models.image.weights: " in no_weights.stderr
    assert "/w does not exist (paths are relative to gas.toml)" in no_weights.stderr


def test_schema_is_in_sync_with_the_checked_in_file() -> None:
    result = run_cli("schema")
    assert result.returncode == 0
    assert json.loads(result.stdout) == json.loads(
        (REPO / "schemas" / "gas.schema.json").read_text()
    )
    assert run_cli("schema", "--check", str(REPO / "schemas" / "gas.schema.json")).returncode == 0


def test_example_manifest_documents_every_field() -> None:
    import tomllib

    from gasbuild.manifest import Manifest

    text = (REPO / "gas.toml.example").read_text()
    Manifest.model_validate(tomllib.loads(text))
    fields: set[str] = set()

    def walk(model: type) -> None:
        for name, info in model.model_fields.items():  # type: ignore[attr-defined]
            fields.add(name)
            for arg in _types(info.annotation):
                if hasattr(arg, "model_fields"):
                    walk(arg)

    walk(Manifest)
    undocumented = sorted(
        f for f in fields if f"{f} =" not in text and f"[{f}" not in text and f".{f}]" not in text
    )
    assert not undocumented


def _types(annotation: object) -> list[object]:
    from typing import get_args

    out = [annotation]
    for arg in get_args(annotation):
        out.extend(_types(arg))
    return out


def test_init_writes_a_project_that_validates_and_refuses_to_overwrite(tmp_path: Path) -> None:
    from gasbuild import manifest
    from gasbuild.check.static import analyze_source

    result = run_cli("init", "-C", str(tmp_path), "--modality", "video", "--modality", "audio")
    assert result.returncode == 0, result.stderr
    project = manifest.load(tmp_path / "gas.toml")
    assert [m for m, _ in project.manifest.declared()] == ["video", "audio"]
    for name in ("video_model.py", "audio_model.py"):
        findings = analyze_source((tmp_path / name).read_bytes())
        assert not [f for f in findings if f.severity == "error"], findings
    again = run_cli("init", "-C", str(tmp_path))
    assert again.returncode == 2 and "--force" in again.stderr
    assert run_cli("init", "-C", str(tmp_path), "--force").returncode == 0


def test_errors_print_brackets_as_text_not_as_rich_markup(tmp_path: Path) -> None:
    """A hint like "[models.image]" or "gasbuild[torch]" must reach the terminal intact."""
    (tmp_path / "gas.toml").write_text("[models]\n")
    result = run_cli("build", "-C", str(tmp_path))
    assert result.returncode == 2
    assert "such as [models.image] with" in result.stderr


def test_tables_show_cells_as_text_not_as_rich_markup(tmp_path: Path) -> None:
    """A project template's description is data: "[bold]" and "gasbuild[vision]" stay as typed."""
    template = tmp_path / "tpl" / "mine"
    template.mkdir(parents=True)
    (template / "model.py.j2").write_text("def load_model(p, num_classes=2):\n    return None\n")
    (template / "template.toml").write_text(
        'description = "[bold]needs[/bold] gasbuild[vision]"\nmodalities = ["image"]\n'
    )
    (tmp_path / "gas.toml").write_text(
        '[build]\ntemplates = "tpl"\n\n[models.image]\narchitecture = { file = "m.py" }\n'
        'weights = { path = "w.safetensors" }\n'
    )
    listed = run_cli("templates", "-C", str(tmp_path), env={"COLUMNS": "250"})
    assert listed.returncode == 0, listed.stderr
    assert "[bold]needs[/bold] gasbuild[vision]" in listed.stdout
    shown = run_cli("templates", "mine", "-C", str(tmp_path))
    assert "[bold]needs[/bold] gasbuild[vision]" in shown.stdout
