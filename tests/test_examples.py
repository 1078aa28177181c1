"""The bundled examples load and run as the network's loader runs them (SPEC.md §1-§3).

Each quickstart model.py is imported as a lone module, called as ``load_model(path, **kwargs)``
with the manifest's ``num_classes`` and ``model`` extras, cast with ``.to("cpu", dtype).eval()``
and run under ``torch.no_grad()`` on the benchmark's input shapes and dtypes. The weights must be
exactly what ``examples/generate.py`` makes, and the pins in the manifests their digests.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

torch = pytest.importorskip("torch")

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
QUICKSTART = EXAMPLES / "quickstart"
ONNX_MODEL = EXAMPLES / "onnx-legacy" / "weights" / "image.onnx"
MODALITIES = ("image", "video", "audio")
BENCH_BATCH = {"image": 32, "video": 4, "audio": 16}  # SPEC.md §1
GENERATED = (
    "quickstart/weights/image.safetensors",
    "quickstart/weights/video.safetensors",
    "quickstart/weights/audio.safetensors",
    "onnx-legacy/weights/image.onnx",
)


def _manifest(example: str) -> dict[str, Any]:
    return tomllib.loads((EXAMPLES / example / "gas.toml").read_text(encoding="utf-8"))


MANIFEST = _manifest("quickstart")


def _load(modality: str, dtype: Any) -> Any:
    """As the loader does: a lone module, load_model(path, **model kwargs), .to(...).eval()."""
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


def _batch(modality: str, size: int, hw: tuple[int, int] | None = None) -> Any:
    """A dummy batch of the benchmark's shape and dtype (inputs are never cast by the loader)."""
    pre = MANIFEST["models"][modality]["preprocessing"]
    generator = torch.Generator().manual_seed(0)
    if modality == "audio":
        return torch.rand(size, 96000, generator=generator) * 2 - 1  # float32 in [-1, 1]
    h, w = hw or pre["resize"]
    shape = (size, 3, h, w) if modality == "image" else (size, pre["num_frames"], 3, h, w)
    return torch.randint(0, 256, shape, dtype=torch.uint8, generator=generator)


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
@pytest.mark.parametrize("modality", MODALITIES)
def test_example_runs_at_benchmark_shapes(modality: str, dtype: str) -> None:
    model = _load(modality, getattr(torch, dtype))
    num_classes = MANIFEST["models"][modality]["num_classes"]
    for size in (1, BENCH_BATCH[modality]):
        with torch.no_grad():
            out = model(_batch(modality, size))
        assert tuple(out.shape) == (size, num_classes)
        assert torch.isfinite(out.float()).all()


@pytest.mark.parametrize("hw", [(1, 1), (37, 50), (224, 160)])
@pytest.mark.parametrize("modality", ["image", "video"])
def test_visual_examples_accept_any_size(modality: str, hw: tuple[int, int]) -> None:
    model = _load(modality, torch.float32)
    with torch.no_grad():
        out = model(_batch(modality, 2, hw))
    assert tuple(out.shape) == (2, MANIFEST["models"][modality]["num_classes"])


def test_untrained_logits_are_near_uniform() -> None:
    """The head is initialised near zero: untrained models do not claim confidence (Brier)."""
    for modality in MODALITIES:
        with torch.no_grad():
            probs = _load(modality, torch.float32)(_batch(modality, 2)).softmax(dim=1)
        num_classes = MANIFEST["models"][modality]["num_classes"]
        assert torch.allclose(probs, torch.full_like(probs, 1 / num_classes), atol=0.05)


ALLOWED_MODULES = {
    "torch",
    "torch.nn",
    "torch.nn.functional",
    "safetensors.torch",
    "math",
    "typing",
}
BLOCKED_CALLS = {"eval", "exec", "compile", "getattr", "setattr", "globals", "locals", "__import__"}
BLOCKED_NAMES = {"open", "vars", "os", "sys", "pathlib", "__builtins__"}


