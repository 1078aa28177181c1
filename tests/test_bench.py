"""The benchmark runs end to end at a tiny size, so it cannot rot (its numbers are not asserted)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO

pytestmark = pytest.mark.slow

CASES = {
    "openssl sha256",
    "cp",
    "gasbuild cold build",
    "gasbuild no-op rebuild",
    "gasbuild edit model.py",
    "gasbuild check (no smoke)",
    "gasbuild push",
    "read-all upload",
    "python -c pass",
    "python -c 'import click'",
    "gasbuild --help",
    "gasbuild no-op (recorded)",
}


def test_bench_runs_at_a_tiny_size(tmp_path: Path) -> None:
    env = {**os.environ, "GASBUILD_CACHE_DIR": str(tmp_path / "cache")}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "--sizes",
            "1M",
            "--repeat",
            "1",
            "--name",
            "tiny",
            "--workdir",
            str(tmp_path),
            "--results-dir",
            str(tmp_path / "results"),
            "--skip-hand-build",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "L (2 x sha256 + cp)" in result.stdout
    report = json.loads((tmp_path / "results" / "tiny.json").read_text())
    (size,) = report["sizes"].values()
    measured = {m["case"]: m for m in size["measurements"]}
    assert set(measured) >= CASES
    assert all(m["min"] > 0 and m["peak_rss_mib"] > 0 for m in measured.values())
    assert "no-op (recorded) / openssl sha256" in size["ratios"]
    top = size["top_imports"]["no-op (recorded)"]
    assert top and all(row["cumulative_us"] >= 0 for row in top)
    assert not {"pydantic", "jinja2", "torch"} & {row["module"] for row in top}
    assert not (REPO / "bench" / "results" / "tiny.json").exists()


def test_sandbox_bench_runs_at_a_tiny_size(tmp_path: Path) -> None:
    """``python -m bench.sandbox`` smoke-tests with and without containment (numbers unasserted)."""
    name = "test-sandbox-tiny"
    subprocess.run(
        [sys.executable, "-m", "bench.sandbox", "--sizes", "1M", "--repeat", "1", "--name", name],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        check=True,
        capture_output=True,
        timeout=600,
    )
    path = REPO / "bench" / "results" / f"{name}.json"
    row = json.loads(path.read_text())["1M"]
    path.unlink()
    assert row["layers"] and all(v == "active" for v in row["layers"].values())
    assert row["peak_rss_mib"] > 0
