"""Build the corpus of bad (and good) submissions from small fixtures.

Run from tests/: ``python -m corpus.make_corpus OUT``.

Each case is a zip written from code, never an opaque binary: a valid base submission per
modality and format, then one deliberate defect per case. ``CASES`` pairs each zip with the code
``gasbuild check`` must report (``None``: the submission must pass with zero findings).
"""

from __future__ import annotations

import io
import json
import struct
import sys
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from static_cases import BYPASSES

# --------------------------------------------------------------------------------------------
# The valid base: a tiny model whose state dict is written with safetensors.numpy (no torch).

MODEL_PY = '''\
"""A tiny detector used by the corpus."""

import torch
import torch.nn as nn
from safetensors.torch import load_file


class Tiny(nn.Module):
    def __init__(self, num_classes: int = 2, channels: int = 3) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, 4, kernel_size=3, padding=1)
        self.head = nn.Linear(4, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dtype = self.head.weight.dtype
        batch = x.shape[0]
        if x.dim() == 5:  # video [B, T, 3, H, W]: frames through the same trunk
            x = x.flatten(0, 1)
        if x.dim() == 2:  # audio [B, 96000]: a 3 x 1 x 96 "image" of the first samples
            x = x.view(batch, 1, 1, -1).expand(-1, 3, 1, -1)[:, :, :, :96]
        x = x.to(dtype) / 255.0
        feats = self.conv(x).mean(dim=(2, 3)).view(batch, -1, 4).mean(dim=1)
        return self.head(feats)
{extra}

def load_model(weights_path: str, num_classes: int = 2) -> nn.Module:
    model = Tiny(num_classes=num_classes)
    model.load_state_dict(load_file(weights_path), strict=True)
    return model
'''

VIDEO_FORWARD_FIX = """

def _unused() -> None:
    return None
"""


def state_dict(num_classes: int = 2) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    return {
        "conv.weight": (rng.standard_normal((4, 3, 3, 3)) * 0.1).astype(np.float32),
        "conv.bias": np.zeros(4, dtype=np.float32),
        "head.weight": (rng.standard_normal((num_classes, 4)) * 0.1).astype(np.float32),
        "head.bias": np.zeros(num_classes, dtype=np.float32),
    }


def safetensors_bytes(tensors: dict[str, np.ndarray] | None = None) -> bytes:
    from safetensors.numpy import save

    return bytes(save(tensors if tensors is not None else state_dict()))


def raw_safetensors(header: object, data: bytes = b"", length: int | None = None) -> bytes:
    raw = json.dumps(header).encode() if not isinstance(header, bytes) else header
    size = len(raw) if length is None else length
    return struct.pack("<Q", size) + raw + data


CONFIGS = {
    "image": 'name: "corpus-image"\nversion: "1.0.0"\nmodality: "image"\npreprocessing:\n'
    '  resize: [32, 32]\nmodel:\n  num_classes: 2\n  weights_file: "model.safetensors"\n',
    "video": 'name: "corpus-video"\nversion: "1.0.0"\nmodality: "video"\npreprocessing:\n'
    "  resize: [32, 32]\n  num_frames: 4\nmodel:\n  num_classes: 2\n"
    '  weights_file: "model.safetensors"\n',
    "audio": 'name: "corpus-audio"\nversion: "1.0.0"\nmodality: "audio"\npreprocessing:\n'
    "  sample_rate: 16000\n  duration_seconds: 6.0\nmodel:\n  num_classes: 2\n"
    '  weights_file: "model.safetensors"\n',
}


def base_files(modality: str = "image") -> dict[str, bytes]:
    return {
        "model_config.yaml": CONFIGS[modality].encode(),
        "model.py": MODEL_PY.format(extra="").encode(),
        "model.safetensors": safetensors_bytes(),
    }


def with_model_py(source: str) -> dict[str, bytes]:
    files = base_files()
    files["model.py"] = source.encode()
    return files


def model_py_with(extra_top: str = "", extra_body: str = "") -> str:
    return extra_top + MODEL_PY.format(extra=extra_body)


def with_config(text: str) -> dict[str, bytes]:
    files = base_files()
    files["model_config.yaml"] = text.encode()
    return files


