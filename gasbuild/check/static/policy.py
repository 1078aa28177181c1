"""What model.py may not reach, as tables: codes, blocked members, writing APIs, guarded calls.

The network's own lists live in ``gasbuild.submission``; these tables are what those lists imply
(gasbuild's additions), kept apart from the code that applies them.
"""

from __future__ import annotations

from typing import Final

from gasbuild.check.findings import Severity
from gasbuild.submission import (
    ALLOWED_IMPORTS,
    BLOCKED_CALLS,
    BLOCKED_SUBMODULES,
)

ENCODING: Final = "GAS301"
SYNTAX: Final = "GAS302"
BLOCKED_IMPORT: Final = "GAS303"
UNLISTED_IMPORT: Final = "GAS304"
RELATIVE_IMPORT: Final = "GAS305"
BLOCKED_CALL: Final = "GAS306"
BLOCKED_MEMBER: Final = "GAS307"
DUNDER: Final = "GAS308"
LOAD_MODEL: Final = "GAS309"
LOAD_MODEL_KEYWORDS: Final = "GAS310"
SIDE_EFFECT: Final = "GAS311"
DYNAMIC_CODE: Final = "GAS312"

# --------------------------------------------------------------------------- what the lists imply


def _words(text: str) -> frozenset[str]:
    """A set written as whitespace-separated words (long tables stay readable)."""
    return frozenset(text.split())


# Builtins the SPEC does not list but that a model has no business with: introspection (vars,
# delattr), a console (breakpoint, input) and file access (open).
EXTRA_BLOCKED_BUILTINS: Final[frozenset[str]] = frozenset(
    {"vars", "delattr", "breakpoint", "input", "open"}
)
OPEN = "open"

# Members that download, load native code or unpickle, beyond BLOCKED_SUBMODULES.
EXTRA_BLOCKED_MEMBERS: Final[frozenset[str]] = frozenset(
    {
        "torch.hub",
        "torch.ops.load_library",
        "torch.classes",
        "torch.package",
        "torch.utils.model_zoo",
        "torch.jit.load",
        "torch.jit.trace_module",
        "torch.cuda.jiterator",
        "torch.distributed",
        "numpy.f2py",
        "numpy.distutils",
        "transformers.dynamic_module_utils",
        "torch.jit.CompilationUnit",
        # private native bindings and compilers: never needed by a model's own code
        "torch._C",
        "torch._dynamo",
        "torch._inductor",
        "torch._ops",
        "torch._classes",
        "torch._library",
    }
)
# Functions that write files; a model only ever reads its weights.
FILE_WRITERS: Final[frozenset[str]] = frozenset(
    {
        "torch.save",
        "numpy.save",
        "numpy.savez",
        "numpy.savez_compressed",
        "numpy.savetxt",
        "safetensors.torch.save_file",
        "safetensors.numpy.save_file",
        "torchaudio.save",
        "torchvision.utils.save_image",
        "cv2.imwrite",
        "cv2.VideoWriter",
    }
)
# Methods that write or delete files, distinctive enough to flag on any object.
WRITE_METHODS: Final[frozenset[str]] = frozenset(
    {
        "write_text",
        "write_bytes",
        "unlink",
        "rmdir",
        "touch",
        "symlink_to",
        "hardlink_to",
        "chmod",
        "tofile",
        "save_pretrained",
    }
)
BLOCKED_MEMBERS: Final = BLOCKED_SUBMODULES | EXTRA_BLOCKED_MEMBERS
# Reached through a module object that is passed around, these cannot be followed: the parents of
# blocked members (torch.jit, torch.utils, ...) may only be used as ``parent.member``.
WATCHED_PARENTS: Final = frozenset(
    ".".join(m.split(".")[:i]) for m in BLOCKED_MEMBERS for i in range(2, m.count(".") + 1)
)
# On an object gasbuild cannot resolve (``self.x``, a parameter), these attribute names are still
# unmistakable; ``.jit.script`` style pairs are matched from the member lists.
DISTINCTIVE_MEMBERS: Final = frozenset(
    {"cpp_extension", "ctypeslib", "load_library", "model_zoo", "jiterator", "f2py"}
)
# Submodules whose names collide with a blocked top-level module but are harmless.
_BENIGN_SUBMODULES: Final = frozenset({"torch.signal"})
NOT_SMUGGLED: Final = ALLOWED_IMPORTS | _BENIGN_SUBMODULES
PICKLE_LOADERS: Final = frozenset({"torch.load", "torch.serialization.load"})
NUMPY_LOADERS: Final = frozenset({"numpy.load"})
STRING_EVALUATORS: Final = frozenset({"typing.get_type_hints", "typing.ForwardRef"})

