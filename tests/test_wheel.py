"""A non-editable install (a built wheel) finds its templates and schemas from any directory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from conftest import REPO


@pytest.mark.slow
def test_wheel_ships_templates_and_schemas(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(wheels),
            str(REPO),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = wheels.glob("gasbuild-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "gasbuild/_data/templates/init/gas.toml.j2" in names
    assert "gasbuild/_data/schemas/gas.schema.json" in names
    assert "gasbuild/_data/docs/checks.md" in names  # `gasbuild explain CODE` reads it
    for template in ("timm-image", "timm-video", "audio-cnn", "hf-image"):
        assert f"gasbuild/_data/templates/models/{template}/template.toml" in names
        assert f"gasbuild/_data/templates/models/{template}/model.py.j2" in names

    site = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--target",
            str(site),
            str(wheel),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site)}
    code = (
        "import gasbuild, sys\n"
        "from gasbuild.resources import data_dir\n"
        f"assert gasbuild.__file__.startswith({str(site)!r}), gasbuild.__file__\n"
        f"assert str(data_dir('templates')).startswith({str(site)!r})\n"
        "from gasbuild.cli import main\n"
        "from gasbuild.explain import explain\n"
        f"assert str(data_dir('docs')).startswith({str(site)!r})\n"
        "assert explain('GAS304').startswith('GAS304: ')\n"
        "main(['init', '-C', 'proj', '--modality', 'image'])\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    gas_toml = (elsewhere / "proj" / "gas.toml").read_text()
    # the project travels: its schema sits beside it, never a path into this site-packages
    assert gas_toml.startswith("#:schema ./gas.schema.json\n") and str(site) not in gas_toml
    shipped = site / "gasbuild" / "_data" / "schemas" / "gas.schema.json"
    assert (elsewhere / "proj" / "gas.schema.json").read_text() == shipped.read_text()
    check = subprocess.run(
        [
            sys.executable,
            "-m",
            "gasbuild",
            "schema",
            "--check",
            str(site / "gasbuild" / "_data" / "schemas" / "gas.schema.json"),
        ],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert check.returncode == 0, check.stderr
    listed = subprocess.run(
        [sys.executable, "-m", "gasbuild", "templates", "--json"],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert listed.returncode == 0, listed.stderr
    names_listed = {t["name"] for t in json.loads(listed.stdout)}
    assert names_listed == {"timm-image", "timm-video", "audio-cnn", "hf-image"}
