"""Legacy ONNX submissions: the graph, its one input and first output, and a run on dummy data.

A legacy zip holds exactly one ``.onnx`` file (the container validator checks the file set). The
benchmark feeds that file's single input with the modality's tensor (SPEC.md §1, §3) and reads the
first output as ``[B, C]`` logits, so this module checks exactly that, statically first and then,
unless ``CheckOptions.smoke`` is off, with onnxruntime on a seeded dummy batch of the benchmark's
shape (at ``smoke_batch`` and at 1: the last batch is short). An ONNX graph is data, not code, so
the run stays in-process, on one thread. ``onnx``, ``onnxruntime`` and ``numpy`` are imported
inside the functions: importing this module stays cheap.

Codes::

    GAS500  warning  always: the network stopped accepting new ONNX submissions in early 2026
    GAS501  error    no .onnx file, or the file is not a parsable ONNX model
    GAS502  error    a tensor keeps its data in an external file, which the zip cannot carry
    GAS503  error    onnx.checker (full_check) rejects the model
    GAS504  error    not exactly one graph input once initializers are set aside
    GAS505  error    input rank, dims or element type not the modality's; a dynamic H/W (the
                     benchmark falls back to 224x224) unless allowed, then a warning; warning:
                     a dynamic channel dim
    GAS506  error    first output not floating-point ``[batch, C]`` with C in 1..3;
                     warning: dynamic C, or no declared shape
    GAS507  error    onnxruntime cannot build a session or run the dummy batch
    GAS508  error    the run's first output has the wrong shape, is not float, or is not finite
    GAS509  warning  the export of a declared model (``format = "onnx"`` with an architecture)
                     warned, e.g. a traced constant (reported by the build, see ``EXPORT_WARNING``)
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from gasbuild.check.container import ONNX_SUFFIX
from gasbuild.check.findings import (
    CheckOptions,
    Finding,
    Severity,
    Submission,
    has_errors,
)
from gasbuild.sandbox.ort_messages import ort_text
from gasbuild.submission import (
    AUDIO_SAMPLES,
    DEFAULT_NUM_FRAMES,
    DEFAULT_RESIZE,
    INPUTS,
    MAX_NUM_FRAMES,
    MODALITIES,
    NUM_CLASSES_ALLOWED,
    Modality,
)

RETIRED_MESSAGE = (
    "the network stopped accepting new ONNX submissions in early 2026; it may refuse this zip"
)
RETIRED_HINT = "prefer the safetensors format: model.py, model_config.yaml and the weights"
_RGB = 3
_SEED = 0
_MAX_LISTED = 5  # names listed in one message before "and N more"
_MAX_MESSAGE = 300
# "[ONNXRuntimeError] : 1 : FAIL : " and "/onnxruntime_src/x/y.h:91 onnxruntime::F(args) ".
_PIXEL_MAX = 255.0
# Legacy ONNX graphs often declare float input; the run then feeds float32 holding 0..255.
_FLOAT_INPUT = "float32"
# A declared dim: a fixed size, a symbolic name, or None when nothing is declared.
Dim = int | str | None
_RANK_TO_MODALITY: dict[int, Modality] = {INPUTS[m].rank: m for m in MODALITIES}

EXPORT_WARNING = "GAS509"  # the build reports the exporter's warnings under this code


@dataclass(frozen=True)
class _Value:
    """A graph input or output as declared: name, element type, and dims (None: no shape)."""

    name: str
    elem: int
    dims: tuple[Dim, ...] | None

    def shape_text(self) -> str:
        if self.dims is None:
            return "no declared shape"
        return "[" + ", ".join("?" if d is None else str(d) for d in self.dims) + "]"


@dataclass(frozen=True)
class _Feed:
    """What the dummy run feeds: the input's name, element type and one sample's shape."""

    name: str
    modality: Modality
    dtype: str  # numpy dtype name
    sample_shape: tuple[int, ...]
    classes: int | None  # the output's fixed C, when declared


def _finding(
    code: str, message: str, name: str, severity: Severity = "error", **kw: Any
) -> Finding:
    return Finding(code, severity, message, file=name, **kw)


def _fixed(dim: Dim) -> int | None:
    """A dim's size when it is fixed and positive (ONNX uses 0 and names for 'unknown')."""
    return dim if isinstance(dim, int) and dim > 0 else None


