"""The ONNX export stage: tiny model.py declarations exported in the sandboxed child.

Every export is a real child process importing torch, onnx and onnxruntime (a few seconds each),
so the cases run two at a time from one module fixture; each test waits only for its own.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from gasbuild.check.findings import CheckOptions, StagedSubmission
from gasbuild.check.onnx import check_onnx
from gasbuild.sandbox.export_child import compare, error_of
from gasbuild.stages.export import ExportError, ExportOptions, ExportResult, export_onnx
from gasbuild.submission import Modality

torch = pytest.importorskip("torch")
safetensors_torch = pytest.importorskip("safetensors.torch")
np = pytest.importorskip("numpy")
ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

pytestmark = pytest.mark.slow

IMAGE_PY = """\
import torch
import torch.nn as nn
from safetensors.torch import load_file


class Net(nn.Module):
    def __init__(self, num_classes: int = 2, width: int = 4) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, width, kernel_size=3, padding=1)
        self.head = nn.Linear(width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = torch.relu(self.conv(x.to(torch.float32) / 255.0)).mean(dim=(2, 3))
        return LOGITS


def load_model(weights_path: str, num_classes: int = 2, width: int = 4) -> nn.Module:
    LOAD
    model.load_state_dict(load_file(weights_path))
    return model
"""

VIDEO_PY = """\
import torch
import torch.nn as nn
from safetensors.torch import load_file


class Net(nn.Module):
    def __init__(self, num_classes: int = 2) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, kernel_size=3, padding=1)
        self.head = nn.Linear(4, num_classes)

    def forward(self, x: torch.Tensor) -> dict:
        batch = x.shape[0]
        frames = x.flatten(0, 1).to(torch.float32) / 255.0
        feats = self.conv(frames).mean(dim=(2, 3)).view(batch, -1, 4).mean(dim=1)
        return {"logits": self.head(feats)}


def load_model(weights_path: str, num_classes: int = 2) -> nn.Module:
    model = Net(num_classes)
    model.load_state_dict(load_file(weights_path), strict=False)
    return model
"""

AUDIO_PY = """\
import torch
import torch.nn as nn
from safetensors.torch import load_file


