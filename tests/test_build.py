"""End-to-end builds of the bundled examples: layout, loader compatibility, determinism, caching."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

from conftest import EXAMPLES, run_cli
from gasbuild import manifest, plan
from gasbuild.cache import Cache
from gasbuild.errors import CheckFailed, SourceError
from gasbuild.stages import fetch, package

HEAVY = ("torch", "onnx", "onnxruntime", "bittensor")


def _copy_example(tmp_path: Path, name: str = "quickstart", dest: str = "proj") -> Path:
    target = tmp_path / dest
    shutil.copytree(EXAMPLES / name, target, ignore=shutil.ignore_patterns("dist", "gas.lock"))
    return target


def _build(project_dir: Path, cache_dir: Path, **options: object) -> plan.BuildReport:
    project = manifest.load(project_dir / "gas.toml")
    return plan.build(project, Cache(cache_dir), plan.BuildOptions(**options))  # type: ignore[arg-type]


def test_example_builds_three_submissions_with_the_network_layout(tmp_path: Path) -> None:
    proj = _copy_example(tmp_path)
    result = run_cli("build", "-C", str(proj))
    assert result.returncode == 0, result.stderr
    for modality in ("image", "video", "audio"):
        path = proj / "dist" / f"{modality}_detector.zip"
        with zipfile.ZipFile(path) as zf:
            assert zf.namelist() == ["model.py", "model.safetensors", "model_config.yaml"]
            config = yaml.safe_load(zf.read("model_config.yaml"))
        assert config["modality"] == modality
        assert config["model"]["weights_file"] == "model.safetensors"
        assert hashlib.sha256(path.read_bytes()).hexdigest() in result.stdout
    assert (proj / "gas.lock").exists()


def test_two_clones_at_two_times_give_identical_bytes(tmp_path: Path) -> None:
    first = _copy_example(tmp_path, dest="clone-a")
    second = _copy_example(tmp_path, dest="clone-b")
    for path in second.rglob("*"):
        os.utime(path, (1_000_000_000, 1_000_000_000))  # checked out at another time
    _build(first, tmp_path / "cache-a", smoke=False)
    _build(second, tmp_path / "cache-b", smoke=False)
    for modality in ("image", "video", "audio"):
        name = f"dist/{modality}_detector.zip"
        assert (first / name).read_bytes() == (second / name).read_bytes()
    assert (first / "gas.lock").read_bytes() == (second / "gas.lock").read_bytes()
    lock_text = (first / "gas.lock").read_text()
    assert str(tmp_path) not in lock_text, "the lock holds no absolute path"


def test_onnx_example_builds_a_single_entry_zip(tmp_path: Path) -> None:
    proj = _copy_example(tmp_path, "onnx-legacy")
    result = run_cli("build", "-C", str(proj))
    assert result.returncode == 0, result.stderr
    assert "stopped accepting new ONNX" in result.stderr
    with zipfile.ZipFile(proj / "dist" / "image_detector.zip") as zf:
        assert zf.namelist() == ["image_detector.onnx"]


def test_noop_rebuild_reads_no_weights_and_imports_nothing_heavy(tmp_path: Path) -> None:
    proj = _copy_example(tmp_path)
    env = {"GASBUILD_CACHE_DIR": str(tmp_path / "cache")}
    assert run_cli("build", "-C", str(proj), env=env).returncode == 0
    before = {p: p.stat().st_mtime_ns for p in (proj / "dist").iterdir()}
    code = (
        "import atexit, sys\n"
        f"heavy = {HEAVY!r}\n"
        "def report():\n"
        "    loaded = [m for m in heavy if m in sys.modules]\n"
        "    print('HEAVY=' + ','.join(loaded), file=sys.stderr)\n"
        "atexit.register(report)\n"
        "from gasbuild.cli import main\n"
        f"main(['build', '-C', {str(proj)!r}, '--json'])\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "HEAVY=\n" in result.stderr
    report = json.loads(result.stdout)
    for model in report["models"]:
        assert model["rebuilt"] is False
        assert set(model["stages"].values()) == {"hit"}, model["stages"]
    assert {p: p.stat().st_mtime_ns for p in (proj / "dist").iterdir()} == before


def test_noop_rebuild_never_reads_weight_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    proj = _copy_example(tmp_path)
    _build(proj, tmp_path / "cache", smoke=False)

    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("weights were read on a no-op rebuild")

    monkeypatch.setattr(fetch, "measure_file", forbidden)
    monkeypatch.setattr(package, "write_zip", forbidden)
    report = _build(proj, tmp_path / "cache", smoke=False)
    assert not any(r.rebuilt for r in report.results)


def test_edit_to_model_py_rebuilds_only_that_model(tmp_path: Path) -> None:
    proj = _copy_example(tmp_path)
    first = _build(proj, tmp_path / "cache", smoke=False)
    model_py = proj / "models" / "audio_model.py"
    model_py.write_text(model_py.read_text() + "\n# tuned\n")
    second = _build(proj, tmp_path / "cache", smoke=False)
    rebuilt = {r.modality: r.rebuilt for r in second.results}
    assert rebuilt == {"image": False, "video": False, "audio": True}
    assert first.results[2].sha256 != second.results[2].sha256


def test_deleted_or_tampered_zip_is_rebuilt(tmp_path: Path) -> None:
    proj = _copy_example(tmp_path)
    first = _build(proj, tmp_path / "cache", smoke=False)
    zip_path = proj / "dist" / "image_detector.zip"
    zip_path.write_bytes(b"tampered")
    second = _build(proj, tmp_path / "cache", smoke=False)
    assert second.results[0].rebuilt
    assert hashlib.sha256(zip_path.read_bytes()).hexdigest() == first.results[0].sha256


def test_sha256_pin_mismatch_stops_before_writing(tmp_path: Path) -> None:
    proj = _copy_example(tmp_path)
    weights = proj / "weights" / "image.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(SourceError, match="the pin says") as info:
        _build(proj, tmp_path / "cache", smoke=False)
    assert info.value.location is not None and info.value.location.line is not None
    assert not (proj / "dist" / "image_detector.zip").exists()


def test_a_submission_with_errors_is_not_written(tmp_path: Path) -> None:
    proj = _copy_example(tmp_path)
    model_py = proj / "models" / "image_model.py"
    model_py.write_text("import os\n" + model_py.read_text())
    seen: list[str] = []
    with pytest.raises(CheckFailed):
        plan.build(
            manifest.load(proj / "gas.toml"),
            Cache(tmp_path / "cache"),
            plan.BuildOptions(smoke=False),
            on_findings=lambda origin, findings: seen.extend(f.code for f in findings),
        )
    assert "GAS303" in seen
    assert not (proj / "dist" / "image_detector.zip").exists()


def test_locked_build_passes_when_fresh_and_names_what_changed(tmp_path: Path) -> None:
    proj = _copy_example(tmp_path)
    missing = run_cli("build", "-C", str(proj), "--locked", "--no-smoke")
    assert missing.returncode == 2 and "gas.lock is missing" in missing.stderr
    assert run_cli("lock", "-C", str(proj), "--no-smoke").returncode == 0
    lock_before = (proj / "gas.lock").read_bytes()
    ok = run_cli("build", "-C", str(proj), "--locked", "--no-smoke")
    assert ok.returncode == 0, ok.stderr
    model_py = proj / "models" / "video_model.py"
    model_py.write_text(model_py.read_text() + "\n# changed\n")
    stale = run_cli("build", "-C", str(proj), "--locked", "--no-smoke")
    assert stale.returncode == 2
    assert "gas.lock is stale for models.video" in stale.stderr
    assert "inputs.architecture.sha256 would change" in stale.stderr
    assert (proj / "gas.lock").read_bytes() == lock_before, "--locked never writes the lock"


def test_only_keeps_the_other_models_in_the_lock(tmp_path: Path) -> None:
    proj = _copy_example(tmp_path)
    _build(proj, tmp_path / "cache", smoke=False)
    full = (proj / "gas.lock").read_text()
    _build(proj, tmp_path / "cache", smoke=False, only=frozenset({"audio"}))
    assert (proj / "gas.lock").read_text() == full


def test_check_accepts_zip_directory_and_manifest(tmp_path: Path) -> None:
    proj = _copy_example(tmp_path)
    assert run_cli("build", "-C", str(proj), "--no-smoke").returncode == 0
    zip_path = proj / "dist" / "image_detector.zip"
    unpacked = tmp_path / "unpacked"
    with zipfile.ZipFile(zip_path) as zf:
        zf.extractall(unpacked)
    result = run_cli("check", "--no-smoke", str(zip_path), str(unpacked), str(proj / "gas.toml"))
    assert result.returncode == 0, result.stderr
    assert "5 submission(s) checked: 0 error(s)" in result.stderr
    (unpacked / "model.py").write_text("import os\n" + (unpacked / "model.py").read_text())
    bad = run_cli("check", "--no-smoke", "--json", str(unpacked))
    assert bad.returncode == 1
    report = json.loads(bad.stdout)
    assert report["errors"] >= 1
    codes = {f["code"] for f in report["submissions"][0]["findings"]}
    assert "GAS303" in codes


def test_check_of_a_broken_directory(tmp_path: Path) -> None:
    proj = _copy_example(tmp_path)
    assert run_cli("build", "-C", str(proj), "--no-smoke").returncode == 0
    unpacked = tmp_path / "unpacked"
    with zipfile.ZipFile(proj / "dist" / "video_detector.zip") as zf:
        zf.extractall(unpacked)
    (unpacked / "model.py").unlink()
    (unpacked / "README.md").write_text("notes")
    (unpacked / "extras").mkdir()
    result = run_cli("check", "--json", str(unpacked))  # smoke on: must not run, nor crash
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    findings = json.loads(result.stdout)["submissions"][0]["findings"]
    got = {(f["code"], f["file"]) for f in findings}
    assert {("GAS110", "model.py"), ("GAS110", "README.md"), ("GAS102", "extras")} <= got
    assert not any(f["code"].startswith("GAS6") for f in findings)


MATRIX = {
    # what changed -> the image model's stages: fetch, render, validate, package
    "nothing": ("hit", "hit", "hit", "hit"),
    "model.py": ("miss", "miss", "miss", "miss"),
    "weights": ("miss", "hit", "miss", "miss"),
    "gas.toml version": ("hit", "miss", "miss", "miss"),
    "SOURCE_DATE_EPOCH": ("hit", "hit", "hit", "miss"),
    "zip deleted": ("hit", "hit", "hit", "miss"),
}


@pytest.mark.parametrize("change", list(MATRIX))
def test_cache_hit_miss_matrix(
    tmp_path: Path, change: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    proj = _copy_example(tmp_path)
    toml = proj / "gas.toml"
    # drop the weights pins so that the weights may change
    toml.write_text(re.sub(r', sha256 = "[0-9a-f]{64}"', "", toml.read_text()))
    _build(proj, tmp_path / "cache", smoke=False)
    if change == "model.py":
        path = proj / "models" / "image_model.py"
        path.write_text(path.read_text() + "\n# edited\n")
    elif change == "weights":
        from safetensors.numpy import load_file, save_file

        path = proj / "weights" / "image.safetensors"
        tensors = load_file(str(path))
        tensors["head.bias"] = tensors["head.bias"] + 1
        save_file(tensors, str(path))
    elif change == "gas.toml version":
        toml.write_text(toml.read_text().replace('version = "1.0.0"', 'version = "1.0.1"', 1))
    elif change == "SOURCE_DATE_EPOCH":
        monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    elif change == "zip deleted":
        (proj / "dist" / "image_detector.zip").unlink()
    image = _build(proj, tmp_path / "cache", smoke=False).results[0]
    got = tuple("hit" if s.hit else "miss" for s in image.stages)
    assert got == MATRIX[change], [(s.name, s.hit) for s in image.stages]
    assert image.rebuilt == (MATRIX[change][3] == "miss")