def check_onnx(
    sub: Submission, opts: CheckOptions, *, allow_dynamic_hw: bool = False
) -> list[Finding]:
    """Every rule for a legacy ONNX submission; the run only when the static rules pass.

    ``allow_dynamic_hw`` turns a dynamic image/video H or W from an error into a warning (the
    benchmark then feeds 224x224); it is a parameter here because only ONNX needs it.
    """
    names = [n for n in sub.names() if n.lower().endswith(ONNX_SUFFIX)]
    if not names:
        retired = Finding("GAS500", "warning", RETIRED_MESSAGE, hint=RETIRED_HINT)
        return [retired, Finding("GAS501", "error", "no .onnx file in the submission")]
    name = names[0]
    data = sub.read(name)
    model, findings = _load(data, name)
    hint, feed = RETIRED_HINT, None
    if model is not None:
        hint = _modality_note(model, opts) or RETIRED_HINT
        dynamic_ok = allow_dynamic_hw or opts.allow_dynamic_hw
        feed, io_findings = _check_io(model, name, opts, allow_dynamic_hw=dynamic_ok)
        findings += io_findings
        del model  # the session builds its own copy: keep one graph in memory, not two
    retired = Finding("GAS500", "warning", RETIRED_MESSAGE, file=name, hint=hint)
    if opts.smoke and feed is not None and not has_errors(findings):
        findings += _run(data, name, feed, opts)
    return [retired, *findings]


def _load(data: bytes, name: str) -> tuple[Any | None, list[Finding]]:
    """Parse, refuse external data, then the full checker. None when nothing more can be read."""
    import onnx

    try:
        model = onnx.load_model_from_string(data)
    except Exception as exc:  # protobuf raises DecodeError, RuntimeWarning-free ValueError, ...
        return None, [_finding("GAS501", f"not a parsable ONNX model: {_first_line(exc)}", name)]
    if not model.HasField("graph"):
        return None, [_finding("GAS501", "not an ONNX model: it holds no graph", name)]
    external = sorted({t.name or "<unnamed>" for t in _all_tensors(model) if _is_external(t)})
    if external:
        message = f"{len(external)} tensor(s) keep their data in an external file: "
        message += _listed(external)
        hint = "save with onnx.save(model, path, save_as_external_data=False); 2 GB at most"
        return None, [_finding("GAS502", message, name, hint=hint)]
    try:
        onnx.checker.check_model(model, full_check=True)
    except Exception as exc:  # ValidationError, InferenceError, and whatever a bad proto raises
        return model, [_finding("GAS503", f"onnx.checker: {_first_line(exc)}", name)]
    return model, []


def _is_external(tensor: Any) -> bool:
    import onnx

    return bool(tensor.data_location == onnx.TensorProto.EXTERNAL or tensor.external_data)


def _all_tensors(model: Any) -> Iterator[Any]:
    """Every TensorProto of a model: initializers and attributes, in subgraphs and functions."""
    yield from _graph_tensors(model.graph)
    for function in model.functions:
        for node in function.node:
            yield from _node_tensors(node)


def _graph_tensors(graph: Any) -> Iterator[Any]:
    yield from graph.initializer
    for sparse in graph.sparse_initializer:
        yield from (sparse.values, sparse.indices)
    for node in graph.node:
        yield from _node_tensors(node)


def _node_tensors(node: Any) -> Iterator[Any]:
    for attr in node.attribute:
        if attr.HasField("t"):
            yield attr.t
        yield from attr.tensors
        if attr.HasField("sparse_tensor"):
            yield from (attr.sparse_tensor.values, attr.sparse_tensor.indices)
        for sparse in attr.sparse_tensors:
            yield from (sparse.values, sparse.indices)
        if attr.HasField("g"):
            yield from _graph_tensors(attr.g)
        for graph in attr.graphs:
            yield from _graph_tensors(graph)