class Net(nn.Module):
    def __init__(self, num_classes: int = 2) -> None:
        super().__init__()
        self.register_buffer("window", torch.hann_window(256), persistent=False)
        self.conv = nn.Conv1d(129, 4, kernel_size=3)
        self.head = nn.Linear(4, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        spec = torch.stft(
            x, n_fft=256, hop_length=256, window=self.window, center=False, return_complex=False
        )
        power = torch.log(spec.pow(2).sum(-1) + 1e-6)
        return self.head(torch.relu(self.conv(power)).mean(dim=-1))


def load_model(weights_path: str, num_classes: int = 2) -> nn.Module:
    model = Net(num_classes)
    model.load_state_dict(load_file(weights_path))
    return model
"""

NET = "model = Net(num_classes, width)"
LOOSE = "model.load_state_dict(load_file(weights_path), strict=False)"


def image_py(logits: str = "self.head(feats)", load: str = NET) -> str:
    return IMAGE_PY.replace("LOGITS", logits).replace("LOAD", load)


def config(modality: str, pre: str, dtype: str = "float32") -> str:
    """A model_config.yaml as a real submission writes it (SPEC.md §2)."""
    preprocessing = "".join(f"  {line}\n" for line in pre.splitlines())
    return (
        f'name: "tiny-{modality}"\nversion: "1.0.0"\nmodality: "{modality}"\n'
        f'dtype: "{dtype}"\npreprocessing:\n{preprocessing}'
        'model:\n  num_classes: 2\n  width: 4\n  weights_file: "model.safetensors"\n'
    )


IMAGE_CONFIG = config("image", "resize: [32, 32]\n")
# fp16 in the config: the network casts the weights, the export still writes float32.
VIDEO_CONFIG = config("video", "resize: [16, 16]\nnum_frames: 3\n", dtype="float16")
AUDIO_CONFIG = config("audio", "sample_rate: 16000\nduration_seconds: 6.0\n")


def weights(shapes: dict[str, tuple[int, ...]]) -> bytes:
    generator = torch.Generator().manual_seed(3)
    tensors = {k: torch.randn(*s, generator=generator) * 0.3 for k, s in shapes.items()}
    return bytes(safetensors_torch.save(tensors))


PIXEL_WEIGHTS = {"conv.weight": (4, 3, 3, 3), "conv.bias": (4,), "head.weight": (2, 4)}
PIXEL_WEIGHTS["head.bias"] = (2,)
MISSING_BIAS = {k: v for k, v in PIXEL_WEIGHTS.items() if k != "head.bias"}
UNUSED_EXTRA = {**PIXEL_WEIGHTS, "aux.weight": (2,)}
AUDIO_WEIGHTS = {"conv.weight": (4, 129, 3), "conv.bias": (4,), "head.weight": (2, 4)}
AUDIO_WEIGHTS["head.bias"] = (2,)


@dataclass(frozen=True)
class Case:
    name: str
    modality: Modality
    model: str
    config: str
    shapes: dict[str, tuple[int, ...]]
    resize: tuple[int, int] | None = None
    num_frames: int | None = None
    timeout: float = 120.0

    def options(self) -> ExportOptions:
        return ExportOptions(
            self.modality, self.resize, self.num_frames, timeout=self.timeout, memory_mb=4096
        )


CASES = [
    Case("image", "image", image_py(), IMAGE_CONFIG, PIXEL_WEIGHTS, resize=(32, 32)),
    Case("image-again", "image", image_py(), IMAGE_CONFIG, PIXEL_WEIGHTS, resize=(32, 32)),
    Case("video", "video", VIDEO_PY, VIDEO_CONFIG, UNUSED_EXTRA, resize=(16, 16), num_frames=3),
    Case("audio", "audio", AUDIO_PY, AUDIO_CONFIG, AUDIO_WEIGHTS),
    Case(
        "load-raises",
        "image",
        image_py(load='raise ValueError("no weights for you")'),
        IMAGE_CONFIG,
        PIXEL_WEIGHTS,
        resize=(32, 32),
    ),
    Case(
        "missing-weights",
        "image",
        image_py(load=f"{NET}\n    {LOOSE}\n    return model"),
        IMAGE_CONFIG,
        MISSING_BIAS,
        resize=(32, 32),
    ),
    Case(
        "unexportable",
        "image",
        image_py(logits="self.head(torch.cummax(feats, dim=1)[0])"),
        IMAGE_CONFIG,
        PIXEL_WEIGHTS,
        resize=(32, 32),
    ),
    Case(  # int() freezes the traced batch of 1: fine in torch, wrong in the graph
        "fixed-batch",
        "image",
        image_py(logits="self.head(feats).reshape(int(x.shape[0]), -1)"),
        IMAGE_CONFIG,
        PIXEL_WEIGHTS,
        resize=(32, 32),
    ),
    Case(
        "endless",
        "image",
        image_py(load="while True:\n        pass"),
        IMAGE_CONFIG,
        PIXEL_WEIGHTS,
        resize=(32, 32),
        timeout=8.0,
    ),
]


@dataclass(frozen=True)
class Outcome:
    out: Path
    result: ExportResult | None
    error: ExportError | None

    def ok(self) -> ExportResult:
        assert self.error is None, str(self.error)
        assert self.result is not None
        return self.result

    def failed(self) -> str:
        assert self.error is not None, "the export should have failed"
        text = str(self.error)
        assert "\n" not in text and "Traceback" not in text, text
        assert text.startswith("models.image: "), text
        assert not self.out.exists()
        assert list(self.out.parent.iterdir()) == [], "a temp file was left behind"
        return text


def _run(case: Case, root: Path) -> Outcome:
    model_dir = root / case.name / "model"
    model_dir.mkdir(parents=True)
    (model_dir / "model.py").write_text(case.model)
    (model_dir / "model_config.yaml").write_text(case.config)
    (model_dir / "model.safetensors").write_bytes(weights(case.shapes))
    out = root / case.name / "out" / f"{case.modality}_detector.onnx"
    try:
        result = export_onnx(model_dir, out, case.options(), key=f"models.{case.modality}")
    except ExportError as exc:
        return Outcome(out, None, exc)
    return Outcome(out, result, None)


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Future[Outcome]]]:
    root = tmp_path_factory.mktemp("export")
    with ThreadPoolExecutor(max_workers=2) as pool:
        yield {case.name: pool.submit(_run, case, root) for case in CASES}


Get = Callable[[str], Outcome]


@pytest.fixture
def get(outcomes: dict[str, Future[Outcome]]) -> Get:
    return lambda name: outcomes[name].result()


# ---------------------------------------------------------------------------------------------
# Models that export.


@pytest.mark.parametrize(
    ("name", "shape"),
    [
        ("image", ["batch", 3, 32, 32]),
        ("video", ["batch", 3, 3, 16, 16]),
        ("audio", ["batch", 96000]),
    ],
)
def test_export_passes_the_onnx_validator(get: Get, name: str, shape: list[int | str]) -> None:
    outcome = get(name)
    result = outcome.ok()
    assert result.input_name == "input" and result.input_shape == shape
    assert result.opset == 17 and result.max_abs_diff <= 1e-4
    data = outcome.out.read_bytes()
    case = next(c for c in CASES if c.name == name)
    sub = StagedSubmission({outcome.out.name: data}, "sub")
    findings = check_onnx(sub, CheckOptions(modality=case.modality, smoke_batch=2))
    rendered = "\n".join(f.format("sub") for f in findings)
    assert [(f.code, f.severity) for f in findings] == [("GAS500", "warning")], rendered
    assert [p.name for p in outcome.out.parent.iterdir()] == [outcome.out.name]


@pytest.mark.parametrize("name", ["image", "video", "audio"])
def test_onnxruntime_runs_any_batch(get: Get, name: str) -> None:
    outcome = get(name)
    outcome.ok()
    session = ort.InferenceSession(str(outcome.out), providers=["CPUExecutionProvider"])
    (value,) = session.get_inputs()
    assert value.name == "input"
    assert [o.name for o in session.get_outputs()] == ["logits"]
    rng = np.random.default_rng(1)
    for batch in (1, 3):
        shape = [batch, *value.shape[1:]]
        if name == "audio":
            assert value.type == "tensor(float)"
            x = rng.uniform(-1, 1, shape).astype(np.float32)
        else:
            assert value.type == "tensor(uint8)"  # the benchmark's pixels, cast inside forward
            x = rng.integers(0, 256, shape, dtype=np.uint8)
        (logits,) = session.run(None, {"input": x})
        assert logits.shape == (batch, 2) and logits.dtype == np.float32


def test_two_exports_are_byte_identical(get: Get) -> None:
    first, second = get("image"), get("image-again")
    first.ok()
    second.ok()
    assert first.out.read_bytes() == second.out.read_bytes()


def test_graph_carries_no_doc_strings_or_external_data(get: Get) -> None:
    import onnx

    model = onnx.load(str(get("audio").out))
    assert model.doc_string == "" and model.graph.doc_string == ""
    assert all(n.doc_string == "" for n in model.graph.node)
    assert all(not t.external_data for t in model.graph.initializer)


def test_smoke_warnings_and_dict_output(get: Get) -> None:
    # forward returns {"logits": ...}; load_model cannot take `width` (the loader calls it without
    # it) and leaves a tensor of the file unused: both are the smoke steps' warnings.
    result = get("video").ok()
    assert any("'aux.weight'" in w for w in result.warnings), result.warnings
    assert any("with num_classes only" in w for w in result.warnings), result.warnings


# ---------------------------------------------------------------------------------------------
# Models that do not.


def test_parameters_missing_from_the_weights_stop_the_export(get: Get) -> None:
    text = get("missing-weights").failed()
    assert "'head.bias'" in text and "initial values" in text, text


def test_load_model_raising_is_one_line(get: Get) -> None:
    text = get("load-raises").failed()
    assert "model.py:" in text and "load_model raised ValueError: no weights for you" in text


def test_unexportable_forward_names_the_operator(get: Get) -> None:
    text = get("unexportable").failed()
    assert "torch.onnx.export" in text and "aten::cummax" in text, text
    assert "TorchScript exporter" in text  # the hint


def test_batch_frozen_by_the_trace_fails_parity(get: Get) -> None:
    text = get("fixed-batch").failed()
    assert "batch of 2" in text and "batch of 1 as a constant" in text, text


def test_timeout_kills_the_child(get: Get) -> None:
    text = get("endless").failed()
    assert "did not finish within 8 s, while " in text, text  # the phase: a loaded machine
    assert "an endless loop" in text  # may still be importing torch


# ---------------------------------------------------------------------------------------------
# Pieces that need no child.


def test_parity_comparison() -> None:
    want = np.array([[0.5, -0.5], [1.0, 2.0]], dtype=np.float32)
    close = compare(want, want + 5e-5, rtol=1e-3, atol=1e-4)
    assert close.problem is None and close.max_abs_diff == pytest.approx(5e-5, rel=1e-2)
    far = compare(want, want + np.array([[0, 0], [0, 0.01]]), rtol=1e-3, atol=1e-4)
    assert far.problem is not None and "0.01" in far.problem
    assert far.max_abs_diff == pytest.approx(0.01)
    big = want * 1000  # rtol scales with |torch|: 1e-3 x 500 = 0.5 at the smallest
    assert compare(big, big + 0.4, rtol=1e-3, atol=1e-4).problem is None
    assert compare(big, big + 0.6, rtol=1e-3, atol=1e-4).problem is not None
    shape = compare(want, want[:1], rtol=1e-3, atol=1e-4)
    assert shape.problem is not None and "[1, 2]" in shape.problem
    nan = compare(want, np.full_like(want, np.nan), rtol=1e-3, atol=1e-4)
    assert nan.problem is not None and "NaN" in nan.problem


def test_smoke_findings_become_one_message() -> None:
    finding = {"severity": "error", "message": "load_model raised X", "file": "model.py"}
    assert error_of([{**finding, "line": 3, "hint": "h"}]) == {
        "message": "model.py:3: load_model raised X",
        "hint": "h",
    }


def test_options_params_are_json_and_resolve_defaults() -> None:
    default = ExportOptions("image", None, None)
    explicit = ExportOptions("image", (224, 224), None, timeout=5.0, memory_mb=1024)
    assert default.params() == explicit.params()
    assert json.loads(json.dumps(default.params())) == default.params()
    assert default.params()["input_shape"] == ["batch", 3, 224, 224]
    assert ExportOptions("video", (8, 8), None).sample_shape() == (16, 3, 8, 8)
    assert ExportOptions("audio", (8, 8), 4).sample_shape() == (96000,)
    assert default.params() != ExportOptions("image", None, None, opset=18).params()
    with pytest.raises(ValueError, match="parity_batch"):
        ExportOptions("image", None, None, parity_batch=1)


def test_importing_the_export_stage_imports_no_torch() -> None:
    code = textwrap.dedent(
        """
        import sys
        import gasbuild.stages.export as export
        import gasbuild.sandbox.export_child
        export.ExportOptions("image", None, None).params()
        print(",".join(sorted({"torch", "onnx", "onnxruntime", "numpy"} & set(sys.modules))))
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
