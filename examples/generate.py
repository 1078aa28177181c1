"""Regenerate the example weights, deterministically: ``python examples/generate.py``.

Each example model is built on the CPU with a fixed seed and saved with safetensors; the legacy
ONNX model is assembled with onnx.helper. Running this twice gives byte-identical files, and a
test checks the committed files against a fresh run.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
MODELS = {
    "image": ("ImageDetector", 2),
    "video": ("VideoDetector", 3),
    "audio": ("AudioDetector", 2),
}


def _load_module(path: Path) -> object:
    spec = importlib.util.spec_from_file_location(f"example_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make_weights(out: Path) -> list[Path]:
    import torch
    from safetensors.torch import save_file

    written = []
    for modality, (cls_name, num_classes) in MODELS.items():
        module = _load_module(HERE / "quickstart" / "models" / f"{modality}_model.py")
        torch.manual_seed(1234)
        model = getattr(module, cls_name)(num_classes=num_classes, width=16)
        state = {k: v.detach().contiguous().clone() for k, v in model.state_dict().items()}
        path = out / "quickstart" / "weights" / f"{modality}.safetensors"
        path.parent.mkdir(parents=True, exist_ok=True)
        save_file(state, str(path))
        written.append(path)
    return written


def make_onnx(out: Path) -> Path:
    """A tiny legacy image detector: uint8 [batch, 3, 64, 64] -> logits [batch, 2]."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(1234)
    conv_w = numpy_helper.from_array(
        (rng.standard_normal((8, 3, 3, 3)) * 0.1).astype(np.float32), "conv.weight"
    )
    conv_b = numpy_helper.from_array(np.zeros(8, dtype=np.float32), "conv.bias")
    fc_w = numpy_helper.from_array(
        (rng.standard_normal((2, 8)) * 0.1).astype(np.float32), "fc.weight"
    )
    fc_b = numpy_helper.from_array(np.zeros(2, dtype=np.float32), "fc.bias")
    scale = numpy_helper.from_array(np.array(255.0, dtype=np.float32), "scale")
    nodes = [
        helper.make_node("Cast", ["input"], ["x_float"], to=TensorProto.FLOAT),
        helper.make_node("Div", ["x_float", "scale"], ["x_scaled"]),
        helper.make_node(
            "Conv",
            ["x_scaled", "conv.weight", "conv.bias"],
            ["conv"],
            kernel_shape=[3, 3],
            strides=[2, 2],
            pads=[1, 1, 1, 1],
        ),
        helper.make_node("Relu", ["conv"], ["relu"]),
        helper.make_node("GlobalAveragePool", ["relu"], ["pooled"]),
        helper.make_node("Flatten", ["pooled"], ["flat"], axis=1),
        helper.make_node("Gemm", ["flat", "fc.weight", "fc.bias"], ["logits"], transB=1),
    ]
    graph = helper.make_graph(
        nodes,
        "legacy_image_detector",
        [helper.make_tensor_value_info("input", TensorProto.UINT8, ["batch", 3, 64, 64])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 2])],
        initializer=[conv_w, conv_b, fc_w, fc_b, scale],
    )
    model = helper.make_model(
        graph,
        producer_name="gasbuild-examples",
        producer_version="1",
        opset_imports=[helper.make_opsetid("", 17)],
    )
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    path = out / "onnx-legacy" / "weights" / "image.onnx"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(model.SerializeToString(deterministic=True))
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE, help="examples root (default: here)")
    args = parser.parse_args(argv)
    for path in [*make_weights(args.out), make_onnx(args.out)]:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