def _value(info: Any) -> _Value:
    """A ValueInfoProto as plain data (element type 0 when it is not a tensor)."""
    kind = info.type.WhichOneof("value")
    if kind != "tensor_type":
        return _Value(info.name, 0, None)
    tensor = info.type.tensor_type
    if not tensor.HasField("shape"):
        return _Value(info.name, tensor.elem_type, None)
    dims: list[Dim] = []
    for dim in tensor.shape.dim:
        which = dim.WhichOneof("value")
        dims.append(
            dim.dim_value
            if which == "dim_value"
            else dim.dim_param
            if which == "dim_param"
            else None
        )
    return _Value(info.name, tensor.elem_type, tuple(dims))


def _graph_inputs(model: Any) -> list[_Value]:
    """Inputs the caller must feed: graph inputs that no initializer provides."""
    initialized = {t.name for t in model.graph.initializer}
    initialized |= {s.values.name for s in model.graph.sparse_initializer}
    return [_value(i) for i in model.graph.input if i.name not in initialized]


def _modality_of(model: Any, opts: CheckOptions) -> tuple[Modality | None, bool]:
    """The modality to check against, and whether it was inferred from the input's rank."""
    if opts.modality is not None:
        return opts.modality, False
    inputs = _graph_inputs(model)
    if len(inputs) != 1 or inputs[0].dims is None:
        return None, True
    return _RANK_TO_MODALITY.get(len(inputs[0].dims)), True


def _modality_note(model: Any, opts: CheckOptions) -> str | None:
    """Say which modality was assumed when none was given, so a wrong guess is visible."""
    modality, inferred = _modality_of(model, opts)
    if not inferred or modality is None:
        return None
    rank = INPUTS[modality].rank
    return (
        f"checked as {modality}, inferred from the input's rank {rank}; "
        "pass --modality to say otherwise"
    )


def _check_io(
    model: Any, name: str, opts: CheckOptions, *, allow_dynamic_hw: bool
) -> tuple[_Feed | None, list[Finding]]:
    """Input and first-output rules; a feed for the run when the input is usable."""
    inputs = _graph_inputs(model)
    if len(inputs) != 1:
        listed = _listed([i.name for i in inputs]) if inputs else "none"
        message = (
            f"the graph takes {len(inputs)} inputs ({listed}); the benchmark feeds exactly one"
        )
        return None, [_finding("GAS504", message, name)]
    value = inputs[0]
    modality, _ = _modality_of(model, opts)
    if modality is None:
        expected = ", ".join(f"rank {INPUTS[m].rank} for {m}" for m in MODALITIES)
        message = f"input {value.name!r} has {value.shape_text()}, which fits no modality"
        return None, [_finding("GAS505", message, name, hint=expected)]
    rules = _InputRules(value, modality, name, allow_dynamic_hw)
    sample_shape = rules.check()
    classes, out_findings = _check_output(model, name)
    findings = rules.findings + out_findings
    if sample_shape is None:
        return None, findings
    return _Feed(value.name, modality, rules.dtype, sample_shape, classes), findings


def _elem_type(numpy_name: str) -> int:
    """The ONNX element type of a numpy dtype name (the contract table speaks numpy)."""
    import numpy as np
    from onnx import helper

    return int(helper.np_dtype_to_tensor_dtype(np.dtype(numpy_name)))


def _elem_name(elem: int) -> str:
    import onnx

    try:
        return str(onnx.TensorProto.DataType.Name(elem))
    except ValueError:
        return f"type {elem}"


