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

from bench.__main__ import REPO, RESULTS, parse_size, write_weights

# A model that holds every tensor of the file as a parameter (built from the file's shapes),
# loaded strictly: the peak RSS then shows how many copies of the weights loading keeps.
MODEL_PY = """\
import torch
import torch.nn as nn
from safetensors import safe_open
from safetensors.torch import load_file


class Layer(nn.Module):
    def __init__(self, size):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(size))


class Holder(nn.Module):
    def __init__(self, shapes, num_classes=2):
        super().__init__()
        for name, size in shapes.items():
            self.add_module(name.split(".")[0], Layer(size))
        self.classifier = nn.Linear(3, num_classes)

    def forward(self, x):
        return self.classifier(x.float().mean(dim=(2, 3)) / 255.0)


def load_model(weights_path, num_classes=2):
    with safe_open(weights_path, framework="pt") as handle:
        shapes = {k: handle.get_slice(k).get_shape() for k in handle.keys()}
    shapes = {k: v for k, v in shapes.items() if k.startswith("layer")}
    model = Holder(shapes, num_classes)
    model.load_state_dict(load_file(weights_path), strict=True)
    return model
"""

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
    write_weights(folder / "weights.bin", size)
    _add_head(folder / "weights.bin", folder / "model.safetensors")
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


def _add_head(source: Path, target: Path) -> None:
    """``write_weights``' file plus the classifier's two tensors, so strict loading passes."""
    import numpy as np

    raw = source.read_bytes()
    length = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8 : 8 + length])
    body = raw[8 + length :]
    source.unlink()
    end = len(body)
    extra = np.zeros(8, dtype=np.float32).tobytes()
    header["classifier.weight"] = {"dtype": "F32", "shape": [2, 3], "data_offsets": [end, end + 24]}
    header["classifier.bias"] = {"dtype": "F32", "shape": [2], "data_offsets": [end + 24, end + 32]}
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with target.open("wb") as out:
        out.write(len(text).to_bytes(8, "little") + text)
        out.write(body)
        out.write(extra)


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
