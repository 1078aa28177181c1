"""Regenerate the example weights, deterministically: ``python examples/generate.py [--out DIR]``.

Each quickstart model is built on the CPU from its own ``model.py`` and given a fixed, explicit
initialisation (seeded ``torch.Generator``, He-normal convolutions, a near-zero classifier head so
the untrained logits stay close to uniform, i.e. honestly calibrated), then saved with safetensors.
The legacy ONNX model is assembled node by node with ``onnx.helper``. Running this twice gives
byte-identical files, and ``tests/test_examples.py`` checks the committed files against a fresh run.
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

HERE = Path(__file__).resolve().parent
SEED = 1234
WIDTH = 16  # must match `model = { width = 16 }` in quickstart/gas.toml
HEAD_STD = 0.01  # classifier head init: logits near 0, probabilities near uniform
# modality -> number of classes (must match quickstart/gas.toml)
NUM_CLASSES = {"image": 2, "video": 3, "audio": 2}


def _load_module(path: Path) -> ModuleType:
    """Import a model.py as a lone module, as the network's loader does."""
    spec = importlib.util.spec_from_file_location(f"example_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _build(modality: str, module: ModuleType) -> Any:
    """The untrained network of one modality, from its model.py."""
    num_classes = NUM_CLASSES[modality]
    if modality == "image":
        return module.ImageDetector(num_classes=num_classes, width=WIDTH)
    if modality == "video":
        return module.VideoDetector(num_classes=num_classes, width=WIDTH)
    return module.AudioDetector(num_classes=num_classes, width=WIDTH)


def _initial_state(model: Any, seed: int) -> dict[str, Any]:
    """A fixed initialisation that does not depend on torch's default init schemes."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    state: dict[str, Any] = {}
    for name, tensor in sorted(model.state_dict().items()):
        if name.startswith("head.") and name.endswith(".weight"):
            value = torch.randn(tensor.shape, generator=generator) * HEAD_STD
        elif name.endswith(".weight"):
            fan_in = tensor[0].numel()
            value = torch.randn(tensor.shape, generator=generator) * math.sqrt(2.0 / fan_in)
        elif name.endswith(".bias"):
            value = torch.zeros(tensor.shape)
        else:  # buffers (normalisation mean/std) keep their values
            value = tensor.detach().clone()
        state[name] = value.to(torch.float32).contiguous()
    return state


def _publish(path: Path) -> None:
    """safetensors writes 0600 files; make them ordinary readable files."""
    os.chmod(path, 0o644)


def make_weights(out: Path) -> list[Path]:
    """Write quickstart/weights/{image,video,audio}.safetensors under ``out``."""
    import torch
    from safetensors.torch import save_file

    torch.manual_seed(SEED)
    written = []
    for index, modality in enumerate(NUM_CLASSES):
        module = _load_module(HERE / "quickstart" / "models" / f"{modality}_model.py")
        model = _build(modality, module)
        state = _initial_state(model, SEED + index)
        model.load_state_dict(state, strict=True)  # the saved keys are exactly the model's
        path = out / "quickstart" / "weights" / f"{modality}.safetensors"
        path.parent.mkdir(parents=True, exist_ok=True)
        save_file(state, str(path), metadata=None)
        _publish(path)
        written.append(path)
    return written


def make_onnx(out: Path) -> Path:
    """A tiny legacy image detector: uint8 [batch, 3, 64, 64] -> float32 logits [batch, 2]."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(SEED)
    conv_w = (rng.standard_normal((8, 3, 3, 3)) * math.sqrt(2.0 / 27)).astype(np.float32)
    fc_w = (rng.standard_normal((2, 8)) * 0.1).astype(np.float32)
    initializers = [
        numpy_helper.from_array(np.array(255.0, dtype=np.float32), "scale"),
        numpy_helper.from_array(conv_w, "conv.weight"),
        numpy_helper.from_array(np.zeros(8, dtype=np.float32), "conv.bias"),
        numpy_helper.from_array(fc_w, "fc.weight"),
        numpy_helper.from_array(np.zeros(2, dtype=np.float32), "fc.bias"),
    ]
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
        initializer=initializers,
        doc_string="uint8 RGB [batch, 3, 64, 64] -> logits [batch, 2] = [real, synthetic]",
    )
    model = helper.make_model(
        graph,
        producer_name="gasbuild-examples",
        producer_version="1",
        doc_string="gasbuild example: a tiny legacy-format (ONNX) image detector, untrained.",
        opset_imports=[helper.make_opsetid("", 17)],
    )
    model.ir_version = 8  # opset 17 / IR 8: loadable by every onnxruntime since 1.13
    onnx.checker.check_model(model, full_check=True)
    path = out / "onnx-legacy" / "weights" / "image.onnx"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(model.SerializeToString(deterministic=True))
    _publish(path)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", type=Path, default=HERE, help="examples root to write into (default: examples/)"
    )
    args = parser.parse_args(argv)
    for path in [*make_weights(args.out), make_onnx(args.out)]:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