@dataclass
class _InputRules:
    """The input rules of one modality (SPEC.md §1, §3), collecting findings as they go."""

    value: _Value
    modality: Modality
    file: str
    allow_dynamic_hw: bool

    def __post_init__(self) -> None:
        self.findings: list[Finding] = []
        self.dtype: str = INPUTS[self.modality].dtype  # numpy name of the fed type, once matched

    def error(self, message: str, hint: str | None = None, severity: Severity = "error") -> None:
        full = f"input {self.value.name!r} {self.value.shape_text()}: {message}"
        self.findings.append(_finding("GAS505", full, self.file, severity, hint=hint))

    def check(self) -> tuple[int, ...] | None:
        """One sample's shape (batch left out) for the run, or None when it cannot be fed."""
        spec = INPUTS[self.modality]
        dims = self.value.dims
        if dims is None or len(dims) != spec.rank:
            self.error(f"{self.modality} models take {spec.description}")
            return None
        ok = self._element_type() and self._batch(dims[0])
        shape = self._audio(dims) if self.modality == "audio" else self._pixels(dims)
        return shape if ok else None

    def _element_type(self) -> bool:
        allowed = list(dict.fromkeys((INPUTS[self.modality].dtype, _FLOAT_INPUT)))
        for numpy_name in allowed:
            if self.value.elem == _elem_type(numpy_name):
                self.dtype = numpy_name
                return True
        got = _elem_name(self.value.elem)
        self.error(f"element type {got}; the benchmark feeds {' or '.join(allowed)}")
        return False

    def _batch(self, dim: Dim) -> bool:
        if _fixed(dim) is None:
            return True
        batch = INPUTS[self.modality].benchmark_batch
        self.error(
            f"the batch dim is fixed at {dim}; the benchmark feeds batches of 1 to {batch}",
            hint="export axis 0 as dynamic, e.g. dynamic_axes={'input': {0: 'batch'}}",
        )
        return False

    def _audio(self, dims: tuple[Dim, ...]) -> tuple[int, ...] | None:
        samples = _fixed(dims[1])
        if samples is not None and samples != AUDIO_SAMPLES:
            self.error(f"{samples} samples; the benchmark feeds {AUDIO_SAMPLES} (16 kHz, 6 s)")
            return None
        return (AUDIO_SAMPLES,)

    def _pixels(self, dims: tuple[Dim, ...]) -> tuple[int, ...] | None:
        *lead, channels, height, width = dims[1:]
        frames = self._frames(lead[0]) if lead else None
        if not self._channels(channels):
            return None
        size = self._height_width(height, width)
        if size is None or (lead and frames is None):
            return None
        return ((frames,) if frames is not None else ()) + (_RGB, *size)

    def _frames(self, dim: Dim) -> int | None:
        frames = _fixed(dim)
        if frames is None:
            return DEFAULT_NUM_FRAMES
        if frames > MAX_NUM_FRAMES:
            self.error(f"{frames} frames; the benchmark feeds at most {MAX_NUM_FRAMES}")
            return None
        return frames

    def _channels(self, dim: Dim) -> bool:
        channels = _fixed(dim)
        if channels is None:
            self.error(
                f"the channel dim is dynamic; the benchmark feeds {_RGB} (RGB)", None, "warning"
            )
            return True
        if channels != _RGB:
            self.error(f"{channels} channels; the benchmark feeds {_RGB} (RGB, channel-first)")
            return False
        return True

    def _height_width(self, height: Dim, width: Dim) -> tuple[int, int] | None:
        fixed = (_fixed(height), _fixed(width))
        if fixed[0] is not None and fixed[1] is not None:
            return fixed[0], fixed[1]
        default = f"{DEFAULT_RESIZE[0]}x{DEFAULT_RESIZE[1]}"
        message = f"dynamic height/width: the benchmark falls back to {default}"
        if self.allow_dynamic_hw:
            self.error(message, None, "warning")
            return DEFAULT_RESIZE
        hint = (
            "export with a fixed H and W, the size the model was trained at (or, if 224x224 "
            "is what you want, set allow_dynamic_hw = true on the model in gas.toml)"
        )
        self.error(message, hint=hint)
        return None