def _is_super_init(node: ast.Attribute) -> bool:
    """``super().__init__``: the one dunder an nn.Module subclass cannot avoid."""
    value = node.value
    return (
        node.attr == "__init__"
        and isinstance(value, ast.Call)
        and isinstance(value.func, ast.Name)
        and value.func.id == "super"
        and not value.args
    )


@pytest.mark.parametrize("modality", MODALITIES)
def test_model_py_keeps_the_static_rules(modality: str) -> None:
    """Stricter than the network's analyzer (SPEC.md §2): the examples must never be flagged."""
    path = QUICKSTART / MANIFEST["models"][modality]["architecture"]["file"]
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    problems = []
    for node in ast.walk(tree):
        line = getattr(node, "lineno", 0)
        if isinstance(node, ast.Import):
            problems += [(line, a.name) for a in node.names if a.name not in ALLOWED_MODULES]
        elif isinstance(node, ast.ImportFrom):
            if node.level or node.module not in ALLOWED_MODULES:
                problems.append((line, f"from {node.module}"))
        elif isinstance(node, ast.Call):
            func = node.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
            if name in BLOCKED_CALLS:
                problems.append((line, f"call {name}"))
        elif isinstance(node, ast.Attribute) and node.attr.startswith("__"):
            if not _is_super_init(node):
                problems.append((line, f"attribute {node.attr}"))
        elif isinstance(node, ast.Name) and (node.id in BLOCKED_NAMES or node.id.startswith("__")):
            problems.append((line, f"name {node.id}"))
    assert problems == []
    load_model = next(
        n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "load_model"
    )
    assert [a.arg for a in load_model.args.args][:2] == ["weights_path", "num_classes"]


def test_generated_weights_match_the_committed_files(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, str(EXAMPLES / "generate.py"), "--out", str(tmp_path)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    for rel in GENERATED:
        committed = (EXAMPLES / rel).read_bytes()
        assert len(committed) < 200_000, rel
        assert (tmp_path / rel).read_bytes() == committed, f"{rel}: run examples/generate.py"


@pytest.mark.parametrize("example", ["quickstart", "onnx-legacy"])
def test_pins_in_the_examples_are_the_files_digests(example: str) -> None:
    models = _manifest(example)["models"]
    assert models
    for spec in models.values():
        data = (EXAMPLES / example / spec["weights"]["path"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == spec["weights"]["sha256"]


def test_onnx_example_is_a_valid_legacy_graph() -> None:
    onnx = pytest.importorskip("onnx")
    model = onnx.load(str(ONNX_MODEL))
    onnx.checker.check_model(model, full_check=True)
    assert model.ir_version == 8
    assert [(o.domain, o.version) for o in model.opset_import] == [("", 17)]
    assert not any(t.data_location == onnx.TensorProto.EXTERNAL for t in model.graph.initializer)

    def dims(value_info: Any) -> list[Any]:
        return [d.dim_param or d.dim_value for d in value_info.type.tensor_type.shape.dim]

    (inp,) = model.graph.input
    (out,) = model.graph.output
    assert (inp.name, dims(inp)) == ("input", ["batch", 3, 64, 64])
    assert (out.name, dims(out)) == ("logits", ["batch", 2])
    assert out.type.tensor_type.elem_type == onnx.TensorProto.FLOAT


def test_onnx_example_runs_in_onnxruntime() -> None:
    ort = pytest.importorskip("onnxruntime")
    import numpy as np

    session = ort.InferenceSession(str(ONNX_MODEL), providers=["CPUExecutionProvider"])
    for size in (1, 4):
        batch = np.random.default_rng(0).integers(0, 256, (size, 3, 64, 64), dtype=np.uint8)
        (out,) = session.run(None, {"input": batch})
        assert out.shape == (size, 2)
        assert out.dtype == np.float32
        assert np.isfinite(out).all()
