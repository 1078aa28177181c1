"""What model.py may not reach, as tables: codes, blocked members, writing APIs, guarded calls.

The network's own lists live in ``gasbuild.submission``; these tables are what those lists imply
(gasbuild's additions), kept apart from the code that applies them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

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

# Members that download, run programs, load native code, generate code or unpickle, beyond
# BLOCKED_SUBMODULES. Each entry blocks itself and everything under it.
EXTRA_BLOCKED_MEMBERS: Final[frozenset[str]] = _words(
    """
    torch.hub torch.ops.load_library torch.ops.import_module torch.classes torch.package
    torch.utils.model_zoo torch.jit.load torch.jit.save torch.jit.trace_module
    torch.jit.CompilationUnit torch.cuda.jiterator torch.distributed torch.multiprocessing
    torch.fx torch.library torch.testing torch.onnx torch.export torch.compiler torch.profiler
    torch.autograd.profiler torch._C torch._dynamo torch._inductor torch._ops torch._classes
    torch._library
    numpy.f2py numpy.distutils numpy.testing numpy.lib.npyio numpy.lib.format numpy.lib.utils
    numpy.DataSource numpy.loadtxt numpy.genfromtxt numpy.fromregex numpy.recfromtxt
    numpy.recfromcsv numpy.lookfor numpy.info numpy.source numpy.ma.dump numpy.ma.dumps
    numpy.ma.load numpy.ma.loads
    scipy.datasets skimage.io skimage.data skimage.viewer
    torchvision.io torchvision.datasets torchaudio.io torchaudio.kaldi_io torchaudio.datasets
    torchaudio.utils torchaudio.backend torchaudio.load torchaudio.info
    PIL.ImageShow PIL.ImageGrab PIL.EpsImagePlugin
    cv2.VideoCapture decord.VideoReader decord.AudioReader decord.AVReader decord.VideoLoader
    transformers.dynamic_module_utils transformers.utils.hub transformers.utils.import_utils
    transformers.file_utils transformers.pipeline transformers.pipelines
    transformers.testing_utils transformers.commands transformers.agents transformers.tools
    transformers.load_tool transformers.integrations transformers.trainer transformers.Trainer
    transformers.training_args transformers.hf_argparser transformers.onnx
    transformers.debug_utils transformers.deepspeed
    transformers.TrainingArguments transformers.Seq2SeqTrainer
    transformers.Seq2SeqTrainingArguments transformers.HfArgumentParser
    torchaudio.pipelines torchaudio.prototype torchaudio.lib
    timm.utils timm.models.load_model_config_from_hf timm.models.push_to_hf_hub
    timm.models.load_pretrained timm.models.load_custom_pretrained
    ultralytics.utils ultralytics.hub ultralytics.engine ultralytics.models ultralytics.data
    ultralytics.solutions ultralytics.YOLO ultralytics.YOLOE ultralytics.YOLOWorld
    ultralytics.RTDETR ultralytics.SAM ultralytics.FastSAM ultralytics.NAS
    fvcore.common
    """
)
# Namespaces of allowed packages that are blocked except for the names listed: torch.jit compiles
# and loads code, torch.utils holds compilers, environment probes that run commands, data loaders
# that start processes, and torch.serialization is pickle. SPEC §2: anything not allowed is blocked.
NAMESPACE_ALLOWLISTS: Final[dict[str, frozenset[str]]] = {
    "torch.jit": _words(
        """is_scripting is_tracing ignore unused export Final annotate Attribute ScriptModule
        ScriptFunction interface Error isinstance"""
    ),
    "torch.utils": _words("checkpoint hooks dlpack flop_counter weak module_tracker"),
    "torch.serialization": frozenset({"load"}),
    "numpy.lib": _words("stride_tricks scimath mixins array_utils NumpyVersion"),
}
# Private names (``_x``) and test helpers of allowed packages are blocked: numpy's test helpers
# run code and commands, ``torch.fx.graph_module._exec_with_source`` execs source. These private
# helpers are used by ordinary model code and reach nothing.
PRIVATE_ALLOWED: Final[frozenset[str]] = _words(
    """torch._assert torch.nn.modules.utils._pair torch.nn.modules.utils._single
    torch.nn.modules.utils._triple torch.nn.modules.utils._quadruple
    torch.nn.modules.utils._ntuple"""
)
TEST_COMPONENTS: Final[frozenset[str]] = _words("testing tests test testing_utils test_utils")
# Functions that write files; a model only ever reads its weights.
FILE_WRITERS: Final[frozenset[str]] = _words(
    """
    torch.save torch.serialization.save numpy.save numpy.savez numpy.savez_compressed
    numpy.savetxt numpy.lib.format.write_array safetensors.torch.save_file
    safetensors.torch.save_model safetensors.numpy.save_file safetensors.flax.save_file
    safetensors.tensorflow.save_file safetensors.paddle.save_file safetensors.mlx.save_file
    torchaudio.save torchvision.utils.save_image cv2.imwrite cv2.imwritemulti cv2.VideoWriter
    cv2.FileStorage scipy.io.savemat scipy.io.wavfile.write scipy.io.mmwrite scipy.io.hb_write
    """
)
# Methods that write or delete files, distinctive enough to flag on any object, called or not.
WRITE_METHODS: Final[frozenset[str]] = _words(
    """
    write_text write_bytes unlink rmdir touch mkdir symlink_to hardlink_to link_to chmod lchmod
    tofile save_pretrained save_file save_model savemat savez savez_compressed savetxt imwrite
    imsave save_image write_file write_png write_jpeg write_video save_checkpoint
    export_chrome_trace export_stacks to_json_file save_vocabulary dumpToFile dumpToPbtxt
    writeTextGraph
    """
)
# Common method names that write (or, for show, start a viewer program) when *called* on a file,
# image or array object; as plain attributes (``self.save = [...]``) they mean nothing.
CALLED_WRITE_METHODS: Final[frozenset[str]] = _words("save write writelines dump show export")
# ``Path.rename(target)`` and ``Path.replace(target)`` take one argument; ``str.replace`` two.
ONE_ARGUMENT_WRITERS: Final[frozenset[str]] = frozenset({"rename", "replace"})
# Methods that upload or download.
NETWORK_METHODS: Final[frozenset[str]] = frozenset({"push_to_hub", "get_state_dict"})
# The last name of a function of an allowed package that downloads or uploads.
DOWNLOADER_NAMES: Final[frozenset[str]] = _words(
    """cached_file cached_files cached_path hf_hub_download snapshot_download download_url
    download_url_to_file load_state_dict_from_url download_file_from_google_drive
    download_and_extract_archive download_cached_file urlretrieve get_file_from_repo
    load_pretrained load_custom_pretrained push_to_hub push_to_hf_hub"""
)
# timm model names that make create_model fetch a config (and weights) from the network.
TIMM_REMOTE_PREFIXES: Final[tuple[str, ...]] = ("hf-hub:", "hf_hub:", "http:", "https:")
# The last name of a function of an allowed package that writes files, however it is reached.
WRITER_NAMES: Final[frozenset[str]] = (
    WRITE_METHODS
    | frozenset({"save", "write", "writelines", "dump", "write_array", "mmwrite", "hb_write"})
    | frozenset({"imwritemulti"})
)
# Builders of classes at run time (GAS312), beyond three-argument type().
CLASS_BUILDERS: Final[frozenset[str]] = _words(
    "dataclasses.make_dataclass abc.ABCMeta enum.EnumMeta enum.EnumType"
)


@dataclass(frozen=True)
class Guard:
    """One argument of a guarded call that decides whether the call is dangerous.

    ``position`` is its index among positional arguments (None: keyword-only). Only a literal in
    ``safe`` is safe: any other literal, any expression, and any ``*args``/``**kwargs`` that could
    carry it are the dangerous value. ``absent`` says what leaving it out means.
    """

    keyword: str
    position: int | None
    safe: tuple[object, ...] | Literal["read mode"]
    absent: Literal["safe", "warning", "error"]
    danger: Literal["unpickle", "write", "download", "remote code"]


# The ``safe`` of a file mode: any literal mode that does not write ("r", "rb", "rt").
READ_MODE: Final = "read mode"
# Builtin open(file, mode) and a method .open(mode): only a literal read mode is safe.
OPEN_MODE: Final = Guard("mode", 1, READ_MODE, "safe", "write")
_UNPICKLE = Guard("weights_only", None, (True,), "warning", "unpickle")
_PRETRAINED = Guard("pretrained", 1, (False, None), "safe", "download")
# Guarded calls of allowed packages, by dotted path.
GUARDED_CALLS: Final[dict[str, tuple[Guard, ...]]] = {
    "torch.load": (_UNPICKLE,),
    "torch.serialization.load": (_UNPICKLE,),
    "numpy.load": (
        Guard("allow_pickle", 2, (False,), "safe", "unpickle"),
        Guard("mmap_mode", 1, (None, "r", "c"), "safe", "write"),
    ),
    "numpy.lib.format.read_array": (Guard("allow_pickle", 1, (False,), "safe", "unpickle"),),
    "numpy.lib.format.open_memmap": (Guard("mode", 1, ("r", "c"), "error", "write"),),
    "numpy.memmap": (Guard("mode", 2, ("r", "c", "readonly", "copyonwrite"), "error", "write"),),
    "torch.from_file": (Guard("shared", 1, (False, None), "safe", "write"),),
    "timm.create_model": (_PRETRAINED,),
    "timm.models.create_model": (_PRETRAINED,),
    "timm.models.load_checkpoint": (_UNPICKLE,),
    "timm.models.load_state_dict": (_UNPICKLE,),
    "scipy.io.netcdf_file": (Guard("mode", 1, ("r",), "safe", "write"),),
    "scipy.io.FortranFile": (Guard("mode", 1, ("r",), "safe", "write"),),
}
# Every torchvision model builder downloads when given weights.
GUARDED_PREFIXES: Final[dict[str, tuple[Guard, ...]]] = {
    "torchvision.models.": (
        Guard("weights", None, (None,), "safe", "download"),
        Guard("weights_backbone", None, (None,), "safe", "download"),
    ),
}
# Methods guarded on any object (the receiver is rarely known): storage files opened shared
# write back; from_pretrained runs remote code when told to trust it.
GUARDED_METHODS: Final[dict[str, tuple[Guard, ...]]] = {
    "from_file": (Guard("shared", 1, (False, None), "safe", "write"),),
    "from_pretrained": (Guard("trust_remote_code", None, (False, None), "safe", "remote code"),),
    "from_config": (Guard("trust_remote_code", None, (False, None), "safe", "remote code"),),
}
# Keywords that are dangerous on any call whenever they are given with a value not known safe.
KEYWORD_GUARDS: Final[dict[str, Guard]] = {
    "weights_only": Guard("weights_only", None, (True,), "safe", "unpickle"),
    "allow_pickle": Guard("allow_pickle", None, (False,), "safe", "unpickle"),
    "trust_remote_code": Guard("trust_remote_code", None, (False, None), "safe", "remote code"),
    "pretrained": Guard("pretrained", None, (False, None), "safe", "download"),
    "download": Guard("download", None, (False, None), "safe", "download"),
}
# Names of methods whose arguments must be seen: passed around as values they cannot be checked.
CHECKED_METHODS: Final[frozenset[str]] = (
    frozenset({"open"}) | frozenset(GUARDED_METHODS) | CALLED_WRITE_METHODS | ONE_ARGUMENT_WRITERS
)
# The pseudo-module of a method taken from an object gasbuild cannot resolve (``f = p.open``).
METHOD_ROOT: Final = "<method>"
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

# Modules gasbuild knows by name: passed around as values, their members cannot be followed.
KNOWN_MODULES: Final[frozenset[str]] = (
    ALLOWED_IMPORTS
    | frozenset(f"{parent}.{child}" for parent, kids in SUBMODULES.items() for child in kids)
    | WATCHED_PARENTS
)
ALLOWED_TOP_LEVEL: Final[frozenset[str]] = frozenset(m.split(".")[0] for m in ALLOWED_IMPORTS)

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
_GENERIC_WORDS: Final = _words(
    """utils ops classes package load cuda library data io info source common tools backend
    datasets pipeline pipelines export compiler profiler onnx testing integrations commands
    agents trainer Trainer dump dumps loads save hub fx"""
)
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
PICKLE_HINT = "unpickling runs arbitrary code; load weights with safetensors' load_file"
DOWNLOAD_HINT = "the network may run the model offline; ship every weight in the safetensors file"
STRING_HINT = "names built or looked up from strings evade the checks; write the code out plainly"
