"""The export stage's child process: load the model as the loader does, export it, compare.

``export.py`` runs this file by path (``python -I export_child.py``) in the smoke test's sandbox
and never imports it for a run. The protocol is the smoke child's: one JSON job on stdin (the
smoke job plus an ``export`` section); JSON lines on the original stdout, ``{"phase": ...}`` as
each step starts and, last, ``{"result": {...}}`` or ``{"error": {"message", "hint"}}``.

Loading reuses the loader child's steps (``Loader.import_torch``, ``import_model``, ``load``,
``check_weights``), so the export sees exactly the model the smoke test and the network's loader
see, except that the cast is always to float32: an ONNX graph carries its own weights, and the
benchmark never casts them. A parameter the weights file lacks stops the export (the graph would
silently carry random values); the smoke steps' warnings go into the result. Then:

1. torch's logits on a seeded batch of ``parity_batch`` (the reference, and a check that they
   are ``[B, C]``);
2. ``torch.onnx.export(..., dynamo=False)`` at batch 1, batch axis dynamic on input and output;
3. doc strings cleared (they may carry source paths), serialized deterministically, written;
4. onnxruntime on those very bytes, on the same batch, compared with ``compare``.
"""

from __future__ import annotations

import io
import json
import math
import os
import sys
import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

# Run by path under -I (launch.py puts this folder on sys.path) or imported by tests: either
# way only the siblings here are imported, never gasbuild itself.
if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.append(str(Path(__file__).resolve().parent))

if TYPE_CHECKING:
    from gasbuild.sandbox.loader_child import (
        Channel,
        Loader,
        Plan,
        Stop,
        dummy_input,
        forward_line,
        is_out_of_memory,
        limit_resources,
        logits_problem,
        model_line,
        read_plan,
        unwrap,
    )
    from gasbuild.sandbox.ort_messages import ort_text
else:
    from loader_child import (
        Channel,
        Loader,
        Plan,
        Stop,
        dummy_input,
        forward_line,
        is_out_of_memory,
        limit_resources,
        logits_problem,
        model_line,
        read_plan,
        unwrap,
    )
    from ort_messages import ort_text

EXPORT_DTYPE = "float32"
_MAX_TEXT = 500
_MAX_WARNINGS = 5
# Warnings about our own choices, not about the model: the legacy exporter's deprecation.
_QUIET = (DeprecationWarning, FutureWarning, PendingDeprecationWarning)
# Exporter notes about its own optimisation, not about the graph's meaning: a Slice with a step
# (torch.stft frames its input so) is left unfolded, and computes the same.
_BENIGN = ("Constant folding - Only steps=1 can be constant folded",)
_FIXED_BATCH_HINT = (
    "the trace kept the export's batch of 1 as a constant: do not turn x.shape, .item() or "
    ".tolist() into Python numbers that reach a view/reshape; use -1 or x.shape[0] as is"
)
_EXPORT_HINT = (
    "torch.onnx (TorchScript exporter) cannot translate this model; replace the operator it "
    "names, or ship the safetensors format, which runs the model in torch"
)
_PARITY_HINT = (
    "the graph computes something else than torch; look for ops the exporter translates "
    "approximately (interpolate, custom kernels), and raise rtol/atol only if it is harmless"
)


class Failed(Exception):
    """Ends the run with one message (and a hint) for the user."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


@dataclass(frozen=True)
class Parity:
    """How far onnxruntime's logits are from torch's; ``problem`` is None when within bounds."""

    max_abs_diff: float
    problem: str | None


def compare(expected: Any, actual: Any, *, rtol: float, atol: float) -> Parity:
    """torch's logits (``expected``) against onnxruntime's: shapes, finiteness, np.allclose."""
    import numpy as np

    want = np.asarray(expected, dtype=np.float64)
    got = np.asarray(actual, dtype=np.float64)
    if want.shape != got.shape:
        return Parity(
            math.inf,
            f"onnxruntime's logits have shape {list(got.shape)}, torch's {list(want.shape)}",
        )
    if not np.isfinite(got).all():
        return Parity(math.inf, "onnxruntime's logits hold NaN or Inf, torch's do not")
    diff = float(np.max(np.abs(got - want))) if want.size else 0.0
    if np.allclose(got, want, rtol=rtol, atol=atol):
        return Parity(diff, None)
    return Parity(
        diff,
        f"onnxruntime's logits differ from torch's by up to {diff:.3g} "
        f"(allowed: atol {atol:g} + rtol {rtol:g} x |torch|)",
    )


def first_line(exc: BaseException) -> str:
    """``Type: first line`` of an exception (torch.onnx appends pages of graph dumps)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    text = f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__
    return text[:_MAX_TEXT]


def clean(model: Any) -> None:
    """Clear every doc string (the exporter may write source locations there), in place."""
    model.doc_string = ""
    _clean_graph(model.graph)
    for function in model.functions:
        function.doc_string = ""
        for node in function.node:
            _clean_node(node)


def _clean_graph(graph: Any) -> None:
    graph.doc_string = ""
    for value in (*graph.input, *graph.output, *graph.value_info, *graph.initializer):
        value.doc_string = ""
    for node in graph.node:
        _clean_node(node)


