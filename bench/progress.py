"""``python -m bench.progress --size 1G``: what the byte bars cost the loops they watch.

Hashing the weights (``blobs.measure_file``) and writing the zip (``package.write_zip``) are
timed in this process without a bar and with a live rich bar (``ui.progress_factory`` on a
console forced to be a terminal, drawing to /dev/null at rich's own refresh rate), alternating
``--repeat`` times so both see the same machine load and page cache. Reported: min and median
of each, the ratio of the mins (with bar / without), which should stay within noise of 1.0 (the
bar is told once per 1 MiB chunk, never per byte), and the cost of one ``advance`` alone.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench.__main__ import RESULTS, parse_size


def _timed(run: Callable[[], object]) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def bench_size(size: int, repeat: int, tmp: Path) -> dict[str, object]:
    from rich.console import Console

    from gasbuild import ui
    from gasbuild.blobs import measure_file
    from gasbuild.stages import package

    weights = tmp / "weights.bin"
    with weights.open("wb") as f:
        block = os.urandom(1 << 20)
        for _ in range(size >> 20):
            f.write(block)
    devnull = open(os.devnull, "w")  # noqa: SIM115 - closed below
    ui.err = Console(file=devnull, force_terminal=True, width=80)
    bars = ui.progress_factory()

    def hash_plain() -> object:
        return measure_file(weights)

    def hash_bar() -> object:
        bar = bars("image: hashing weights.bin", size)
        try:
            return measure_file(weights, bar.advance)
        finally:
            bar.finish()

    blob = measure_file(weights)  # warm the page cache
    entries = [package.Entry.file("model.safetensors", blob)]

    def zip_plain() -> object:
        return package.write_zip(tmp / "plain.zip", entries)

    def zip_bar() -> object:
        bar = bars("writing image_detector.zip", size)
        try:
            return package.write_zip(tmp / "bar.zip", entries, progress=bar.advance)
        finally:
            bar.finish()

    times: dict[str, list[float]] = {k: [] for k in ("hash", "hash+bar", "zip", "zip+bar")}
    for _ in range(repeat):
        times["hash"].append(_timed(hash_plain))
        times["hash+bar"].append(_timed(hash_bar))
        times["zip"].append(_timed(zip_plain))
        times["zip+bar"].append(_timed(zip_bar))
    bar = bars("advance", None)  # one advance alone: what the loops pay per chunk
    calls = 100_000
    per_call = _timed(lambda: [bar.advance(1 << 20) for _ in range(calls)]) / calls
    bar.finish()
    ui.stop_progress()
    devnull.close()
    row: dict[str, object] = {
        case: {"min": min(t), "median": statistics.median(t)} for case, t in times.items()
    }
    row["advance_us"] = per_call * 1e6
    row["advance_ms_per_gib"] = per_call * 1024 * 1e3
    row["ratios"] = {
        "hash+bar / hash": min(times["hash+bar"]) / min(times["hash"]),
        "zip+bar / zip": min(times["zip+bar"]) / min(times["zip"]),
    }
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.progress", description=__doc__)
    parser.add_argument("--sizes", default="1G")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--name", default="progress")
    args = parser.parse_args(argv)
    rows = {}
    with tempfile.TemporaryDirectory(prefix="gasbuild-bench-progress-") as tmp:
        for text in args.sizes.split(","):
            rows[text] = bench_size(parse_size(text), args.repeat, Path(tmp))
            print(text, json.dumps(rows[text]), flush=True)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{args.name}.json").write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