def config_edit(old: str, new: str, modality: str = "image") -> dict[str, bytes]:
    files = base_files(modality)
    text = CONFIGS[modality]
    assert old in text, old
    files["model_config.yaml"] = text.replace(old, new).encode()
    return files


def with_weights(data: bytes) -> dict[str, bytes]:
    files = base_files()
    files["model.safetensors"] = data
    return files


def onnx_bytes(
    input_shape: list[object] | None = None,
    output_classes: object = 2,
    external: bool = False,
    elem: int | None = None,
) -> bytes:
    from onnx import TensorProto, helper, numpy_helper

    shape = input_shape or ["batch", 3, 32, 32]
    rank = len(shape)
    classes = output_classes if isinstance(output_classes, int) else 2
    weight = numpy_helper.from_array(np.ones((classes, 1), dtype=np.float32), "w")
    if external:
        weight.data_location = TensorProto.EXTERNAL
        entry = weight.external_data.add()
        entry.key, entry.value = "location", "weights.bin"
        weight.ClearField("raw_data")
    axes = list(range(1, rank))
    nodes = [
        helper.make_node("Cast", ["input"], ["xf"], to=TensorProto.FLOAT),
        helper.make_node("ReduceMean", ["xf"], ["m"], axes=axes, keepdims=0),
        helper.make_node("Unsqueeze", ["m", "one"], ["m2"]),
        helper.make_node("Transpose", ["w"], ["wt"], perm=[1, 0]),
        helper.make_node("MatMul", ["m2", "wt"], ["logits"]),
    ]
    inits = [
        weight,
        numpy_helper.from_array(np.array([1], dtype=np.int64), "one"),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("input", elem or TensorProto.UINT8, shape)],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", output_classes])],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model.SerializeToString()


# --------------------------------------------------------------------------------------------
# Zip writers: the honest one, and hand-made evil ones.


def zip_files(
    files: dict[str, bytes],
    *,
    method: int = zipfile.ZIP_DEFLATED,
    attrs: dict[str, int] | None = None,
    flags: dict[str, int] | None = None,
) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, data in files.items():
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = method
            info.external_attr = (attrs or {}).get(name, 0o100644) << 16
            zf.writestr(info, data)
    out = bytearray(buffer.getvalue())
    for name, bit in (flags or {}).items():
        _set_flag(out, name.encode(), bit)
    return bytes(out)


def _set_flag(data: bytearray, name: bytes, bit: int) -> None:
    """Set a general-purpose flag bit on both headers of an entry (e.g. 0x1: encrypted)."""
    for sig, flag_at, name_len_at, name_at in (
        (b"PK\x03\x04", 6, 26, 30),
        (b"PK\x01\x02", 8, 28, 46),
    ):
        pos = 0
        while (pos := data.find(sig, pos)) >= 0:
            n = struct.unpack_from("<H", data, pos + name_len_at)[0]
            if bytes(data[pos + name_at : pos + name_at + n]) == name:
                flags = struct.unpack_from("<H", data, pos + flag_at)[0] | bit
                struct.pack_into("<H", data, pos + flag_at, flags)
            pos += 4


def zip_lying_local_size(files: dict[str, bytes]) -> bytes:
    data = bytearray(zip_files(files, method=zipfile.ZIP_STORED))
    pos = data.find(b"PK\x03\x04")
    size = struct.unpack_from("<I", data, pos + 22)[0]
    struct.pack_into("<I", data, pos + 22, size + 1000)  # local uncompressed size lies
    return bytes(data)


def zip_overlapping(files: dict[str, bytes]) -> bytes:
    """Two central-directory records pointing at the same local header (bomb overlap)."""
    data = bytearray(zip_files(files, method=zipfile.ZIP_STORED))
    first = data.find(b"PK\x01\x02")
    second = data.find(b"PK\x01\x02", first + 4)
    offset = struct.unpack_from("<I", data, first + 42)[0]
    struct.pack_into("<I", data, second + 42, offset)
    return bytes(data)


def zip_bomb() -> bytes:
    files = base_files()
    files["model.safetensors"] = raw_safetensors(
        {"t": {"dtype": "U8", "shape": [4 << 20], "data_offsets": [0, 4 << 20]}},
        b"\x00" * (4 << 20),
    )
    return zip_files(files)