def _clean_node(node: Any) -> None:
    node.doc_string = ""
    for attr in node.attribute:
        attr.doc_string = ""
        if attr.HasField("g"):
            _clean_graph(attr.g)
        for graph in attr.graphs:
            _clean_graph(graph)


def dims_of(value: Any) -> list[int | str]:
    """A graph input's or output's declared dims (``"?"`` for an unnamed dynamic one)."""
    dims: list[int | str] = []
    for dim in value.type.tensor_type.shape.dim:
        which = dim.WhichOneof("value")
        dims.append(dim.dim_value if which == "dim_value" else dim.dim_param or "?")
    return dims


@dataclass
class Export:
    """One export: the smoke child's loading steps, then export and parity."""

    job: dict[str, Any]
    smoke: Loader
    unwrapped: bool = False  # the output was a dict, a .logits object or a 1-tuple

    @property
    def spec(self) -> dict[str, Any]:
        return dict(self.job["export"])

    def run(self) -> dict[str, Any]:
        """The result for the parent; raises Stop (smoke findings) or Failed."""
        plan = read_plan(self.job, self.smoke.report)
        plan = replace(plan, dtype=EXPORT_DTYPE, sample_shape=tuple(self.spec["sample_shape"]))
        torch = self.smoke.import_torch()
        module = self.smoke.import_model(plan)
        model = self.smoke.load(plan, module, torch)
        self.smoke.check_weights(plan, model, torch)  # random weights would export silently
        if any(f["severity"] == "error" for f in self.smoke.report.findings):
            raise Stop
        batch = int(self.job["batch"])
        inputs = dummy_input(torch, plan.modality, (batch, *plan.sample_shape))
        expected = self.reference(plan, model, torch, inputs)
        data, traced = self.export(plan, model, torch)
        loaded = [_note(error_of([f])) for f in self.smoke.report.findings]
        notes = loaded + traced
        del model, module  # onnxruntime gets the memory the torch model held
        model_proto = self.normalise(data)
        data = model_proto.SerializeToString(deterministic=True)
        self.smoke.phase("writing the .onnx file")
        Path(self.spec["out"]).write_bytes(data)
        actual = self.onnxruntime(data, inputs.numpy(), batch, traced)
        parity = compare(expected, actual, rtol=self.spec["rtol"], atol=self.spec["atol"])
        if parity.problem is not None:
            hint = _FIXED_BATCH_HINT if math.isinf(parity.max_abs_diff) else _PARITY_HINT
            raise Failed(f"on a batch of {batch}, {parity.problem}", _with_notes(hint, traced))
        return {
            "max_abs_diff": parity.max_abs_diff,
            "opset": self.spec["opset"],
            "input_name": self.spec["input_name"],
            "input_shape": dims_of(model_proto.graph.input[0]),
            "warnings": notes,
        }

    def reference(self, plan: Plan, model: Any, torch: Any, inputs: Any) -> Any:
        """torch's logits on the parity batch, checked to be the [B, C] the benchmark reads."""
        batch = int(inputs.shape[0])
        self.smoke.phase("running forward", batch=batch)
        doing = f"forward on a batch of {batch} {list(inputs.shape)} {inputs.dtype}"
        try:
            with torch.no_grad():
                output = model(inputs)
        except BaseException as exc:
            raise self.smoke.fail(exc, doing, plan) from exc
        logits = unwrap(output)
        self.unwrapped = logits is not output
        contract = self.job["contract"]
        problem = logits_problem(torch, logits, batch, plan.num_classes, contract)
        if problem is None and not bool(torch.isfinite(logits).all()):
            problem = "the logits hold NaN or Inf"
        if problem is not None:
            line = forward_line(model, plan.model_path)
            where = f"{contract['model_file']}:{line}: " if line else ""
            raise Failed(f"{where}{doing}: {problem}")
        return logits.float().numpy()

    def export(self, plan: Plan, model: Any, torch: Any) -> tuple[bytes, list[str]]:
        """The TorchScript exporter at batch 1; the raw bytes and what the tracer doubted."""
        spec = self.spec
        self.smoke.phase("exporting to ONNX")
        example = dummy_input(torch, plan.modality, (1, *plan.sample_shape))
        batch_only = {0: spec["batch_axis"]}
        axes = {spec["input_name"]: batch_only, spec["output_name"]: batch_only}
        target = _logits_only(torch, model) if self.unwrapped else model
        buffer = io.BytesIO()
        doing = f"torch.onnx.export (opset {spec['opset']})"
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                with torch.no_grad():
                    torch.onnx.export(
                        target,
                        (example,),
                        buffer,
                        dynamo=False,  # see export.py: no onnxscript, byte-stable output
                        input_names=[spec["input_name"]],
                        output_names=[spec["output_name"]],
                        opset_version=spec["opset"],
                        dynamic_axes=axes,
                        export_params=True,
                        do_constant_folding=True,
                    )
            except BaseException as exc:
                if is_out_of_memory(exc):
                    raise self.smoke.fail(exc, doing, plan) from exc
                line = model_line(exc, plan.model_path)
                where = f"{self.job['contract']['model_file']}:{line}: " if line else ""
                raise Failed(f"{where}{doing} failed: {first_line(exc)}", _EXPORT_HINT) from exc
        return buffer.getvalue(), self.notes(caught, plan)

    def notes(self, caught: list[warnings.WarningMessage], plan: Plan) -> list[str]:
        """The export's warnings worth a user's eye (tracer doubts), unique, a few at most.

        The tracer's doubts matter most: each marks a value frozen into the graph, often the
        line that breaks the dynamic batch axis.
        """
        model_file = str(plan.model_path)
        found: dict[str, None] = {}
        for item in caught:
            if issubclass(item.category, _QUIET):
                continue
            text = " ".join(str(item.message).split())[:_MAX_TEXT]
            if text.startswith(_BENIGN):
                continue
            if item.filename == model_file:
                text = f"{self.job['contract']['model_file']}:{item.lineno}: {text}"
            found.setdefault(text)
        return list(found)[:_MAX_WARNINGS]

    def normalise(self, data: bytes) -> Any:
        """Parse the export, check it, clear doc strings; the ModelProto to write."""
        import onnx

        self.smoke.phase("checking the ONNX graph")
        model = onnx.load_model_from_string(data)
        clean(model)
        try:
            onnx.checker.check_model(model)
        except Exception as exc:  # onnx.checker.ValidationError and kin
            raise Failed(f"the exported graph fails onnx.checker: {first_line(exc)}") from exc
        inputs = [i.name for i in model.graph.input]
        if inputs != [self.spec["input_name"]] or len(model.graph.output) != 1:
            outputs = [o.name for o in model.graph.output]
            raise Failed(f"the exported graph has inputs {inputs} and outputs {outputs}")
        return model

    def onnxruntime(self, data: bytes, inputs: Any, batch: int, notes: list[str]) -> Any:
        """The first output of the written graph on the parity batch."""
        import onnxruntime as ort

        self.smoke.phase("running onnxruntime", batch=batch)
        options = ort.SessionOptions()
        options.intra_op_num_threads = int(self.job["threads"])
        options.inter_op_num_threads = 1
        options.log_severity_level = 4  # failures are reported here
        try:
            session = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
        except Exception as exc:
            message = f"onnxruntime cannot load the exported graph: {ort_text(exc)}"
            raise Failed(message, _EXPORT_HINT) from exc
        try:
            outputs = session.run(None, {self.spec["input_name"]: inputs})
        except Exception as exc:
            message = f"onnxruntime fails on a batch of {batch}: {ort_text(exc)}"
            raise Failed(message, _with_notes(_FIXED_BATCH_HINT, notes)) from exc
        return outputs[0]


