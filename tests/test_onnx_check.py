"""Legacy ONNX checks: tiny graphs built with onnx.helper, one defect each."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

from gasbuild.check import check_zip_path
from gasbuild.check.findings import CheckOptions, Finding, StagedSubmission
from gasbuild.check.onnx import check_onnx
from gasbuild.submission import Modality

onnx = pytest.importorskip("onnx")
np = pytest.importorskip("numpy")
pytest.importorskip("onnxruntime")

from onnx import NodeProto, TensorProto, helper, numpy_helper  # noqa: E402

Dims = list[int | str]
IMAGE: Dims = ["batch", 3, 32, 32]
VIDEO: Dims = ["batch", 4, 3, 16, 16]
AUDIO: Dims = ["batch", 96000]


def graph(
    input_shape: Dims | None = None,
    *,
    elem: int = TensorProto.UINT8,
    classes: int = 2,
    out_dims: Dims | None = None,
    tail: str | None = None,
    extra_input: bool = False,
    external: bool = False,
) -> bytes:
    """A tiny classifier: cast, mean over all but the channels, MatMul to ``classes`` logits.

    ``tail`` adds a last step: "nan" (times NaN), "rank1" (mean over C), "argmax" (int64),
    "reshape-2x-1" / "reshape-2x2" (fixed reshapes that break at batch 1).
    """
    shape = input_shape or IMAGE
    rank = len(shape)
    nodes = [helper.make_node("Cast", ["input"], ["xf"], to=TensorProto.FLOAT)]
    inits: list[TensorProto] = []
    if rank == 2:  # audio: [B, S] -> [B, S/3, 3] -> mean -> [B, 3]
        inits.append(numpy_helper.from_array(np.array([0, -1, 3], dtype=np.int64), "fold"))
        nodes.append(helper.make_node("Reshape", ["xf", "fold"], ["x3"]))
        nodes.append(helper.make_node("ReduceMean", ["x3"], ["feats"], axes=[1], keepdims=0))
        channels = 3
    else:
        channel_axis = 2 if rank == 5 else 1
        axes = [a for a in range(1, rank) if a != channel_axis]
        nodes.append(helper.make_node("ReduceMean", ["xf"], ["feats"], axes=axes, keepdims=0))
        dim = shape[channel_axis]
        channels = dim if isinstance(dim, int) else 3
    weight = numpy_helper.from_array(np.full((channels, classes), 0.01, np.float32), "w")
    if external:
        weight.data_location = TensorProto.EXTERNAL
        entry = weight.external_data.add()
        entry.key, entry.value = "location", "weights.bin"
        weight.ClearField("raw_data")
    inits.append(weight)
    last = "logits"
    nodes.append(helper.make_node("MatMul", ["feats", "w"], [last if tail is None else "pre"]))
    out_elem = int(TensorProto.FLOAT)
    if tail is not None:
        out_elem = _tail(tail, nodes, inits)
    inputs = [helper.make_tensor_value_info("input", elem, shape)]
    if extra_input:
        inputs.append(helper.make_tensor_value_info("mask", TensorProto.FLOAT, ["batch", 1]))
    dims: Dims = out_dims if out_dims is not None else ["batch", classes]
    outputs = [helper.make_tensor_value_info(last, out_elem, dims)]
    model = helper.make_model(
        helper.make_graph(nodes, "g", inputs, outputs, initializer=inits),
        opset_imports=[helper.make_opsetid("", 17)],
    )
    model.ir_version = 8
    return bytes(model.SerializeToString())


def _tail(kind: str, nodes: list[NodeProto], inits: list[TensorProto]) -> int:
    if kind == "nan":
        inits.append(numpy_helper.from_array(np.array(np.nan, dtype=np.float32), "nan"))
        nodes.append(helper.make_node("Mul", ["pre", "nan"], ["logits"]))
    elif kind == "rank1":
        nodes.append(helper.make_node("ReduceMean", ["pre"], ["logits"], axes=[1], keepdims=0))
    elif kind == "argmax":
        nodes.append(helper.make_node("ArgMax", ["pre"], ["logits"], axis=1, keepdims=1))
        return int(TensorProto.INT64)
    elif kind.startswith("reshape-"):
        target = [2, -1] if kind == "reshape-2x-1" else [2, 2]
        inits.append(numpy_helper.from_array(np.array(target, dtype=np.int64), "target"))
        nodes.append(helper.make_node("Reshape", ["pre", "target"], ["logits"]))
    else:
        raise ValueError(kind)
    return int(TensorProto.FLOAT)


def check(
    data: bytes,
    modality: Modality | None = None,
    *,
    smoke: bool = True,
    allow_dynamic_hw: bool = False,
    name: str = "detector.onnx",
) -> list[Finding]:
    sub = StagedSubmission({name: data}, "sub")
    opts = CheckOptions(modality=modality, smoke=smoke, smoke_batch=2)
    return check_onnx(sub, opts, allow_dynamic_hw=allow_dynamic_hw)


def codes(findings: list[Finding], severity: str = "error") -> set[str]:
    return {f.code for f in findings if f.severity == severity}


def only_retired(findings: list[Finding]) -> None:
    rendered = "\n".join(f.format("sub") for f in findings)
    assert [(f.code, f.severity) for f in findings] == [("GAS500", "warning")], rendered


# ---------------------------------------------------------------------------------------------
# Valid graphs: only the "ONNX is retired" warning.


def test_valid_uint8_image_infers_the_modality() -> None:
    findings = check(graph())
    only_retired(findings)
    assert "network stopped accepting new ONNX submissions" in findings[0].message
    assert findings[0].hint is not None and "checked as image" in findings[0].hint


def test_valid_float_image() -> None:
    only_retired(check(graph(elem=TensorProto.FLOAT), "image"))


def test_valid_video_and_dynamic_frames() -> None:
    only_retired(check(graph(VIDEO), "video"))
    only_retired(check(graph(["batch", "frames", 3, 16, 16])))


def test_valid_audio() -> None:
    only_retired(check(graph(AUDIO, elem=TensorProto.FLOAT), "audio"))


def test_valid_three_classes_and_one() -> None:
    only_retired(check(graph(classes=3)))
    only_retired(check(graph(classes=1)))


def test_the_zip_path_reports_only_the_retirement(tmp_path: Path) -> None:
    path = tmp_path / "image_detector.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("image_detector.onnx", graph())
    only_retired(check_zip_path(path, CheckOptions(smoke_batch=2), "image_detector.zip"))


# ---------------------------------------------------------------------------------------------
# One defect each.


def test_unparsable_file() -> None:
    assert codes(check(b"\x08\x01garbage" * 10)) == {"GAS501"}


def test_empty_model_has_no_graph() -> None:
    assert codes(check(b"")) == {"GAS501"}


def test_no_onnx_file() -> None:
    findings = check_onnx(StagedSubmission({"model.py": b""}, "sub"), CheckOptions())
    assert codes(findings) == {"GAS501"} and codes(findings, "warning") == {"GAS500"}


def test_external_data() -> None:
    findings = check(graph(external=True))
    assert codes(findings) == {"GAS502"}
    assert any("'w'" in f.message for f in findings)


def test_invalid_graph_fails_the_checker() -> None:
    model = onnx.load_model_from_string(graph())
    model.graph.node[-1].input[0] = "undefined_tensor"
    findings = check(model.SerializeToString())
    assert "GAS503" in codes(findings)
    assert all(f.code not in ("GAS507", "GAS508") for f in findings)  # never run


def test_two_inputs() -> None:
    assert codes(check(graph(extra_input=True))) == {"GAS504"}


def test_dynamic_height_width_is_an_error() -> None:
    findings = check(graph(["batch", 3, "h", "w"]), "image")
    assert codes(findings) == {"GAS505"}
    assert any("224x224" in f.message for f in findings)


def test_dynamic_height_width_allowed_is_a_warning_and_runs_at_224() -> None:
    findings = check(graph(["batch", 3, "h", "w"]), "image", allow_dynamic_hw=True)
    assert codes(findings) == set()
    assert codes(findings, "warning") == {"GAS500", "GAS505"}


@pytest.mark.parametrize(
    ("shape", "elem", "modality"),
    [
        (["batch", 3, 32], TensorProto.UINT8, "image"),  # wrong rank
        (["batch", 3, 32], TensorProto.UINT8, None),  # rank fits no modality
        (IMAGE, TensorProto.UINT8, "audio"),  # modality says otherwise
        (["batch", 4, 32, 32], TensorProto.UINT8, "image"),  # four channels
        ([1, 3, 32, 32], TensorProto.UINT8, "image"),  # fixed batch
        (IMAGE, TensorProto.INT64, "image"),  # element type
        (AUDIO, TensorProto.UINT8, "audio"),  # audio must be float
        (["batch", 48000], TensorProto.FLOAT, "audio"),  # 3 s of audio
        (["batch", 65, 3, 16, 16], TensorProto.UINT8, "video"),  # over 64 frames
    ],
    ids=[
        "rank3-image",
        "rank3-unknown",
        "image-as-audio",
        "four-channels",
        "fixed-batch",
        "int64-input",
        "uint8-audio",
        "short-audio",
        "65-frames",
    ],
)
def test_input_rules(shape: Dims, elem: int, modality: Modality | None) -> None:
    findings = check(graph(shape, elem=elem), modality)
    assert codes(findings) == {"GAS505"}, findings
    assert any(str(shape[-1]) in f.message for f in findings if f.code == "GAS505")


def test_five_classes() -> None:
    findings = check(graph(classes=5))
    assert codes(findings) == {"GAS506"}
    assert any("C = 5" in f.message for f in findings)


def test_one_dim_output() -> None:
    assert codes(check(graph(tail="rank1", out_dims=["batch"]))) == {"GAS506"}


def test_integer_output() -> None:
    assert "GAS506" in codes(check(graph(tail="argmax", out_dims=["batch", 1])))


def test_dynamic_classes_warn_and_the_run_checks_them() -> None:
    findings = check(graph(classes=2, out_dims=["batch", "c"]))
    assert codes(findings) == set() and "GAS506" in codes(findings, "warning")
    findings = check(graph(classes=4, out_dims=["batch", "c"]))
    assert codes(findings) == {"GAS508"} and "GAS506" in codes(findings, "warning")


def test_nan_output() -> None:
    findings = check(graph(tail="nan"))
    assert codes(findings) == {"GAS508"}
    assert any("NaN" in f.message for f in findings)


def test_no_run_without_smoke() -> None:
    only_retired(check(graph(tail="nan"), smoke=False))


def test_wrong_shape_at_batch_one() -> None:
    findings = check(graph(tail="reshape-2x-1"))
    assert codes(findings) == {"GAS508"}
    assert any("batch of 1" in f.message and "[2, 1]" in f.message for f in findings)


def test_run_failure_at_batch_one() -> None:
    findings = check(graph(tail="reshape-2x2"))
    assert codes(findings) == {"GAS507"}
    assert any("batch of 1" in f.message for f in findings)


def test_importing_the_module_imports_no_onnx() -> None:
    code = textwrap.dedent(
        """
        import sys
        import gasbuild.check.onnx
        import gasbuild.check.smoke
        heavy = {"torch", "onnx", "onnxruntime", "numpy"}
        print(",".join(sorted(heavy & set(sys.modules))))
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_allow_dynamic_hw_reaches_the_check_from_gas_toml_and_the_cli(tmp_path: Path) -> None:
    """SPEC §3: a dynamic H/W is an error "unless the manifest says otherwise"."""
    from conftest import run_cli
    from gasbuild import manifest, plan
    from gasbuild.cache import Cache
    from gasbuild.errors import CheckFailed

    (tmp_path / "dyn.onnx").write_bytes(graph(["batch", 3, "h", "w"]))
    text = '[models.image]\nformat = "onnx"\nweights = { path = "dyn.onnx" }\n'
    (tmp_path / "gas.toml").write_text(text)
    project = manifest.load(tmp_path / "gas.toml")
    with pytest.raises(CheckFailed):
        plan.build(project, Cache(tmp_path / "c"), plan.BuildOptions())
    (tmp_path / "gas.toml").write_text(text + "allow_dynamic_hw = true\n")
    project = manifest.load(tmp_path / "gas.toml")
    (result,) = plan.build(project, Cache(tmp_path / "c"), plan.BuildOptions()).results
    assert ("GAS505", "warning") in {(f.code, f.severity) for f in result.findings}

    zip_path = str(result.zip_path)
    assert run_cli("check", "--no-smoke", zip_path).returncode == 1
    assert run_cli("check", "--no-smoke", "--allow-dynamic-hw", zip_path).returncode == 0


def test_allow_dynamic_hw_is_refused_where_there_is_no_dynamic_hw(tmp_path: Path) -> None:
    from gasbuild import manifest
    from gasbuild.errors import ManifestError

    (tmp_path / "gas.toml").write_text(
        '[models.image]\narchitecture = { file = "m.py" }\nweights = { path = "w.st" }\n'
        "allow_dynamic_hw = true\n"
    )
    with pytest.raises(ManifestError, match=r"models\.image\.allow_dynamic_hw applies only"):
        manifest.load(tmp_path / "gas.toml")