# --------------------------------------------------------------------------------------------
# The cases.


@dataclass
class Case:
    name: str
    build: Callable[[], bytes]
    code: str | None  # the code that must be reported; None: zero findings
    smoke: bool = False
    deep: bool = False
    modality: str | None = None
    format: str | None = None
    tags: list[str] = field(default_factory=list)


def _valid(modality: str) -> Callable[[], bytes]:
    return lambda: zip_files(base_files(modality))


def _static(name: str, source: str, code: str) -> Case:
    return Case(f"static-{name}", lambda: zip_files(with_model_py(source)), code)


CASES: list[Case] = [
    # valid submissions: zero findings, smoke included
    Case("valid-image", _valid("image"), None, smoke=True),
    Case("valid-video", _valid("video"), None, smoke=True),
    Case("valid-audio", _valid("audio"), None, smoke=True),
    Case(
        "valid-onnx-image",
        lambda: zip_files({"detector.onnx": onnx_bytes()}),
        "GAS500",
        smoke=True,
        tags=["warning-only"],
    ),
    # GAS1xx: the container
    Case("zip-not-a-zip", lambda: b"this is not a zip file at all", "GAS101"),
    Case("zip-empty-file", lambda: b"", "GAS101"),
    Case("zip-truncated", lambda: zip_files(base_files())[:-30], "GAS101"),
    Case("zip-folder-entry", lambda: zip_files({**base_files(), "extra/": b""}), "GAS102"),
    Case(
        "zip-nested-path",
        lambda: zip_files({**{f"sub/{k}": v for k, v in base_files().items()}}),
        "GAS102",
    ),
    Case("zip-dotdot", lambda: zip_files({**base_files(), "../evil.py": b"x"}), "GAS102"),
    Case("zip-absolute", lambda: zip_files({**base_files(), "/etc/evil": b"x"}), "GAS102"),
    Case("zip-backslash", lambda: zip_files({**base_files(), "a\\b.py": b"x"}), "GAS102"),
    Case(
        "zip-duplicate-name",
        lambda: zip_files(base_files()) if False else _duplicate_zip(),
        "GAS103",
    ),
    Case(
        "zip-case-duplicate", lambda: zip_files({**base_files(), "Model.py": b"x = 1\n"}), "GAS103"
    ),
    Case("zip-symlink", lambda: zip_files(base_files(), attrs={"model.py": 0o120777}), "GAS104"),
    Case("zip-encrypted", lambda: zip_files(base_files(), flags={"model.py": 0x1}), "GAS105"),
    Case("zip-bzip2", lambda: zip_files(base_files(), method=zipfile.ZIP_BZIP2), "GAS106"),
    Case("zip-lying-local-size", lambda: zip_lying_local_size(base_files()), "GAS107"),
    Case("zip-overlapping-entries", lambda: zip_overlapping(base_files()), "GAS107"),
    Case("zip-bomb-ratio", zip_bomb, "GAS108"),
    Case("zip-extra-file", lambda: zip_files({**base_files(), "README.md": b"hi"}), "GAS110"),
    Case(
        "zip-missing-model-py",
        lambda: zip_files({k: v for k, v in base_files().items() if k != "model.py"}),
        "GAS110",
    ),
    Case(
        "zip-missing-config",
        lambda: zip_files({k: v for k, v in base_files().items() if k != "model_config.yaml"}),
        "GAS110",
    ),
    Case(
        "zip-missing-weights",
        lambda: zip_files({k: v for k, v in base_files().items() if k != "model.safetensors"}),
        "GAS110",
    ),
    Case(
        "zip-pt-weights-instead",
        lambda: zip_files(
            {
                **{k: v for k, v in base_files().items() if k != "model.safetensors"},
                "model.pt": b"\x80\x04",
            }
        ),
        "GAS110",
    ),
    Case(
        "onnx-two-files",
        lambda: zip_files({"a.onnx": onnx_bytes(), "b.onnx": onnx_bytes()}),
        "GAS110",
    ),
    Case(
        "onnx-plus-extra", lambda: zip_files({"a.onnx": onnx_bytes(), "notes.txt": b"x"}), "GAS110"
    ),
    Case(
        "onnx-external-data-file",
        lambda: zip_files({"a.onnx": onnx_bytes(external=True), "weights.bin": b"\x00" * 8}),
        "GAS110",
    ),
    # GAS2xx: model_config.yaml
    Case("config-invalid-yaml", lambda: zip_files(with_config("name: [unclosed\n")), "GAS201"),
    Case(
        "config-python-tag",
        lambda: zip_files(
            with_config(CONFIGS["image"] + "evil: !!python/object/apply:os.system ['echo pwned']\n")
        ),
        "GAS201",
    ),
    Case("config-empty", lambda: zip_files(with_config("")), "GAS201"),
    Case("config-not-mapping", lambda: zip_files(with_config("- a\n- b\n")), "GAS201"),
    Case(
        "config-duplicate-key",
        lambda: zip_files(
            with_config(
                CONFIGS["image"].replace('version: "1.0.0"\n', 'version: "1.0.0"\nname: "again"\n')
            )
        ),
        "GAS201",
    ),
    Case(
        "config-name-space",
        lambda: zip_files(config_edit('"corpus-image"', '"my model"')),
        "GAS202",
    ),
    Case(
        "config-name-missing",
        lambda: zip_files(config_edit('name: "corpus-image"\n', "")),
        "GAS202",
    ),
    Case(
        "config-modality-unknown", lambda: zip_files(config_edit('"image"', '"images"')), "GAS203"
    ),
    Case(
        "config-modality-mismatch",
        lambda: zip_files(base_files("image")),
        "GAS203",
        modality="video",
    ),
    Case(
        "config-dtype",
        lambda: zip_files(config_edit('modality: "image"\n', 'modality: "image"\ndtype: "fp8"\n')),
        "GAS204",
    ),
    Case("config-resize-zero", lambda: zip_files(config_edit("[32, 32]", "[0, 32]")), "GAS205"),
    Case(
        "config-resize-three", lambda: zip_files(config_edit("[32, 32]", "[32, 32, 3]")), "GAS205"
    ),
    Case(
        "config-video-frames-65",
        lambda: zip_files(config_edit("num_frames: 4", "num_frames: 65", "video")),
        "GAS205",
    ),
    Case(
        "config-video-frames-without-resize",
        lambda: zip_files(config_edit("  resize: [32, 32]\n", "", "video")),
        "GAS205",
    ),
    Case(
        "config-audio-sample-rate",
        lambda: zip_files(config_edit("16000", "8000", "audio")),
        "GAS205",
    ),
    Case("config-audio-duration", lambda: zip_files(config_edit("6.0", "5.0", "audio")), "GAS205"),
    Case(
        "config-num-classes-4",
        lambda: zip_files(config_edit("num_classes: 2", "num_classes: 4")),
        "GAS206",
    ),
    Case(
        "config-num-classes-0",
        lambda: zip_files(config_edit("num_classes: 2", "num_classes: 0")),
        "GAS206",
    ),
    Case(
        "config-num-classes-missing",
        lambda: zip_files(config_edit("  num_classes: 2\n", "")),
        "GAS206",
    ),
    Case(
        "config-num-classes-bool",
        lambda: zip_files(config_edit("num_classes: 2", "num_classes: yes")),
        "GAS206",
    ),
    Case(
        "config-model-missing",
        lambda: zip_files(
            config_edit('model:\n  num_classes: 2\n  weights_file: "model.safetensors"\n', "")
        ),
        "GAS206",
    ),
    Case(
        "config-weights-file-mismatch",
        lambda: zip_files(config_edit('"model.safetensors"', '"weights.safetensors"')),
        "GAS207",
    ),
    Case(
        "config-weights-file-traversal",
        lambda: zip_files(config_edit('"model.safetensors"', '"../model.safetensors"')),
        "GAS207",
    ),
    # GAS3xx: model.py
    _static("import-os", model_py_with("import os\n"), "GAS303"),
    _static("from-subprocess", model_py_with("from subprocess import run\n"), "GAS303"),
    _static("import-alias-sys", model_py_with("import sys as system\n"), "GAS303"),
    _static("import-requests", model_py_with("import requests\n"), "GAS303"),
    _static("import-pickle", model_py_with("import pickle\n"), "GAS303"),
    _static("import-unlisted", model_py_with("import yaml\n"), "GAS304"),
    _static("import-torch-optim", model_py_with("import torch.optim\n"), "GAS304"),
    _static("future-import", model_py_with("from __future__ import annotations\n"), "GAS304"),
    _static("relative-import", model_py_with("from . import helpers\n"), "GAS305"),
    _static("eval-call", model_py_with("", "\nX = eval('1 + 1')\n"), "GAS306"),
    _static("exec-call", model_py_with("", "\nexec('x = 1')\n"), "GAS306"),
    _static("dunder-import", model_py_with("", "\nm = __import__('os')\n"), "GAS306"),
    _static("getattr-call", model_py_with("", "\nf = getattr(torch, 'load')\n"), "GAS306"),
    _static(
        "method-eval",
        MODEL_PY.format(extra="").replace(
            "    return model\n", "    model.eval()\n    return model\n"
        ),
        "GAS306",
    ),
    _static("eval-alias", model_py_with("", "\nrun = eval\n"), "GAS306"),
    _static("torch-jit-script", model_py_with("", "\nS = torch.jit.script\n"), "GAS307"),
    _static("cpp-extension", model_py_with("import torch.utils.cpp_extension\n"), "GAS307"),
    _static("numpy-ctypeslib", model_py_with("import numpy.ctypeslib\n"), "GAS307"),
    _static("builtins-dunder", model_py_with("", "\nB = __builtins__\n"), "GAS308"),
    _static(
        "subclasses-escape",
        model_py_with("", "\nS = ().__class__.__bases__[0].__subclasses__()\n"),
        "GAS308",
    ),
    _static("dict-lookup", model_py_with("", "\nJ = torch.__dict__['jit']\n"), "GAS308"),
    _static("non-utf8-coding", "# -*- coding: latin-1 -*-\n" + MODEL_PY.format(extra=""), "GAS301"),
    _static("syntax-error", MODEL_PY.format(extra="") + "\ndef broken(:\n", "GAS302"),
    _static(
        "no-load-model",
        MODEL_PY.format(extra="").replace("def load_model", "def make_model"),
        "GAS309",
    ),
    _static(
        "load-model-no-params",
        MODEL_PY.format(extra="").replace(
            "def load_model(weights_path: str, num_classes: int = 2)", "def load_model()"
        ),
        "GAS309",
    ),
    _static(
        "open-for-writing",
        model_py_with("", "\nwith open('/tmp/x', 'w') as f:\n    pass\n"),
        "GAS306",
    ),
    # issue 14: every kind of bypass through the allowed modules, as a submission
    *(_static(name, source.decode(), code) for name, source, code, _ in BYPASSES),
    # GAS4xx: safetensors weights
    Case("weights-too-short", lambda: zip_files(with_weights(b"\x01\x02")), "GAS401"),
    Case(
        "weights-header-length-huge",
        lambda: zip_files(with_weights(raw_safetensors(b"{}", length=1 << 40))),
        "GAS401",
    ),
    Case(
        "weights-header-not-json",
        lambda: zip_files(with_weights(raw_safetensors(b"{not json}   "))),
        "GAS401",
    ),
    Case(
        "weights-is-a-pickle",
        lambda: zip_files(with_weights(b"\x80\x04\x95" + b"\x00" * 64)),
        "GAS401",
    ),
    Case(
        "weights-unknown-dtype",
        lambda: zip_files(
            with_weights(
                raw_safetensors(
                    {"t": {"dtype": "Q7", "shape": [2], "data_offsets": [0, 2]}}, b"\x00\x00"
                )
            )
        ),
        "GAS402",
    ),
    Case(
        "weights-offset-gap",
        lambda: zip_files(
            with_weights(
                raw_safetensors(
                    {
                        "a": {"dtype": "U8", "shape": [2], "data_offsets": [0, 2]},
                        "b": {"dtype": "U8", "shape": [2], "data_offsets": [4, 6]},
                    },
                    b"\x00" * 6,
                )
            )
        ),
        "GAS403",
    ),
    Case(
        "weights-offset-overlap",
        lambda: zip_files(
            with_weights(
                raw_safetensors(
                    {
                        "a": {"dtype": "U8", "shape": [4], "data_offsets": [0, 4]},
                        "b": {"dtype": "U8", "shape": [2], "data_offsets": [2, 4]},
                    },
                    b"\x00" * 4,
                )
            )
        ),
        "GAS403",
    ),
    Case(
        "weights-size-mismatch",
        lambda: zip_files(
            with_weights(
                raw_safetensors(
                    {"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 4]}}, b"\x00" * 4
                )
            )
        ),
        "GAS403",
    ),
    Case(
        "weights-trailing-bytes",
        lambda: zip_files(with_weights(safetensors_bytes() + b"\x00" * 16)),
        "GAS403",
    ),
    Case(
        "weights-nan",
        lambda: zip_files(
            with_weights(
                safetensors_bytes(
                    {**state_dict(), "head.bias": np.array([np.nan, 0.0], dtype=np.float32)}
                )
            )
        ),
        "GAS404",
        deep=True,
    ),
    # GAS5xx: legacy ONNX
    Case("onnx-garbage", lambda: zip_files({"a.onnx": b"\x08\x01garbage" * 10}), "GAS501"),
    Case(
        "onnx-external-tensor", lambda: zip_files({"a.onnx": onnx_bytes(external=True)}), "GAS502"
    ),
    Case(
        "onnx-dynamic-hw",
        lambda: zip_files({"a.onnx": onnx_bytes(input_shape=["batch", 3, "h", "w"])}),
        "GAS505",
        modality="image",
    ),
    Case(
        "onnx-wrong-rank",
        lambda: zip_files({"a.onnx": onnx_bytes(input_shape=["batch", 3, 32])}),
        "GAS505",
        modality="image",
    ),
    Case(
        "onnx-five-classes",
        lambda: zip_files({"a.onnx": onnx_bytes(output_classes=5)}),
        "GAS506",
        modality="image",
    ),
    # GAS6xx: smoke test
    Case(
        "smoke-load-model-raises",
        lambda: zip_files(
            with_model_py(
                MODEL_PY.format(extra="").replace(
                    "    model = Tiny(", "    raise ValueError('boom')\n    model = Tiny("
                )
            )
        ),
        "GAS601",
        smoke=True,
    ),
    Case(
        "smoke-returns-non-module",
        lambda: zip_files(
            with_model_py(
                MODEL_PY.format(extra="").replace(
                    "    return model\n", "    return {'model': model}\n"
                )
            )
        ),
        "GAS602",
        smoke=True,
    ),
    Case(
        "smoke-missing-keys",
        lambda: zip_files(
            with_weights(
                safetensors_bytes({k: v for k, v in state_dict().items() if k != "head.bias"})
            )
        ),
        "GAS601",
        smoke=True,
        tags=["strict load_state_dict raises"],
    ),
    Case(
        "smoke-one-dim-output",
        lambda: zip_files(
            with_model_py(
                MODEL_PY.format(extra="").replace(
                    "        return self.head(feats)", "        return self.head(feats)[:, 0]"
                )
            )
        ),
        "GAS605",
        smoke=True,
    ),
    Case(
        "smoke-wrong-num-classes",
        lambda: zip_files(config_edit("num_classes: 2", "num_classes: 3")),
        "GAS601",
        smoke=True,
        tags=["head size mismatch fails strict load"],
    ),
    Case(
        "smoke-nan-output",
        lambda: zip_files(
            with_model_py(
                MODEL_PY.format(extra="").replace(
                    "        return self.head(feats)",
                    "        return self.head(feats) * float('nan')",
                )
            )
        ),
        "GAS606",
        smoke=True,
    ),
]


def _duplicate_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, data in base_files().items():
            zf.writestr(name, data)
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            zf.writestr("model.py", b"x = 1\n")
    return buffer.getvalue()


def write_corpus(out: Path) -> list[tuple[Case, Path]]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for case in CASES:
        path = out / f"{case.name}.zip"
        path.write_bytes(case.build())
        written.append((case, path))
    (out / "expected.json").write_text(
        json.dumps(
            {
                c.name: {"code": c.code, "smoke": c.smoke, "deep": c.deep, "modality": c.modality}
                for c in CASES
            },
            indent=2,
        )
    )
    return written


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "corpus-out")
    for case, path in write_corpus(target):
        print(f"{case.code or 'ok':8} {path}")
