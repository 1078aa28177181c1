"""The bundled examples load and run as the network's loader runs them (SPEC.md §1-§2)."""

from __future__ import annotations

import hashlib
import importlib.util
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from conftest import EXAMPLES

torch = pytest.importorskip("torch")

QUICKSTART = EXAMPLES / "quickstart"
MANIFEST = tomllib.loads((QUICKSTART / "gas.toml").read_text())
BENCH_BATCH = {"image": 32, "video": 4, "audio": 16}


def _load(modality: str, dtype: object) -> object:
    """As the loader does: a lone module, load_model(path, **model kwargs), .to(dtype).eval()."""
    spec_toml = MANIFEST["models"][modality]
    path = QUICKSTART / spec_toml["architecture"]["file"]
    spec = importlib.util.spec_from_file_location(f"submission_{modality}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    kwargs = {"num_classes": spec_toml["num_classes"], **spec_toml.get("model", {})}
    model = module.load_model(str(QUICKSTART / spec_toml["weights"]["path"]), **kwargs)
    assert isinstance(model, torch.nn.Module)
    return model.to("cpu", dtype).eval()


def _batch(modality: str, size: int) -> object:
    pre = MANIFEST["models"][modality]["preprocessing"]
    generator = torch.Generator().manual_seed(0)
    if modality == "audio":
        return torch.rand(size, 96000, generator=generator) * 2 - 1
    h, w = pre["resize"]
    shape = (size, 3, h, w) if modality == "image" else (size, pre["num_frames"], 3, h, w)
    return torch.randint(0, 256, shape, dtype=torch.uint8, generator=generator)


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
@pytest.mark.parametrize("modality", ["image", "video", "audio"])
def test_example_runs_at_benchmark_shapes(modality: str, dtype: str) -> None:
    model = _load(modality, getattr(torch, dtype))
    num_classes = MANIFEST["models"][modality]["num_classes"]
    for size in (1, BENCH_BATCH[modality]):
        with torch.no_grad():
            out = model(_batch(modality, size))
        assert tuple(out.shape) == (size, num_classes)
        assert torch.isfinite(out.float()).all()


def test_generated_weights_match_the_committed_files(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, str(EXAMPLES / "generate.py"), "--out", str(tmp_path)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    for rel in (
        "quickstart/weights/image.safetensors",
        "quickstart/weights/video.safetensors",
        "quickstart/weights/audio.safetensors",
        "onnx-legacy/weights/image.onnx",
    ):
        assert (tmp_path / rel).read_bytes() == (EXAMPLES / rel).read_bytes(), rel


@pytest.mark.parametrize("example", ["quickstart", "onnx-legacy"])
def test_pins_in_the_examples_are_the_files_digests(example: str) -> None:
    manifest = tomllib.loads((EXAMPLES / example / "gas.toml").read_text())
    for spec in manifest["models"].values():
        data = (EXAMPLES / example / spec["weights"]["path"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == spec["weights"]["sha256"]


def test_onnx_example_runs_in_onnxruntime() -> None:
    ort = pytest.importorskip("onnxruntime")
    import numpy as np

    session = ort.InferenceSession(
        str(EXAMPLES / "onnx-legacy" / "weights" / "image.onnx"), providers=["CPUExecutionProvider"]
    )
    for size in (1, 4):
        batch = np.random.default_rng(0).integers(0, 256, (size, 3, 64, 64), dtype=np.uint8)
        (out,) = session.run(None, {"input": batch})
        assert out.shape == (size, 2) and np.isfinite(out).all()
