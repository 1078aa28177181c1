"""Issue 16, a miner's first day: what a user sees at 80 columns, --json on failure, init's
project, check's routing, explain, and a push with no chain to reach (CLI subprocesses)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from conftest import REPO, run_cli

NARROW = {"COLUMNS": "80"}
HEX64 = re.compile(r"\b[0-9a-f]{64}\b")


def _fits(text: str, width: int = 80) -> None:
    long = [line for line in text.splitlines() if len(line) > width]
    assert not long, long


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project as `init` leaves it, built once without the smoke test."""
    root = tmp_path_factory.mktemp("first-day") / "detector"
    made = run_cli("init", "-C", str(root), env=NARROW)
    assert made.returncode == 0, made.stderr
    built = run_cli("build", "--no-smoke", cwd=root, env=NARROW)
    assert built.returncode == 0, built.stderr
    return root


# -- 9: init ---------------------------------------------------------------------------


@pytest.mark.slow
def test_init_leaves_a_project_that_travels(project: Path) -> None:
    text = (project / "gas.toml").read_text()
    assert text.startswith("#:schema ./gas.schema.json\n")
    assert "site-packages" not in text and "file://" not in text
    schema = json.loads((project / "gas.schema.json").read_text())
    assert schema == json.loads(run_cli("schema").stdout)
    assert (project / ".gitignore").read_text().splitlines()[1:] == ["dist/", ".gasbuild/"]
    assert (project / "weights" / "image.safetensors").is_file()
    assert (project / "dist" / "image_detector.zip").is_file()  # built as init left it


