"""Eval throughput: ``gasbuild eval`` against a plain in-process loop, in the same run.

    python -m bench.eval_bench [--images 1000] [--json]

Both score the same generated 224x224 images with the quickstart image model (its model.py and
weights, ``resize = [224, 224]``): the plain loop decodes (Pillow), crops and resizes (OpenCV),
and calls the model in batches of 32 in one process; ``gasbuild eval`` does the same work split
between the trusted parent (decoding) and the sandboxed child (the model), uncached. The row is
a ratio to the plain loop's throughput (issue 17 asks for at least 0.8x).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
QUICKSTART = REPO / "examples" / "quickstart"
MANIFEST = """\
[models.image]
architecture = { file = "image_model.py" }
weights = { path = "image.safetensors" }
preprocessing = { resize = [224, 224] }
model = { width = 16 }
"""


def make_images(root: Path, count: int) -> None:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for i in range(count):
        klass = ("real", "synthetic")[i % 2]
        folder = root / "image" / klass
        folder.mkdir(parents=True, exist_ok=True)
        pixels = rng.integers(0, 256, (224, 224, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"{i:05d}.png", compress_level=1)


def build_zip(project: Path) -> Path:
    project.mkdir()
    shutil.copy(QUICKSTART / "models" / "image_model.py", project / "image_model.py")
    shutil.copy(QUICKSTART / "weights" / "image.safetensors", project / "image.safetensors")
    (project / "gas.toml").write_text(MANIFEST)
    cmd = [sys.executable, "-m", "gasbuild", "build", "--no-smoke", "-C", str(project)]
    subprocess.run(cmd, check=True, capture_output=True)
    return project / "dist" / "image_detector.zip"


def plain_loop(project: Path, data: Path) -> float:
    """Seconds to decode, resize and score every image in this process (no sandbox)."""
    import numpy as np
    import torch

    from gasbuild.eval.media import center_crop_resize

    torch.set_num_threads(2)
    spec = importlib.util.spec_from_file_location("bench_model", project / "image_model.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    started = time.perf_counter()
    model = module.load_model(str(project / "image.safetensors"), width=16).eval()
    from PIL import Image

    for folder in sorted((data / "image").iterdir()):
        files = sorted(folder.iterdir())
        for start in range(0, len(files), 32):
            arrays = []
            for path in files[start : start + 32]:
                with Image.open(path) as image:
                    rgb = np.array(image.convert("RGB"), dtype=np.uint8)
                arrays.append(np.transpose(center_crop_resize(rgb, (224, 224)), (2, 0, 1)))
            with torch.no_grad():
                model(torch.from_numpy(np.stack(arrays)))
    return time.perf_counter() - started


def gasbuild_eval(zip_path: Path, data: Path) -> float:
    from gasbuild.eval.engine import EvalRequest, evaluate

    started = time.perf_counter()
    result = evaluate(EvalRequest(zip_path, data), None)
    assert result["errors"] == 0
    return time.perf_counter() - started


def run(images: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="gasbuild-evalbench-") as tmp:
        root = Path(tmp)
        make_images(root / "data", images)
        zip_path = build_zip(root / "project")
        plain = plain_loop(root / "project", root / "data")
        ours = gasbuild_eval(zip_path, root / "data")
    return {
        "case": "gasbuild eval vs plain loop",
        "images": images,
        "plain_images_per_s": images / plain,
        "eval_images_per_s": images / ours,
        "ratio": plain / ours,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    row = run(args.images)
    if args.json:
        print(json.dumps(row))
    else:
        print(
            f"{row['case']}: {row['images']} images, plain {row['plain_images_per_s']:.1f}/s, "
            f"eval {row['eval_images_per_s']:.1f}/s, ratio {row['ratio']:.2f}x (>= 0.8x wanted)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