def _note(error: dict[str, Any]) -> str:
    hint = error.get("hint")
    return str(error["message"]) + (f" ({hint})" if hint else "")


def _with_notes(hint: str, notes: list[str]) -> str:
    """A hint, plus the tracer's first doubt: usually the very line that froze a shape."""
    return f"{hint}; the tracer warned: {notes[0]}" if notes else hint


def _logits_only(torch: Any, model: Any) -> Any:
    """A wrapper whose forward returns the tensor the loader would unwrap (one ONNX output)."""

    class Logits(torch.nn.Module):  # type: ignore[misc]
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, x: Any) -> Any:
            return unwrap(self.inner(x))

    return Logits(model).eval()


def error_of(findings: list[dict[str, Any]]) -> dict[str, Any]:
    """The first error the smoke steps reported, as ``{"message", "hint"}``."""
    errors = [f for f in findings if f.get("severity") == "error"] or findings
    if not errors:
        return {"message": "the model could not be loaded", "hint": None}
    first = errors[0]
    where = first.get("file") or ""
    if where and first.get("line"):
        where += f":{first['line']}"
    prefix = f"{where}: " if where else ""
    return {"message": prefix + str(first.get("message")), "hint": first.get("hint")}


def main() -> None:
    job = json.loads(sys.stdin.read())
    limit_resources(int(job["memory_mb"]))
    channel = Channel()
    for entry in job["sys_path"]:
        if entry not in sys.path:
            sys.path.append(entry)
    smoke = Loader(job, channel)
    try:
        channel.send({"result": Export(job, smoke).run()})
    except Stop:
        channel.send({"error": error_of(smoke.report.findings)})
    except Failed as exc:
        channel.send({"error": {"message": exc.message, "hint": exc.hint}})
    except BaseException as exc:  # a bug here, or model code escaping a step: still one line
        if is_out_of_memory(exc):
            error = {"message": f"out of memory: {first_line(exc)}", "hint": None}
            error["hint"] = f"the memory limit is {job['memory_mb']} MB"
        else:
            error = {"message": f"the export failed: {first_line(exc)}", "hint": None}
        channel.send({"error": error})
    sys.stderr.flush()
    # Leave now: a thread the model started must not hold us until the timeout.
    os._exit(0)


if __name__ == "__main__":
    main()