# Known submodules of allowed modules, so that ``from torch import jit`` is told apart from
# ``from torch import tensor`` without importing anything. Unknown names are taken as attributes;
# names starting with an underscore are refused either way (private modules such as torch._C).
SUBMODULES: Final[dict[str, frozenset[str]]] = {
    "torch": _words(
        """accelerator amp ao autograd backends compiler contrib cpu cuda distributed
        distributions export fft func functional futures fx hub jit library linalg masked monitor
        mps mtia multiprocessing nested nn numa onnx optim overrides package profiler quantization
        quasirandom random return_types serialization signal sparse special storage testing
        torch_version types utils version xpu ops classes"""
    ),
    "torch.nn": _words(
        """attention backends common_types cpp grad init intrinsic modules parallel parameter qat
        quantizable quantized utils"""
    ),
    "torch.cuda.amp": frozenset({"autocast_mode", "common", "grad_scaler"}),
    "torchvision": _words(
        """datasets datapoints extension io models ops transforms tv_tensors utils version"""
    ),
    "torchvision.models": _words(
        """alexnet convnext densenet detection efficientnet feature_extraction googlenet inception
        maxvit mnasnet mobilenet mobilenetv2 mobilenetv3 optical_flow quantization regnet resnet
        segmentation shufflenetv2 squeezenet swin_transformer vgg video vision_transformer"""
    ),
    "torchvision.transforms": frozenset(
        {"autoaugment", "functional", "functional_pil", "functional_tensor", "transforms", "v2"}
    ),
    "torchaudio": _words(
        """backend compliance datasets functional io kaldi_io lib models pipelines prototype
        sox_effects transforms utils version"""
    ),
    "transformers": _words(
        """activations commands configuration_utils convert_slow_tokenizer data debug_utils
        deepspeed dynamic_module_utils feature_extraction_utils file_utils generation
        hf_argparser image_processing_utils integrations modeling_outputs modeling_utils models
        onnx optimization pipelines processing_utils pytorch_utils quantizers tokenization_utils
        trainer training_args utils"""
    ),
    "timm": frozenset(
        {"data", "layers", "loss", "models", "optim", "scheduler", "utils", "version"}
    ),
    "einops": frozenset({"array_api", "einops", "experimental", "layers", "packing", "parsing"}),
    "safetensors": frozenset({"flax", "mlx", "numpy", "paddle", "tensorflow"}),
    "flash_attn": _words(
        """bert_padding flash_attn_interface flash_attn_triton flash_blocksparse_attention layers
        losses models modules ops utils"""
    ),
    "PIL": _words(
        """ExifTags ImageChops ImageCms ImageColor ImageDraw ImageEnhance ImageFile ImageFilter
        ImageFont ImageGrab ImageMath ImageMode ImageMorph ImageOps ImagePalette ImagePath ImageQt
        ImageSequence ImageShow ImageStat ImageTk ImageTransform ImageWin TiffTags
        features"""
    ),
    "cv2": frozenset(
        {"config", "data", "gapi", "mat_wrapper", "misc", "typing", "utils", "version"}
    ),
    "skimage": _words(
        """color data draw exposure feature filters future graph io measure metrics morphology
        registration restoration segmentation transform util viewer"""
    ),
    "decord": _words(
        """audio_reader av_reader base bridge data function logging ndarray video_loader
        video_reader"""
    ),
    "numpy": _words(
        """char core ctypeslib distutils dtypes exceptions f2py fft lib linalg ma matlib matrixlib
        polynomial random rec strings testing typing version"""
    ),
    "scipy": _words(
        """cluster constants datasets differentiate fft fftpack integrate interpolate io linalg misc
        odr optimize sparse spatial special stats"""
    ),
    "scipy.signal": frozenset({"windows"}),
    "fvcore": frozenset({"common", "nn", "transforms"}),
    "ultralytics": _words("""assets cfg data engine hub models nn solutions trackers utils"""),
    "collections": frozenset({"abc"}),
}

