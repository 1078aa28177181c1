"""``python -m bench.sandbox --sizes 1G,2.5G``: what the smoke test's sandbox costs.

For each size, a synthetic safetensors model (``bench.__main__.write_weights``) is smoke-tested
by a fresh driver process, ``--repeat`` times with the containment layers and as many without
(``run_child(contain=False)``: the same child, process group and limits only), alternating so
both see the same machine load. Reported: the smoke test's wall time with and without (min and
median) and their difference, the sandbox's added time; and the child's peak resident set
(``getrusage(RUSAGE_CHILDREN)`` in the driver, which holds nothing of the model) against the
weights' size.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.__main__ import MODEL_PY, REPO, RESULTS, parse_size, write_weights

CONFIG = (
    'name: "bench"\nversion: "1.0.0"\nmodality: image\npreprocessing:\n  resize: [224, 224]\n'
    'model:\n  num_classes: 2\n  weights_file: "model.safetensors"\n'
)
DRIVER = """\
import json, resource, sys, time
from pathlib import Path
from gasbuild.check.findings import DirectorySubmission
from gasbuild.check.smoke import _findings, _stage, smoke_limits, CheckOptions
from gasbuild.sandbox.runner import loader_job, module_paths, run_child, sandbox_dir
folder, contain = Path(sys.argv[1]), sys.argv[2] == "1"
sub = DirectorySubmission(folder, "bench")
limits = smoke_limits(sub, CheckOptions())
with sandbox_dir("bench-") as root:
    job = loader_job(_stage(sub, root / "submission"), modality="image", batch=2,
                     memory_mb=limits.memory_mb, paths=module_paths() or [])
    start = time.perf_counter()
    run = run_child(job, root, limits.timeout, contain=contain)
    seconds = time.perf_counter() - start
ok = run.returncode == 0 and '"result"' in run.stdout
rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
print(json.dumps({"seconds": seconds, "rss_mib": rss, "ok": ok, "layers": run.layers,
                  "stderr": run.stderr[-500:]}))
"""


def measure(folder: Path, contain: bool) -> dict[str, object]:
    """One smoke run in a fresh driver process."""
    out = subprocess.run(
        [sys.executable, "-c", DRIVER, str(folder), "1" if contain else "0"],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
    )
    result: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
    if not result["ok"]:
        raise RuntimeError(f"smoke run failed: {result['stderr']}")
    return result


def bench_size(size: int, repeat: int, scratch: Path) -> dict[str, object]:
    folder = scratch / f"model-{size}"
    folder.mkdir()
    (folder / "model.py").write_text(MODEL_PY)
    (folder / "model_config.yaml").write_text(CONFIG)
    write_weights(folder / "model.safetensors", size)
    runs: dict[bool, list[dict[str, object]]] = {True: [], False: []}
    for _ in range(repeat):
        for contain in (False, True):
            runs[contain].append(measure(folder, contain))
    times = {k: [float(str(r["seconds"])) for r in v] for k, v in runs.items()}
    rss = max(float(str(r["rss_mib"])) for r in runs[True])
    weights_mib = (folder / "model.safetensors").stat().st_size / (1 << 20)
    return {
        "weights_mib": round(weights_mib, 1),
        "smoke_s_min": round(min(times[True]), 3),
        "smoke_s_median": round(statistics.median(times[True]), 3),
        "uncontained_s_min": round(min(times[False]), 3),
        "uncontained_s_median": round(statistics.median(times[False]), 3),
        "sandbox_added_ms_min": round(1000 * (min(times[True]) - min(times[False]))),
        "sandbox_added_ms_median": round(
            1000 * (statistics.median(times[True]) - statistics.median(times[False]))
        ),
        "peak_rss_mib": round(rss),
        "peak_rss_over_weights": round(rss / weights_mib, 2) if weights_mib >= 1 else None,
        "layers": runs[True][0]["layers"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.sandbox", description=__doc__)
    parser.add_argument("--sizes", default="1G,2.5G")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--name", default="sandbox")
    args = parser.parse_args(argv)
    rows = {}
    with tempfile.TemporaryDirectory(prefix="gasbuild-bench-sandbox-") as tmp:
        for text in args.sizes.split(","):
            rows[text] = bench_size(parse_size(text), args.repeat, Path(tmp))
            row = {k: v for k, v in rows[text].items() if k != "layers"}
            print(text, json.dumps(row), flush=True)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{args.name}.json").write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
