"""``python -m bench --sizes 256M,1G,4G``: time and memory of gasbuild against the disk's floor.

For each size, a synthetic safetensors model is written to a temp dir; then each case runs
``--repeat`` times in its own process, and we report min and median wall time and the peak
resident set of the process and its children (``getrusage(RUSAGE_CHILDREN)`` in a fresh wrapper
process, so runs never share a high-water mark). Results are ratios against baselines measured
in the same run, never absolute targets:

    L = 2 x (openssl sha256 of the weights) + (cp of the weights)

is the floor of a cold build: the weights must be hashed (their digest keys the cache and the
lock), the zip must be hashed (its digest is the lock's and the upload's), and the zip written
once.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from bench.startup import run_startup, startup_ratios

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results"

MODEL_PY = """\
import torch
import torch.nn as nn
from safetensors.torch import load_file


class Big(nn.Module):
    def __init__(self, num_classes: int = 2) -> None:
        super().__init__()
        self.head = nn.Linear(8, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(x.float().mean(dim=(2, 3)).repeat(1, 3)[:, :8])


def load_model(weights_path: str, num_classes: int = 2) -> nn.Module:
    model = Big(num_classes)
    model.load_state_dict(load_file(weights_path), strict=False)
    return model
"""

GAS_TOML = """\
[wallet]
name = "bench"
hotkey = "bench"
path = "{wallets}"

[models.image]
name = "bench"
architecture = { file = "model.py" }
weights = { path = "model.safetensors" }
preprocessing = { resize = [32, 32] }
"""


# The checkpoint a miner holds: the same tensors, saved with torch.save (zip format).
WRITE_CHECKPOINT = """
import sys, torch
from pathlib import Path
from safetensors.torch import load_file
source = Path(sys.argv[1])
torch.save(load_file(str(source)), source.with_suffix(".pt"))
"""

# How a miner converts by hand: load it all, then save_file (which serialises it all in memory).
HAND_CONVERSION = """
import sys, torch
from safetensors.torch import save_file
save_file(torch.load(sys.argv[1], map_location="cpu", weights_only=True), sys.argv[2])
"""

# What the reference client does: the whole zip in memory, hashed, then one PUT of those bytes.
READ_ALL_UPLOADER = """
import hashlib, json, urllib.request
from bittensor_wallet import Wallet
from gasbuild.publish.epistula import sign_request
keypair = Wallet(name="bench", hotkey="bench", path={wallets!r}).hotkey
data = open({zip!r}, "rb").read()
digest = hashlib.sha256(data).hexdigest()
def call(method, url, body, headers):
    request = urllib.request.Request(url, data=body, method=method, headers=headers)
    with urllib.request.urlopen(request, timeout=600) as answer:
        text = answer.read()
    return json.loads(text) if text else None
def post(path, payload):
    body = json.dumps(payload, separators=(",", ":")).encode()
    headers = {{"Content-Type": "application/json", **sign_request(keypair, body)}}
    return call("POST", {url!r} + path, body, headers)
presigned = post("/presigned", {{"filename": "image_detector.zip", "file_size": len(data),
    "expected_hash": digest, "content_type": "application/octet-stream",
    "modality": "image", "vertical": "general"}})["data"]
call("PUT", presigned["presigned_url"], data, {{"Content-Type": "application/octet-stream"}})
post("/confirm", {{"model_id": presigned["model_id"], "file_hash": digest}})
"""


@dataclass
class Measurement:
    case: str
    size_bytes: int
    runs: list[float]
    peak_rss_mib: float

    @property
    def best(self) -> float:
        return min(self.runs)

    @property
    def median(self) -> float:
        return statistics.median(self.runs)


def parse_size(text: str) -> int:
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    text = text.strip().upper().removesuffix("B").removesuffix("I")
    if text[-1] in units:
        return int(float(text[:-1]) * units[text[-1]])
    return int(text)


def write_weights(path: Path, size: int) -> None:
    """A safetensors file of about ``size`` bytes: float32 tensors of normal noise (incompressible
    like real weights), written in 64 MiB tensors."""
    rng = np.random.default_rng(0)
    chunk = 16 << 20  # floats per tensor: 64 MiB
    counts = []
    remaining = max(size // 4, 1)
    while remaining > 0:
        counts.append(min(chunk, remaining))
        remaining -= counts[-1]
    header: dict[str, object] = {}
    offset = 0
    for i, n in enumerate(counts):
        header[f"layer{i:04d}.weight"] = {
            "dtype": "F32",
            "shape": [n],
            "data_offsets": [offset, offset + 4 * n],
        }
        offset += 4 * n
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    with path.open("wb") as f:
        f.write(len(raw).to_bytes(8, "little"))
        f.write(raw)
        for n in counts:
            f.write(rng.standard_normal(n, dtype=np.float32).tobytes())


def run_measured(cmd: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float]:
    """Wall time and peak RSS (MiB) of ``cmd`` and its children, in a fresh wrapper process."""
    wrapper = (
        "import json, resource, subprocess, sys, time\n"
        "cmd = json.loads(sys.argv[1])\n"
        "t = time.perf_counter()\n"
        "done = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)\n"
        "rc = done.returncode\n"
        "sys.stderr.write(done.stderr.decode(errors='replace')[-4000:] if rc else '')\n"
        "dt = time.perf_counter() - t\n"
        "rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024\n"
        "print(json.dumps([rc, dt, rss]))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", wrapper, json.dumps(cmd)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    rc, seconds, rss = json.loads(out.stdout.strip().splitlines()[-1])
    if rc != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {rc}: {out.stderr[-2000:]}")
    return float(seconds), float(rss)


def gasbuild_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "gasbuild", *args]


class Bench:
    def __init__(
        self, workdir: Path, size: int, repeat: int, *, skip_hand_build: bool = False
    ) -> None:
        self.skip_hand_build = skip_hand_build
        self.workdir = workdir
        self.size = size
        self.repeat = repeat
        self.project = workdir / "project"
        self.project.mkdir()
        (self.project / "model.py").write_text(MODEL_PY)
        self.wallets = workdir / "wallets"
        (self.project / "gas.toml").write_text(GAS_TOML.replace("{wallets}", str(self.wallets)))
        self.weights = self.project / "model.safetensors"
        write_weights(self.weights, size)
        self.cache = workdir / "cache"
        self.env = {**os.environ, "GASBUILD_CACHE_DIR": str(self.cache)}
        self.results: list[Measurement] = []
        self.extra: dict[str, object] = {}

    def measure(
        self,
        case: str,
        cmd: list[str],
        before: list[list[str]] | None = None,
        prepare: object = None,
    ) -> Measurement:
        runs: list[float] = []
        peak = 0.0
        for _ in range(self.repeat):
            if callable(prepare):
                prepare()
            for step in before or []:
                subprocess.run(
                    step,
                    cwd=self.project,
                    env=self.env,
                    check=True,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            seconds, rss = run_measured(cmd, self.project, self.env)
            runs.append(seconds)
            peak = max(peak, rss)
        result = Measurement(case, self.size, runs, peak)
        self.results.append(result)
        print(
            f"  {case:<28} min {result.best:8.3f} s  median {result.median:8.3f} s"
            f"  peak RSS {peak:7.1f} MiB",
            flush=True,
        )
        return result

    def clear_cache(self) -> None:
        shutil.rmtree(self.cache, ignore_errors=True)
        shutil.rmtree(self.project / "dist", ignore_errors=True)

    def touch_model_py(self) -> None:
        path = self.project / "model.py"
        path.write_text(path.read_text() + f"# edit {time.time_ns()}\n")

    def run(self) -> None:
        w = str(self.weights)
        self.measure("openssl sha256", ["openssl", "dgst", "-sha256", w])
        self.measure("cp", ["cp", w, str(self.workdir / "copy.bin")])
        hand = (
            "import hashlib, subprocess\n"
            "files = ['model.py', 'model.safetensors']\n"
            "subprocess.run(['zip', '-q', '-r', '../hand.zip', *files], check=True)\n"
            "hashlib.sha256(open('../hand.zip', 'rb').read()).hexdigest()\n"
        )
        if not self.skip_hand_build:
            self.measure(
                "hand build (zip + read-all)",
                [sys.executable, "-c", hand],
                prepare=lambda: (self.workdir / "hand.zip").unlink(missing_ok=True),
            )
        build = gasbuild_cmd("build", "--no-smoke")
        self.measure("gasbuild cold build", build, prepare=self.clear_cache)
        self.measure("gasbuild no-op rebuild", build)
        run_startup(self)
        self.measure("gasbuild edit model.py", build, prepare=self.touch_model_py)
        zip_path = str(self.project / "dist" / "image_detector.zip")
        self.measure("gasbuild check (no smoke)", gasbuild_cmd("check", "--no-smoke", zip_path))
        self.measure(
            "python startup (import gasbuild)", [sys.executable, "-c", "import gasbuild.cli"]
        )
        (self.workdir / "copy.bin").unlink(missing_ok=True)
        self.run_push(zip_path)
        self.run_convert()

    def run_convert(self) -> None:
        """A .pt checkpoint of the same tensors: gasbuild's conversion stage against the
        hand conversion a miner would write (torch.load, then safetensors' save_file)."""
        checkpoint = self.project / "model.pt"
        subprocess.run([sys.executable, "-c", WRITE_CHECKPOINT, str(self.weights)], check=True)
        self.weights.unlink()  # only the checkpoint now: the build must convert it
        manifest = self.project / "gas.toml"
        manifest.write_text(manifest.read_text().replace("model.safetensors", "model.pt"))
        out = str(self.workdir / "hand.safetensors")
        self.measure(
            "hand conversion (load + save)",
            [sys.executable, "-c", HAND_CONVERSION, str(checkpoint), out],
        )
        Path(out).unlink(missing_ok=True)
        build = gasbuild_cmd("build", "--no-smoke")
        self.measure("gasbuild cold build from .pt", build, prepare=self.clear_cache)
        self.measure("gasbuild no-op rebuild from .pt", build)

    def run_push(self, zip_path: str) -> None:
        """`gasbuild push` and a read-all uploader against the same loopback fake upload API."""
        sys.path.insert(0, str(REPO / "tests"))
        from fakes.gas_api import serve_gas_api
        from fakes.publishing import make_wallet

        address = make_wallet(self.wallets, "bench", ("bench",))["bench"]
        chain = self.workdir / "chain.json"
        with serve_gas_api() as server:

            def fresh() -> None:
                """Each repeat really uploads: empty server state, receipts and chain."""
                server.accepted.clear()
                server.uploads.clear()
                server.confirmations.clear()
                shutil.rmtree(self.project / ".gasbuild", ignore_errors=True)
                chain.write_text(json.dumps({"registered": [address]}))

            self.env.update(
                GASBUILD_UPLOAD_URL=server.base_url,
                GASBUILD_CHAIN=f"memory:{chain}",
                NO_PROXY="127.0.0.1,localhost",
            )
            push = gasbuild_cmd("push", "--yes", "--no-smoke")
            self.measure("gasbuild push", push, prepare=fresh)
            script = READ_ALL_UPLOADER.format(
                wallets=str(self.wallets), url=server.base_url, zip=zip_path
            )
            self.measure("read-all upload", [sys.executable, "-c", script], prepare=fresh)

    def ratios(self) -> dict[str, float]:
        by = {m.case: m.best for m in self.results}
        floor = 2 * by["openssl sha256"] + by["cp"]
        out = {"L (2 x sha256 + cp), s": floor}
        for m in self.results:
            out[f"{m.case} / L"] = m.best / floor
        out.update(startup_ratios(by))
        hand = {m.case: m for m in self.results}.get("hand conversion (load + save)")
        if hand is not None:
            for m in self.results:
                if m.case.endswith("from .pt"):
                    out[f"{m.case} / hand conversion"] = m.best / hand.best
                    out[f"{m.case} peak RSS / hand conversion"] = m.peak_rss_mib / hand.peak_rss_mib
        return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1G", help="comma-separated weight sizes (256M,1G,4G)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--name", default=None, help="results file name (default: by sizes)")
    parser.add_argument("--workdir", type=Path, default=None, help="temp dir (default: system)")
    parser.add_argument(
        "--results-dir", type=Path, default=RESULTS, help="where to write <name>.json"
    )
    parser.add_argument(
        "--skip-hand-build",
        action="store_true",
        help="skip the zip -r baseline (it DEFLATEs the weights: minutes at 4 GiB)",
    )
    args = parser.parse_args(argv)
    sizes = [parse_size(s) for s in args.sizes.split(",")]
    report: dict[str, object] = {
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
        },
        "sizes": {},
    }
    for size in sizes:
        print(f"size {size / (1 << 20):.0f} MiB", flush=True)
        with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
            bench = Bench(Path(tmp), size, args.repeat, skip_hand_build=args.skip_hand_build)
            bench.run()
            ratios = bench.ratios()
            for key, value in ratios.items():
                print(f"  {key:<40} {value:8.3f}")
            report["sizes"][str(size)] = {  # type: ignore[index]
                "measurements": [
                    {**asdict(m), "min": m.best, "median": m.median} for m in bench.results
                ],
                "ratios": ratios,
                **bench.extra,
            }
    args.results_dir.mkdir(parents=True, exist_ok=True)
    name = args.name or "sizes-" + args.sizes.replace(",", "_")
    out = args.results_dir / f"{name}.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