def test_init_says_what_to_do_next_and_one_hotkey_per_model(tmp_path: Path) -> None:
    made = run_cli("init", "-C", "proj", "--modality", "image", "--modality", "audio", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    assert "next: `gasbuild build -C proj`" in made.stderr
    assert "btcli wallet new_hotkey --wallet.hotkey audio" in made.stderr
    _fits(made.stderr)
    from gasbuild import manifest

    models = manifest.load(tmp_path / "proj" / "gas.toml").manifest.models
    assert models.image is not None and models.audio is not None
    assert {models.image.hotkey, models.audio.hotkey} == {"image", "audio"}


def test_init_adds_a_modality_to_a_project(tmp_path: Path) -> None:
    from gasbuild import manifest

    assert run_cli("init", "-C", str(tmp_path)).returncode == 0
    (tmp_path / ".gitignore").write_text("*.pyc\n")
    before = (tmp_path / "gas.toml").read_text()
    added = run_cli("init", "-C", str(tmp_path), "--modality", "video")
    assert added.returncode == 0, added.stderr
    after = (tmp_path / "gas.toml").read_text()
    assert after.startswith(before)  # comments and edits kept: the table is appended
    project = manifest.load(tmp_path / "gas.toml")
    assert [m for m, _ in project.manifest.declared()] == ["image", "video"]
    assert project.manifest.models.video is not None
    assert project.manifest.models.video.hotkey == "video"
    assert (tmp_path / "video_model.py").is_file()
    assert (tmp_path / ".gitignore").read_text() == "*.pyc\ndist/\n.gasbuild/\n"
    again = run_cli("init", "-C", str(tmp_path), "--modality", "video")
    assert again.returncode == 2 and "already declares video" in again.stderr


def test_starter_weights_are_a_valid_safetensors_file() -> None:
    from safetensors import safe_open

    from gasbuild.scaffold import _IMAGE_SHAPES, starter_safetensors

    data = starter_safetensors(_IMAGE_SHAPES, seed="image")
    assert data == starter_safetensors(_IMAGE_SHAPES, seed="image")  # reproducible
    import tempfile

    with tempfile.NamedTemporaryFile(suffix=".safetensors") as handle:
        handle.write(data)
        handle.flush()
        with safe_open(handle.name, "np") as opened:
            assert sorted(opened.keys()) == sorted(_IMAGE_SHAPES)
            for name, shape in _IMAGE_SHAPES.items():
                assert tuple(opened.get_slice(name).get_shape()) == shape


# -- 4: 80 columns --------------------------------------------------------------------


@pytest.mark.slow
def test_build_fits_80_columns_with_short_digests_marked_short(project: Path) -> None:
    result = run_cli("build", "--no-smoke", cwd=project, env=NARROW)
    assert result.returncode == 0, result.stderr
    _fits(result.stdout)
    _fits(result.stderr)
    assert not HEX64.search(result.stdout)  # never a digest that looks whole but is cut
    digest = json.loads(run_cli("build", "--no-smoke", "--json", cwd=project).stdout)
    full = digest["models"][0]["sha256"]
    assert f"{full[:12]}…" in result.stdout
    assert "dist/image_detector.zip" in result.stdout  # the path is never cut
    wide = run_cli("build", "--no-smoke", cwd=project, env={"COLUMNS": "200"})
    assert full in wide.stdout and "validate:hit" in wide.stdout


@pytest.mark.slow
def test_check_fits_80_columns(project: Path) -> None:
    result = run_cli("check", "--no-smoke", cwd=project, env=NARROW)
    assert result.returncode == 0, result.stderr
    _fits(result.stdout + result.stderr)


def test_narrow_tables_become_one_record_per_line(monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    from rich.console import Console

    from gasbuild import ui

    # through the console cache: assigning ui.out and restoring it would pin one console as a
    # module attribute for every later test
    narrow = Console(width=40, file=io.StringIO(), soft_wrap=True)
    monkeypatch.setitem(ui._consoles, "out", narrow)
    ui.table("t", ["name", "value"], [["a" * 30, "b" * 30], ["c", "d"]])
    text = narrow.file.getvalue()  # type: ignore[attr-defined]
    assert text.splitlines() == ["t", "a" * 30 + "  " + "b" * 30, "c  d"]


# -- 5: smoke test that did not run ---------------------------------------------------


@pytest.mark.slow
def test_smoke_test_not_run_is_not_cached_and_said_loudly(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("torch")
    from gasbuild import manifest, plan
    from gasbuild.cache import Cache
    from gasbuild.check import smoke
    from gasbuild.cli import _print_report

    loaded = manifest.load(project / "gas.toml")
    cache = Cache(project / ".gasbuild" / "test-cache")
    monkeypatch.setattr(smoke, "module_paths", lambda modules: None)  # torch "not installed"
    first = plan.build(loaded, cache, plan.BuildOptions())
    assert first.results[0].smoke == "not run"
    assert {f.code for f in first.results[0].findings} == {"GAS600"}
    _print_report(first)
    assert "NOT SMOKE-TESTED: " in capsys.readouterr().err
    monkeypatch.undo()  # torch "installed" now: the smoke test must run, not hit
    second = plan.build(loaded, cache, plan.BuildOptions())
    validate = next(s for s in second.results[0].stages if s.name == "validate")
    assert not validate.hit
    assert second.results[0].smoke == "passed" and not second.results[0].findings


# -- 3: --json always prints JSON -----------------------------------------------------


def test_json_failures_are_json(tmp_path: Path) -> None:
    for args in (
        ("build", "--json"),
        ("status", "--json"),
        ("push", "--dry-run", "--json"),
        ("check", "--json", "missing.zip"),
        ("build", "--json", "--no-such-flag"),
    ):
        result = run_cli(*args, cwd=tmp_path)
        assert result.returncode == 2, (args, result.stderr)
        data = json.loads(result.stdout)
        assert data["ok"] is False and data["error"]["exit_code"] == 2, args
        assert data["error"]["message"], args
        assert "Traceback" not in result.stderr and "rror" in result.stderr  # stderr still says


@pytest.mark.slow
def test_build_json_failure_carries_the_findings(tmp_path: Path) -> None:
    assert run_cli("init", "-C", str(tmp_path)).returncode == 0
    model = tmp_path / "model.py"
    model.write_text("import subprocess\n" + model.read_text())
    result = run_cli("build", "--json", "--no-smoke", cwd=tmp_path)
    assert result.returncode == 1
    data = json.loads(result.stdout)
    assert data["ok"] is False
    codes = {f["code"] for f in data["findings"]}
    assert "GAS303" in codes
    # 7: the finding points at the file being edited, not into a zip never written
    assert "model.py:1:" in result.stderr
    assert "image_detector.zip/model.py" not in result.stderr
    assert not (tmp_path / "dist" / "image_detector.zip").exists()


@pytest.mark.slow
def test_template_findings_point_at_the_rendered_copy(tmp_path: Path) -> None:
    from gasbuild import located, manifest

    assert run_cli("init", "-C", str(tmp_path), "--template", "audio-cnn").returncode == 0
    loaded = manifest.load(tmp_path / "gas.toml")
    target = next(iter(loaded.targets(None)))
    from gasbuild.check import Finding
    from gasbuild.stages.package import Entry

    entries = [Entry.text("model.py", b"# rendered\n")]
    found = [Finding("GAS304", "error", "x", file="model.py", line=1, col=1)]
    (placed,) = located.locate(loaded, target, entries, found)
    rendered = located.rendered_model_py(loaded, target.modality)
    assert rendered.read_bytes() == b"# rendered\n"
    assert rendered.is_relative_to(tmp_path / ".gasbuild")
    assert placed.source is not None and placed.source.endswith(".gasbuild/rendered/audio/model.py")
    line = placed.format("dist/audio_detector.zip")
    assert line.endswith("rendered/audio/model.py:1:1: GAS304 error x"), line


# -- 8: check's routing ---------------------------------------------------------------


@pytest.mark.slow
def test_check_a_project_directory_and_no_argument(project: Path) -> None:
    for args in (("check", "--no-smoke", "."), ("check", "--no-smoke")):
        result = run_cli(*args, cwd=project)
        assert result.returncode == 0, result.stderr
        assert "GAS110" not in result.stderr and "GAS102" not in result.stderr
        # 7: no zip is read or written: the model is named by its table, not a dist/ path
        assert "gas.toml [models.image]: ok" in result.stderr
        assert "_detector.zip" not in result.stderr
    outside = run_cli("check", cwd=project.parent)
    assert outside.returncode == 2 and "no gas.toml here" in outside.stderr


@pytest.mark.slow
def test_zip_r_folder_is_one_error_with_the_fix(project: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.zip"
    with (
        zipfile.ZipFile(project / "dist" / "image_detector.zip") as good,
        zipfile.ZipFile(bad, "w") as out,
    ):
        out.writestr("detector/", b"")
        for info in good.infolist():
            out.writestr(f"detector/{info.filename}", good.read(info))
    result = run_cli("check", "--no-smoke", "--json", str(bad))
    assert result.returncode == 1
    findings = json.loads(result.stdout)["submissions"][0]["findings"]
    assert len(findings) == 1
    assert findings[0]["code"] == "GAS102" and "zip -j" in findings[0]["hint"]


# -- 7: explain and what ships --------------------------------------------------------


def test_explain_prints_a_code_from_the_shipped_docs() -> None:
    result = run_cli("explain", "GAS304")
    assert result.returncode == 0
    assert result.stdout.startswith("GAS304: import of a module not on the allow-list\n")
    assert "](#" not in result.stdout
    assert run_cli("explain", "304").stdout == result.stdout
    wrong = run_cli("explain", "GAS999")
    assert wrong.returncode == 2 and "did you mean" in wrong.stderr


def test_docs_and_schema_ship_in_the_wheel() -> None:
    import tomllib

    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    included = config["tool"]["hatch"]["build"]["targets"]["wheel"]["force-include"]
    assert included["docs/checks.md"] == "gasbuild/_data/docs/checks.md"


def test_hints_cite_what_ships() -> None:
    sources = [p for p in (REPO / "gasbuild").rglob("*.py")]
    for path in sources:
        for line in path.read_text().splitlines():
            if "hint" in line.lower() and ("SPEC" in line or "gas.toml.example" in line):
                pytest.fail(f"{path}: {line.strip()}")


# -- 10: conventions ------------------------------------------------------------------


def test_quiet_and_verbose(tmp_path: Path) -> None:
    quiet = run_cli("init", "-q", "-C", str(tmp_path))
    assert quiet.returncode == 0 and quiet.stderr == ""
    loud = run_cli("init", "-C", str(tmp_path / "b"))
    assert "wrote" in loud.stderr and "next:" in loud.stderr
    both = run_cli("-v", "-q", "templates")
    assert both.returncode == 2
    helped = run_cli("--help")
    assert "_GASBUILD_COMPLETE=bash_source gasbuild" in helped.stdout
    assert "-q, --quiet" in helped.stdout and "-v, --verbose" in helped.stdout


# -- 3: a push with no chain to reach -------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("endpoint", ["ws://127.0.0.1:9", "wss://nonexistent.invalid:443"])
def test_push_with_no_reachable_chain_ends_in_one_line(
    project: Path, tmp_path: Path, endpoint: str
) -> None:
    pytest.importorskip("bittensor")
    from fakes.publishing import make_wallet

    wallets = tmp_path / "wallets"
    make_wallet(wallets, "default", ("default",))
    env = {**NARROW, "HOME": str(tmp_path), "BT_WALLET_PATH": str(wallets)}
    toml = (project / "gas.toml").read_text()
    local = tmp_path / "p"
    local.mkdir()
    for name in ("model.py", "gas.schema.json"):
        (local / name).write_bytes((project / name).read_bytes())
    (local / "weights").mkdir()
    (local / "weights" / "image.safetensors").write_bytes(
        (project / "weights" / "image.safetensors").read_bytes()
    )
    (local / "gas.toml").write_text(
        toml.replace('name = "default"', f'name = "default"\npath = "{wallets}"', 1)
    )
    started = time.monotonic()
    result = run_cli(
        "push", "--dry-run", "--json", "--no-smoke", "--chain-endpoint", endpoint,
        cwd=local, env=env,
    )  # fmt: skip
    assert time.monotonic() - started < 120  # a bound, not a speed claim: deadlines hold
    assert result.returncode in (1, 2), result.stderr
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    assert f"cannot reach {endpoint}" in errors[0]
    assert json.loads(result.stdout)["ok"] is False


def test_no_op_help_still_imports_nothing_heavy() -> None:
    code = "import gasbuild.cli, gasbuild.ui, gasbuild.explain, sys; print(sorted(sys.modules))"
    names = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout
    for heavy in ("torch", "onnx", "bittensor", "numpy"):
        assert f"'{heavy}'" not in names


def test_an_argument_that_is_not_utf8_is_one_line_exit_2(tmp_path: Path) -> None:
    """A Linux path in another encoding (Latin-1 "dïst") is refused up front: gasbuild's records
    (JSON, gas.lock, lock names) are UTF-8, and it used to fail deep in the cache's lock."""
    out = os.fsdecode(b"d\xefst")
    result = subprocess.run(
        [sys.executable, "-m", "gasbuild", "build", "--out", out, "--no-smoke"],
        cwd=tmp_path,  # refused before any gas.toml is looked for
        capture_output=True,
        text=True,
        errors="replace",
        env={**os.environ, "GASBUILD_CACHE_DIR": str(tmp_path / "cache")},
    )
    assert result.returncode == 2, result.stderr
    assert "not valid UTF-8" in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