# Dunder methods a model may define (in a class body) without reaching interpreter internals.
ALLOWED_DUNDER_METHODS: Final[frozenset[str]] = _words(
    """__init__ __post_init__ __call__ __repr__ __str__ __len__ __getitem__ __setitem__
    __contains__ __iter__ __next__ __enter__ __exit__ __eq__ __ne__ __lt__ __le__ __gt__ __ge__
    __hash__ __bool__ __add__ __sub__ __mul__ __matmul__ __truediv__ __neg__"""
)
# Module/class metadata that may be *assigned* (never read back).
ALLOWED_DUNDER_STORES: Final = frozenset({"__all__", "__slots__", "__version__"})
# Strings that name nothing a model needs when they stand alone as a call argument or key: the
# members of blocked chains, minus words too common to mean anything on their own.
_GENERIC_WORDS: Final = frozenset({"utils", "ops", "classes", "package", "load", "cuda", "library"})
WRITE_MODE = frozenset("wax+")
MODE_LETTERS = frozenset("rwaxbt+")
BLOCKED_WORDS: Final = (
    frozenset(p for m in BLOCKED_MEMBERS for p in m.split(".")[1:]) - _GENERIC_WORDS
)
# Builtin names that are also ordinary words for data ("input", "open"): not flagged as strings.
STRING_BUILTINS: Final = (BLOCKED_CALLS | EXTRA_BLOCKED_BUILTINS) - {"input", "open"}

CALL_HINTS: Final[dict[str, str]] = {
    "eval": "model.py may not evaluate code built at run time",
    "exec": "model.py may not run code built at run time",
    "compile": "no run-time compilation, torch.compile included: the analyzer matches the name",
    "__import__": "import allowed modules at the top of model.py",
    "getattr": "use plain attribute access, obj.name, or keep the objects in a dict/ModuleDict",
    "setattr": "assign directly, obj.name = value, or keep the objects in a dict/ModuleDict",
    "globals": "keep shared state in an explicit module-level dict",
    "locals": "pass values explicitly",
    "vars": "use plain attribute access; vars() exposes a module's or object's namespace",
    "delattr": "write del obj.name",
    "breakpoint": "the network runs the model without a console; remove debugging hooks",
    "input": "the network runs the model without a console",
    "open": "load the weights with safetensors' load_file(weights_path); never write files",
}
METHOD_HINTS: Final[dict[str, str]] = {
    "eval": "the loader calls .eval() itself; write model.train(False) if you need it",
}
DUNDER_HINT = (
    "dunder attributes reach interpreter internals, the classic sandbox escape; "
    "write the attribute or class name out plainly"
)
DUNDER_NAME_HINTS: Final[dict[str, str]] = {
    "__name__": "model.py is never run as a script: drop the `if __name__ == ...` block",
    "__file__": "find files shipped next to the weights with Path(weights_path).parent",
}

FUTURE = "__future__"

Verdict = tuple[str, Severity, str, str]  # code, severity, message, hint
WEIGHTS_ONLY = "without weights_only=True"
DOWNLOAD_HINT = "the network may run the model offline; ship every weight in the safetensors file"
STRING_HINT = "names built or looked up from strings evade the checks; write the code out plainly"