def _check_output(model: Any, name: str) -> tuple[int | None, list[Finding]]:
    """The first output must be ``[batch, C]`` float logits; returns C when it is fixed."""
    if not model.graph.output:
        return None, [_finding("GAS506", "the graph has no output", name)]
    value = _value(model.graph.output[0])
    where = f"first output {value.name!r} {value.shape_text()}"
    allowed = "/".join(map(str, NUM_CLASSES_ALLOWED))
    findings: list[Finding] = []
    if value.elem and not _is_float(value.elem):
        message = f"{where}: element type {_elem_name(value.elem)}; logits must be floating point"
        findings.append(_finding("GAS506", message, name))
    if value.dims is None:
        message = f"{where}: only the run can check it is [batch, C]"
        return None, [*findings, _finding("GAS506", message, name, "warning")]
    if len(value.dims) != 2:
        message = f"{where}: logits must be [batch, C] with C = {allowed}"
        return None, [*findings, _finding("GAS506", message, name)]
    classes = _fixed(value.dims[1])
    if classes is None:
        message = f"{where}: C is dynamic; the run checks it is {allowed}"
        return None, [*findings, _finding("GAS506", message, name, "warning")]
    if classes not in NUM_CLASSES_ALLOWED:
        message = f"{where}: C = {classes}; the benchmark misreads anything but C = {allowed}"
        return None, [*findings, _finding("GAS506", message, name)]
    return classes, findings


def _is_float(elem: int) -> bool:
    import onnx

    t = onnx.TensorProto
    return elem in {t.FLOAT, t.FLOAT16, t.BFLOAT16, t.DOUBLE}


def _run(data: bytes, name: str, feed: _Feed, opts: CheckOptions) -> list[Finding]:
    """Build a CPU session and run a dummy batch at ``smoke_batch`` and at 1."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 4  # fatal only: failures are reported here, as findings
    try:
        session = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph/... classes
        return [_finding("GAS507", f"onnxruntime cannot load the model: {ort_text(exc)}", name)]
    for batch in dict.fromkeys((opts.smoke_batch, 1)):
        try:
            outputs = session.run(None, {feed.name: _dummy(feed, batch)})
        except Exception as exc:
            message = f"onnxruntime failed on a batch of {batch}: {ort_text(exc)}"
            return [_finding("GAS507", message, name)]
        problem = _output_problem(outputs[0], batch, feed.classes)
        if problem is not None:
            return [_finding("GAS508", f"on a batch of {batch}, the first output {problem}", name)]
    return []


def _dummy(feed: _Feed, batch: int) -> Any:
    """A seeded batch in the benchmark's value range: pixels 0..255, audio in [-1, 1]."""
    import numpy as np

    rng = np.random.default_rng(_SEED)
    shape = (batch, *feed.sample_shape)
    if feed.modality == "audio":
        return rng.uniform(-1.0, 1.0, shape).astype(np.float32)
    if feed.dtype == "uint8":
        return rng.integers(0, int(_PIXEL_MAX) + 1, shape, dtype=np.uint8)
    return rng.uniform(0.0, _PIXEL_MAX, shape).astype(np.float32)


def _output_problem(output: Any, batch: int, classes: int | None) -> str | None:
    """Why a run's first output is not usable logits, or None when it is."""
    import numpy as np

    array = np.asarray(output)
    if not np.issubdtype(array.dtype, np.floating):
        return f"has dtype {array.dtype}; logits must be floating point"
    allowed = "/".join(map(str, NUM_CLASSES_ALLOWED))
    expected = f"[{batch}, {classes}]" if classes is not None else f"[{batch}, C = {allowed}]"
    shape_ok = array.ndim == 2 and array.shape[0] == batch
    if classes is not None:
        shape_ok = shape_ok and array.shape[1] == classes
    else:
        shape_ok = shape_ok and array.shape[1] in NUM_CLASSES_ALLOWED
    if not shape_ok:
        return f"has shape {list(array.shape)}, expected {expected}"
    if not np.isfinite(array).all():
        return "holds NaN or Inf"
    return None


def _listed(names: list[str]) -> str:
    shown = ", ".join(repr(n) for n in names[:_MAX_LISTED])
    return shown + (f" and {len(names) - _MAX_LISTED} more" if len(names) > _MAX_LISTED else "")


def _first_line(exc: BaseException | str) -> str:
    """An exception's text on one line, bounded (checker messages run to pages, and some break
    their first sentence across lines)."""
    text = " ".join(str(exc).split())
    if text or isinstance(exc, str):
        return text[:_MAX_MESSAGE]
    return type(exc).__name__
