"""Start-up rows: the no-op rebuild and ``--help`` as whole processes, beside the interpreter.

A no-op build is bounded below by Python's own start-up, so it is measured against
``python -c pass`` and ``python -c "import click"`` (every command parses its flags with click)
in the same run, and against hashing the weights once (``openssl dgst -sha256``). The modules
that cost most on the no-op path come from ``-X importtime``.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

RECORD = Path(".gasbuild") / "noop-build.json"
# The record is trusted only once every file it watches is this much older (gasbuild's racy rule).
RACY_SECONDS = 2.0

CASES = (
    "python -c pass",
    "python -c 'import click'",
    "gasbuild --help",
    "gasbuild no-op (recorded)",
)


def _gasbuild(*args: str) -> list[str]:
    return [sys.executable, "-m", "gasbuild", *args]


def record_noop(bench: Any, build: list[str]) -> None:
    """Bring the project to a recorded no-op: wait out the racy window of the files just
    written; a first build re-hashes what the stat cache could not yet trust (its records were
    written within the racy window too), then a full no-op build writes the record the next
    builds replay."""
    time.sleep(RACY_SECONDS + 0.1)
    for _ in range(2):
        subprocess.run(build, cwd=bench.project, env=bench.env, check=True, capture_output=True)
    if not (bench.project / RECORD).exists():
        raise RuntimeError("the full no-op build wrote no record; the fast path cannot answer")


def top_imports(bench: Any, cmd: list[str], count: int = 10) -> list[dict[str, Any]]:
    """The ``count`` modules with the largest cumulative import time (µs) for ``cmd``."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", *cmd[1:]],
        cwd=bench.project,
        env=bench.env,
        capture_output=True,
        text=True,
        check=True,
    )
    rows = []
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _, own, total, name = (part.strip() for part in line.replace(":", "|", 1).split("|"))
        rows.append({"module": name, "self_us": int(own), "cumulative_us": int(total)})
    return sorted(rows, key=lambda r: -r["cumulative_us"])[:count]


def run_startup(bench: Any) -> None:
    """Measure the start-up rows on ``bench``'s project (after its cold build)."""
    build = _gasbuild("build", "--no-smoke")
    bench.measure("python -c pass", [sys.executable, "-c", "pass"])
    bench.measure("python -c 'import click'", [sys.executable, "-c", "import click"])
    bench.measure("gasbuild --help", _gasbuild("--help"))
    record_noop(bench, build)
    bench.measure("gasbuild no-op (recorded)", build)
    bench.extra["top_imports"] = {
        "no-op (recorded)": top_imports(bench, build),
        "--help": top_imports(bench, _gasbuild("--help")),
    }
    for label, rows in bench.extra["top_imports"].items():
        print(f"  top imports, {label}:", flush=True)
        for row in rows[:5]:
            print(f"    {row['cumulative_us'] / 1000:7.1f} ms  {row['module']}", flush=True)


def startup_ratios(best: dict[str, float]) -> dict[str, float]:
    """The no-op against hashing the weights once and against the bare interpreter."""
    if "gasbuild no-op (recorded)" not in best:
        return {}
    noop = best["gasbuild no-op (recorded)"]
    return {
        "no-op (recorded) / openssl sha256": noop / best["openssl sha256"],
        "no-op (recorded) / python -c pass": noop / best["python -c pass"],
        "--help / python -c 'import click'": (
            best["gasbuild --help"] / best["python -c 'import click'"]
        ),
    }
