"""model.py checks by AST analysis: never imported, never executed.

The network checks ``model.py`` statically before it runs it, with a private analyzer. gasbuild is
stricter than any plausible version of it: a rejected push loses time and may cost a submission
slot, so every way of *reaching* a blocked name counts, not only the obvious spelling. The source
is parsed with ``ast.parse`` and compiled (never run) to catch what only the compiler rejects;
names are followed through ``import x as y``, ``from x import y as z`` and plain assignments
(``j = torch.jit``) with a best-effort, scope-blind symbol table: when unsure, the check is
strict. The allowed and blocked lists live in ``gasbuild.submission``; this module only adds what
those lists imply.

Codes (every finding has file, line and 1-based character column, except a missing load_model)::

    GAS301  error    not UTF-8, a UTF-8 BOM, a coding cookie naming another encoding, a NUL byte
    GAS302  error    syntax error, from the parser or the compiler, or nesting too deep to check;
                     warning: what Python itself warns about (invalid escapes, ``is 1``)
    GAS303  error    import of a blocked module or a child of one (os.path, google.cloud.storage,
                     concurrent.futures), in any form: import, import as, from-import, star
    GAS304  error    import of a module not on the allow-list, unlisted submodules of allowed
                     packages included (torch.utils.data, torchvision.io, ``from torch import
                     jit``); ``from __future__``; ``from X import *``; private ``from X import _y``
    GAS305  error    relative import: model.py is loaded as a lone module
    GAS306  error    a blocked builtin (eval exec compile __import__ getattr setattr globals
                     locals, plus vars delattr breakpoint input) called, referenced, or shadowed,
                     as a name or as a method (``model.eval()``, ``torch.compile``); file writes:
                     ``open`` for writing or with an unknown mode, ``.open("w")``, torch.save,
                     numpy.save*, save_file, ``.write_text()``, ``.unlink()`` ...
                     warning: ``open`` for reading
    GAS307  error    a blocked member reached by any chain or alias: torch.jit.script/trace/load/
                     CompilationUnit, torch.utils.cpp_extension, numpy.ctypeslib, torch.hub,
                     torch.ops.load_library, torch.classes, torch.package, torch._C ...; a blocked
                     module reached through an allowed one (``pathlib.os``, ``torch.os``); a
                     parent such as torch.jit passed around as a value; ``numpy.load`` with
                     ``allow_pickle``; ``trust_remote_code``; ``torch.load(weights_only=False)``
                     warning: ``torch.load`` without ``weights_only=True``; downloads at load
                     time (``pretrained=``, ``.from_pretrained()`` without
                     ``local_files_only=True``, torchvision ``weights=``)
    GAS308  error    dunder access (``__class__``, ``__dict__``, ``__builtins__``, ``__file__`` ...)
                     in attributes, names, parameters, keywords, class patterns and format
                     strings, except ordinary dunder method definitions and ``X.__init__(...)``
                     calls; a string naming a blocked module, builtin, member or a dunder used as
                     a call argument or subscript, or built from pieces (``"o" + "s"``,
                     f-strings, ``"".join``, ``%``, ``.format``, ``[::-1]``, ``chr``)
    GAS309  error    no module-level ``load_model``, an async one, or one without a positional
                     parameter for the weights path; warning: bound to something not checkable
    GAS310  warning  ``load_model`` takes neither ``num_classes`` nor ``**kwargs``
    GAS311  warning  module-level code with side effects (a bare call, a loop, ``with`` ...)
    GAS312  error    dynamic code: ``type(name, bases, dict)``, ``typing.get_type_hints`` and
                     ``typing.ForwardRef`` (they evaluate strings as code)
"""

from __future__ import annotations

import ast
import codecs
import re
import sys
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Final

from gasbuild.check.findings import CheckOptions, Finding, Severity, Submission
from gasbuild.submission import (
    ALLOWED_IMPORTS,
    BLOCKED_CALLS,
    BLOCKED_IMPORTS,
    BLOCKED_SUBMODULES,
    MODEL_FILE,
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
_OPEN = "open"

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
_BLOCKED_MEMBERS: Final = BLOCKED_SUBMODULES | EXTRA_BLOCKED_MEMBERS
# Reached through a module object that is passed around, these cannot be followed: the parents of
# blocked members (torch.jit, torch.utils, ...) may only be used as ``parent.member``.
_WATCHED_PARENTS: Final = frozenset(
    ".".join(m.split(".")[:i]) for m in _BLOCKED_MEMBERS for i in range(2, m.count(".") + 1)
)
# On an object gasbuild cannot resolve (``self.x``, a parameter), these attribute names are still
# unmistakable; ``.jit.script`` style pairs are matched from the member lists.
_DISTINCTIVE_MEMBERS: Final = frozenset(
    {"cpp_extension", "ctypeslib", "load_library", "model_zoo", "jiterator", "f2py"}
)
# Submodules whose names collide with a blocked top-level module but are harmless.
_BENIGN_SUBMODULES: Final = frozenset({"torch.signal"})
_NOT_SMUGGLED: Final = ALLOWED_IMPORTS | _BENIGN_SUBMODULES
_PICKLE_LOADERS: Final = frozenset({"torch.load", "torch.serialization.load"})
_NUMPY_LOADERS: Final = frozenset({"numpy.load"})
_STRING_EVALUATORS: Final = frozenset({"typing.get_type_hints", "typing.ForwardRef"})

# Known submodules of allowed modules, so that ``from torch import jit`` is told apart from
# ``from torch import tensor`` without importing anything. Unknown names are taken as attributes;
# names starting with an underscore are refused either way (private modules such as torch._C).
_SUBMODULES: Final[dict[str, frozenset[str]]] = {
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
_ALLOWED_DUNDER_STORES: Final = frozenset({"__all__", "__slots__", "__version__"})
# Strings that name nothing a model needs when they stand alone as a call argument or key: the
# members of blocked chains, minus words too common to mean anything on their own.
_GENERIC_WORDS: Final = frozenset({"utils", "ops", "classes", "package", "load", "cuda", "library"})
_WRITE_MODE = frozenset("wax+")
_MODE_LETTERS = frozenset("rwaxbt+")
_BLOCKED_WORDS: Final = (
    frozenset(p for m in _BLOCKED_MEMBERS for p in m.split(".")[1:]) - _GENERIC_WORDS
)
# Builtin names that are also ordinary words for data ("input", "open"): not flagged as strings.
_STRING_BUILTINS: Final = (BLOCKED_CALLS | EXTRA_BLOCKED_BUILTINS) - {"input", "open"}

_CALL_HINTS: Final[dict[str, str]] = {
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
_METHOD_HINTS: Final[dict[str, str]] = {
    "eval": "the loader calls .eval() itself; write model.train(False) if you need it",
}
_DUNDER_HINT = (
    "dunder attributes reach interpreter internals, the classic sandbox escape; "
    "write the attribute or class name out plainly"
)
_DUNDER_NAME_HINTS: Final[dict[str, str]] = {
    "__name__": "model.py is never run as a script: drop the `if __name__ == ...` block",
    "__file__": "find files shipped next to the weights with Path(weights_path).parent",
}

# Folded strings longer than this are not names; stop folding rather than build big strings.
_MAX_FOLD = 256
# Alias resolution: rounds of propagation, dotted depth and alternatives per name (cycles end).
_ALIAS_ROUNDS = 12
_MAX_DEPTH = 12
_MAX_ORIGINS = 64
_COOKIE = re.compile(rb"^[ \t\f]*#.*?coding[:=][ \t]*([-\w.]+)")
_BLANK_OR_COMMENT = re.compile(rb"^[ \t\f]*(?:#.*)?\r?$")
_NEWLINES = re.compile(r"\r\n|\r|\n")
_FORMAT_DUNDER = re.compile(r"[.\[]\s*__\w+__")
_UTF8_BOM = b"\xef\xbb\xbf"
_FUTURE = "__future__"

_Verdict = tuple[str, Severity, str, str]  # code, severity, message, hint


# --------------------------------------------------------------------------- public API


def check_static(sub: Submission, opts: CheckOptions) -> list[Finding]:
    """Validator: the static checks on the submission's model.py (its absence is GAS1xx's job)."""
    del opts  # the rules do not depend on modality or depth
    if MODEL_FILE not in sub.names():
        return []
    return analyze_source(sub.read(MODEL_FILE), MODEL_FILE)


def analyze_source(source: bytes, filename: str = MODEL_FILE) -> list[Finding]:
    """Every GAS3xx finding for ``source``, sorted by position. Never raises, never executes it.

    Decoding problems do not stop the analysis (the text is decoded leniently and analyzed
    anyway), so one run reports everything that is wrong.
    """
    report = _Report(filename)
    text = _decode(source, report)
    report.lines = _NEWLINES.split(text)
    tree = _parse(text, filename, report)
    if tree is not None:
        try:
            _analyze_tree(tree, report)
        except (RecursionError, MemoryError):
            report.add(SYNTAX, None, "model.py is nested too deeply to analyze", _NESTING_HINT)
    return report.sorted()


def blocked_reason(module: str) -> str | None:
    """Why ``import module`` is refused in model.py, or None when it is allowed."""
    verdict = _module_verdict(module)
    return None if verdict is None else verdict[2]


# --------------------------------------------------------------------------- findings


@dataclass
class _Report:
    """Collects findings, turning AST byte offsets into 1-based character columns."""

    filename: str
    lines: list[str] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)

    def add(
        self,
        code: str,
        where: tuple[int, int] | None,
        message: str,
        hint: str | None,
        severity: Severity = "error",
    ) -> None:
        line, col = where if where is not None else (None, None)
        self.findings.append(Finding(code, severity, message, self.filename, line, col, hint))

    def verdict(self, verdict: _Verdict, where: tuple[int, int] | None) -> None:
        code, severity, message, hint = verdict
        self.add(code, where, message, hint, severity)

    def at(self, node: ast.AST) -> tuple[int, int] | None:
        """Where ``node`` starts."""
        line: int | None = getattr(node, "lineno", None)
        offset: int | None = getattr(node, "col_offset", None)
        if line is None or offset is None:
            return None
        return line, self._column(line, offset)

    def at_attr(self, node: ast.Attribute) -> tuple[int, int] | None:
        """Where an attribute's name is (``x.__class__`` points at ``__class__``, not ``x``)."""
        if node.end_lineno is None or node.end_col_offset is None:
            return self.at(node)
        offset = node.end_col_offset - len(node.attr.encode("utf-8"))
        return node.end_lineno, self._column(node.end_lineno, max(offset, 0))

    def _column(self, line: int, byte_offset: int) -> int:
        if not 1 <= line <= len(self.lines):
            return byte_offset + 1
        prefix = self.lines[line - 1].encode("utf-8", "surrogatepass")[:byte_offset]
        return len(prefix.decode("utf-8", "ignore")) + 1

    def sorted(self) -> list[Finding]:
        unique = dict.fromkeys(self.findings)
        return sorted(unique, key=lambda f: (f.line or 0, f.col or 0, f.code, f.message))


_NESTING_HINT = "flatten the expression; deeply nested code cannot be checked, so it is refused"


# --------------------------------------------------------------------------- GAS301, GAS302


def _decode(source: bytes, report: _Report) -> str:
    """The text to analyze; GAS301 for anything but plain UTF-8 (lenient, so analysis goes on)."""
    body = source
    if source.startswith(_UTF8_BOM):
        report.add(ENCODING, (1, 1), "model.py starts with a UTF-8 byte-order mark", _BOM_HINT)
        body = source[len(_UTF8_BOM) :]
    _check_cookie(body, report)
    nul = body.find(b"\x00")
    if nul >= 0:
        count = body.count(b"\x00")
        message = f"model.py contains {count} NUL byte(s); Python refuses such source"
        report.add(ENCODING, _byte_position(body, nul), message, "save model.py as plain text")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        message = f"model.py is not valid UTF-8 ({exc.reason} at byte {exc.start})"
        report.add(ENCODING, _byte_position(body, exc.start), message, _UTF8_HINT)
        text = body.decode("utf-8", "replace")
    return text.replace("\x00", " ")


_BOM_HINT = "save it as UTF-8 without a BOM: an analyzer reading text would see a stray U+FEFF"
_UTF8_HINT = "save model.py as UTF-8; the network decodes it as UTF-8"


def _check_cookie(body: bytes, report: _Report) -> None:
    """PEP 263: a coding cookie on line 1, or on line 2 below a blank or comment line."""
    for index, line in enumerate(body.split(b"\n", 2)[:2]):
        match = _COOKIE.match(line)
        if match is not None:
            name = match.group(1).decode("ascii", "replace")
            if not _is_utf8(name):
                message = f"model.py declares the encoding {name!r}; only UTF-8 is accepted"
                hint = "remove the coding line and save the file as UTF-8, the default"
                report.add(ENCODING, (index + 1, match.start(1) + 1), message, hint)
            return
        if not _BLANK_OR_COMMENT.match(line):
            return


def _is_utf8(name: str) -> bool:
    normal = name.lower().replace("_", "-")
    if normal == "utf-8" or normal.startswith("utf-8-"):
        return True
    try:
        return codecs.lookup(name).name == "utf-8"
    except LookupError:
        return False


def _byte_position(data: bytes, offset: int) -> tuple[int, int]:
    start = data.rfind(b"\n", 0, offset) + 1
    column = len(data[start:offset].decode("utf-8", "replace")) + 1
    return data.count(b"\n", 0, offset) + 1, column


def _parse(text: str, filename: str, report: _Report) -> ast.Module | None:
    """The AST, or None with GAS302. Compiled too (never run): some errors only compile finds.

    Warnings the parser and compiler raise (invalid escapes, ``is`` with a literal) are recorded
    as GAS302 warnings instead of reaching the caller, so ``-W error`` cannot turn them into
    errors and they are not printed behind the report's back.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tree = _parse_and_compile(text, filename, report)
    for warning in caught:
        if issubclass(warning.category, SyntaxWarning | DeprecationWarning):
            where = (warning.lineno, 1) if warning.lineno else None
            message = f"Python warns: {warning.message}"
            report.add(
                SYNTAX, where, message, "newer Pythons turn some of these into errors", "warning"
            )
    return tree


def _parse_and_compile(text: str, filename: str, report: _Report) -> ast.Module | None:
    try:
        tree = ast.parse(text, filename)
    except SyntaxError as exc:
        report.add(SYNTAX, _syntax_position(exc), f"syntax error: {exc.msg}", _SYNTAX_HINT)
        return None
    except (ValueError, RecursionError, MemoryError):
        report.add(SYNTAX, None, "model.py is nested too deeply to parse", _NESTING_HINT)
        return None
    try:
        compile(tree, filename, "exec", dont_inherit=True)
    except SyntaxError as exc:
        report.add(SYNTAX, _syntax_position(exc), f"syntax error: {exc.msg}", _SYNTAX_HINT)
    except (RecursionError, MemoryError):
        report.add(SYNTAX, None, "model.py is nested too deeply to compile", _NESTING_HINT)
    except Exception as exc:  # compile() of a parsed tree has no other documented failure
        report.add(SYNTAX, None, f"model.py does not compile: {exc}", _SYNTAX_HINT)
    return tree


_SYNTAX_HINT = "run `python -m py_compile model.py` to see the error in context"


def _syntax_position(exc: SyntaxError) -> tuple[int, int] | None:
    if exc.lineno is None:
        return None
    return exc.lineno, max(exc.offset or 1, 1)


# --------------------------------------------------------------------------- module verdicts


def _module_verdict(module: str) -> _Verdict | None:
    """GAS303/GAS304/GAS307 for importing ``module``; None when it is allowed."""
    if module == _FUTURE:
        hint = "remove it: __future__ is not on the allow-list and the network refuses it"
        return UNLISTED_IMPORT, "error", "from __future__ import is not allowed", hint
    blocked = _blocked_prefix(module)
    if blocked is not None:
        via = "" if blocked == module else f" (a child of {blocked})"
        hint = "the network refuses model.py files that import it; use only allowed modules"
        return BLOCKED_IMPORT, "error", f"import of blocked module {module!r}{via}", hint
    member = _blocked_member(module)
    if member is not None:
        return _member_verdict(member, module)
    if module not in ALLOWED_IMPORTS:
        message = f"import of {module!r}, which is not on the allow-list"
        return UNLISTED_IMPORT, "error", message, _UNLISTED_HINT
    return None


_UNLISTED_HINT = (
    "import only the modules `gasbuild explain GAS304` lists; an unlisted submodule of an"
    " allowed package counts as unlisted, so reach it as an attribute of the allowed import instead"
)


def _blocked_prefix(module: str) -> str | None:
    """The entry of BLOCKED_IMPORTS that ``module`` is or lies under."""
    parts = module.split(".")
    for end in range(1, len(parts) + 1):
        prefix = ".".join(parts[:end])
        if prefix in BLOCKED_IMPORTS:
            return prefix
    return None


def _blocked_member(dotted: str) -> str | None:
    """The blocked member (torch.jit.script, torch.hub ...) that ``dotted`` is or lies under."""
    parts = dotted.split(".")
    for end in range(2, len(parts) + 1):
        prefix = ".".join(parts[:end])
        if prefix in _BLOCKED_MEMBERS:
            return prefix
    return None


def _member_verdict(member: str, reached: str) -> _Verdict:
    via = "" if member == reached else f" (via {reached})"
    hint = "it compiles, downloads or loads native code or pickles; the network refuses it"
    return BLOCKED_MEMBER, "error", f"use of blocked {member}{via}", hint


def _smuggled_module(dotted: str) -> str | None:
    """A blocked module reached as an attribute of an allowed one (``pathlib.os``, ``torch.os``)."""
    parts = dotted.split(".")
    for start in range(1, len(parts)):
        if ".".join(parts[: start + 1]) in _NOT_SMUGGLED:
            continue
        blocked = _blocked_prefix(".".join(parts[start:]))
        if blocked is not None:
            return blocked
    return None


def _chain_verdict(dotted: str) -> _Verdict | None:
    """The verdict on using the resolved attribute chain ``dotted`` (e.g. ``torch.jit.script``)."""
    member = _blocked_member(dotted)
    if member is not None:
        return _member_verdict(member, dotted)
    smuggled = _smuggled_module(dotted)
    if smuggled is not None:
        message = f"blocked module {smuggled!r} reached through {dotted!r}"
        return BLOCKED_MEMBER, "error", message, "a blocked module is blocked however it is reached"
    if dotted in FILE_WRITERS:
        message = f"use of {dotted}, which writes files"
        return BLOCKED_CALL, "error", message, _CALL_HINTS[_OPEN]
    if dotted in _STRING_EVALUATORS:
        message = f"use of {dotted}, which evaluates strings as code"
        return DYNAMIC_CODE, "error", message, _EVALUATOR_HINT
    if dotted in _PICKLE_LOADERS:
        message = f"reference to {dotted}; calls must pass weights_only=True"
        return BLOCKED_MEMBER, "warning", message, _PICKLE_HINT
    return None


_EVALUATOR_HINT = "write annotations as real types and never resolve them at run time"
_PICKLE_HINT = "torch.load unpickles arbitrary objects; load weights with safetensors' load_file"


def _tail_verdict(attrs: list[str]) -> _Verdict | None:
    """Blocked members spotted on an object gasbuild cannot resolve (``self.t.jit.script``)."""
    for name in attrs:
        if name in _DISTINCTIVE_MEMBERS:
            return _member_verdict(name, ".".join(attrs))
    for member in sorted(_BLOCKED_MEMBERS):
        tail = member.split(".")[1:]
        if len(tail) >= 2 and _contains_run(attrs, tail):
            return _member_verdict(member, "." + ".".join(attrs))
    return None


def _contains_run(items: list[str], run: list[str]) -> bool:
    return any(items[i : i + len(run)] == run for i in range(len(items) - len(run) + 1))


def _import_member_verdict(module: str, name: str) -> _Verdict | None:
    """The verdict on ``from module import name`` once ``module`` itself is known to be fine."""
    dotted = f"{module}.{name}"
    if dotted in ALLOWED_IMPORTS:
        return None
    if _is_dunder(name):
        return DUNDER, "error", f"import of the dunder name {name!r} from {module}", _DUNDER_HINT
    verdict = _chain_verdict(dotted)
    if verdict is not None and verdict[1] == "error":
        return verdict
    if name in _SUBMODULES.get(module, frozenset()) or name.startswith("_"):
        message = f"import of {dotted!r}, which is not on the allow-list"
        return UNLISTED_IMPORT, "error", message, _UNLISTED_HINT
    return None


def _is_dunder(name: str) -> bool:
    return len(name) > 4 and name.startswith("__") and name.endswith("__")


# --------------------------------------------------------------------------- symbol table


@dataclass
class _Symbols:
    """What names (and attribute names) may stand for, as dotted module paths.

    Scope-blind on purpose: a name that is ever bound to ``torch.jit`` anywhere is taken to be
    ``torch.jit`` everywhere. That over-approximates, which is the strict direction.
    """

    names: dict[str, set[str]] = field(default_factory=dict)
    attrs: dict[str, set[str]] = field(default_factory=dict)

    def resolve(self, node: ast.expr) -> set[str]:
        """The dotted paths a Name/Attribute chain may denote (empty when unknown)."""
        root, attrs = _chain(node)
        found: set[str] = set()
        for base in self.names.get(root, set()) if root is not None else set():
            found.add(_join(base, attrs))
        for index, attr in enumerate(attrs):
            for base in self.attrs.get(attr, set()):
                found.add(_join(base, attrs[index + 1 :]))
        return {d for d in found if d.count(".") < _MAX_DEPTH}

    def bind(self, table: dict[str, set[str]], key: str, origins: Iterable[str]) -> bool:
        """Add origins to ``key``; True when something new was learned."""
        known = table.setdefault(key, set())
        before = len(known)
        for origin in origins:
            if len(known) >= _MAX_ORIGINS:
                break
            known.add(origin)
        return len(known) != before


def _chain(node: ast.expr) -> tuple[str | None, list[str]]:
    """``a.b.c`` -> ("a", ["b", "c"]); the root is None when it is not a plain name."""
    attrs: list[str] = []
    while isinstance(node, ast.Attribute):
        attrs.append(node.attr)
        node = node.value
    attrs.reverse()
    return (node.id if isinstance(node, ast.Name) else None), attrs


def _join(base: str, attrs: list[str]) -> str:
    return ".".join([base, *attrs])


_Link = tuple[bool, str, ast.expr]  # (is attribute, name, value)


def _collect_symbols(tree: ast.Module) -> _Symbols:
    """Import bindings, then assignments propagated until nothing new is learned."""
    symbols = _Symbols()
    links: list[_Link] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            for name, origin in _import_bindings(node):
                symbols.bind(symbols.names, name, [origin])
        elif isinstance(node, ast.ClassDef):
            links.extend(_class_links(node))
        else:
            links.extend(_assignment_links(node))
    for _ in range(_ALIAS_ROUNDS):
        changed = False
        for is_attr, name, value in links:
            table = symbols.attrs if is_attr else symbols.names
            changed |= symbols.bind(table, name, symbols.resolve(value))
        if not changed:
            break
    return symbols


def _import_bindings(node: ast.Import | ast.ImportFrom) -> Iterator[tuple[str, str]]:
    """(local name, dotted origin) for each name an import binds."""
    if isinstance(node, ast.Import):
        for alias in node.names:
            if alias.asname is not None:
                yield alias.asname, alias.name
            else:
                top = alias.name.split(".")[0]
                yield top, top
    elif node.level == 0 and node.module is not None:
        for alias in node.names:
            if alias.name != "*":
                yield alias.asname or alias.name, f"{node.module}.{alias.name}"


def _assignment_links(node: ast.AST) -> list[_Link]:
    if isinstance(node, ast.Assign):
        return [link for target in node.targets for link in _target_links(target, node.value)]
    if isinstance(node, ast.AnnAssign | ast.NamedExpr) and node.value is not None:
        return _target_links(node.target, node.value)
    if isinstance(node, ast.withitem) and node.optional_vars is not None:
        return _target_links(node.optional_vars, node.context_expr)
    return []


def _class_links(node: ast.ClassDef) -> list[_Link]:
    """A class-body assignment ``j = torch.jit`` is also reachable as ``self.j`` / ``Cls.j``."""
    links: list[_Link] = []
    for stmt in node.body:
        for is_attr, name, value in _assignment_links(stmt):
            links.append((is_attr, name, value))
            if not is_attr:
                links.append((True, name, value))
    return links


def _target_links(target: ast.expr, value: ast.expr) -> list[_Link]:
    """Pairs target names with value expressions, unpacking ``a, b = x, y`` element-wise."""
    links: list[_Link] = []
    pending = [(target, value)]
    while pending:
        tgt, val = pending.pop()
        if isinstance(tgt, ast.Name):
            links.append((False, tgt.id, val))
        elif isinstance(tgt, ast.Attribute):
            links.append((True, tgt.attr, val))
        elif _same_length_sequences(tgt, val):
            assert isinstance(tgt, ast.Tuple | ast.List) and isinstance(val, ast.Tuple | ast.List)
            pending.extend(zip(tgt.elts, val.elts, strict=True))
    return links


def _same_length_sequences(target: ast.expr, value: ast.expr) -> bool:
    sequences = ast.Tuple | ast.List
    if not (isinstance(target, sequences) and isinstance(value, sequences)):
        return False
    return len(target.elts) == len(value.elts)


# --------------------------------------------------------------------------- scopes


_SCOPES: Final = (
    ast.FunctionDef,
    ast.AsyncFunctionDef,
    ast.Lambda,
    ast.ClassDef,
    ast.ListComp,
    ast.SetComp,
    ast.DictComp,
    ast.GeneratorExp,
)


@dataclass(frozen=True)
class _Scope:
    """Names bound in one scope; class scopes are invisible from the functions inside them."""

    names: frozenset[str]
    is_class: bool


def _scope_of(node: ast.AST) -> _Scope:
    names: set[str] = set()
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
        args = node.args
        every = [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]
        names.update(a.arg for a in every if a is not None)
    if isinstance(node, ast.ListComp | ast.SetComp | ast.DictComp | ast.GeneratorExp):
        for generator in node.generators:
            names.update(_stored_names(generator.target))
        return _Scope(frozenset(names), False)
    body: list[ast.AST] = [node.body] if isinstance(node, ast.Lambda) else list(_body(node))
    names.update(_bound_names(body))
    return _Scope(frozenset(names), isinstance(node, ast.ClassDef))


def _body(node: ast.AST) -> list[ast.stmt]:
    body: list[ast.stmt] = getattr(node, "body", [])
    return body if isinstance(body, list) else []


def _bound_names(roots: Iterable[ast.AST]) -> set[str]:
    """Names bound directly in a scope's statements (nested scopes excluded, their names kept)."""
    names: set[str] = set()
    pending = list(roots)
    while pending:
        node = pending.pop()
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
            continue
        if isinstance(node, _SCOPES):
            continue
        if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
            names.add(node.id)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names.update(name for name, _ in _import_bindings(node))
        elif isinstance(node, ast.ExceptHandler | ast.MatchAs | ast.MatchStar) and node.name:
            names.add(node.name)
        pending.extend(ast.iter_child_nodes(node))
    return names


def _stored_names(target: ast.AST) -> set[str]:
    return {
        n.id for n in ast.walk(target) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)
    }


# --------------------------------------------------------------------------- the walk


def _walk(
    root: ast.AST, enter: Callable[[ast.AST], None], leave: Callable[[ast.AST], None]
) -> None:
    """Depth-first, parents entered before and left after their children; no recursion, so a
    deeply nested (but parseable) file cannot crash the check."""
    stack: list[tuple[ast.AST, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        if done:
            leave(node)
            continue
        enter(node)
        stack.append((node, True))
        stack.extend((child, False) for child in reversed(list(ast.iter_child_nodes(node))))


def _analyze_tree(tree: ast.Module, report: _Report) -> None:
    checker = _Checker(report, _collect_symbols(tree))
    _walk(tree, checker.enter, checker.leave)
    _check_load_model(tree, report)
    _check_top_level(tree.body, report)


class _Checker:
    """The per-node rules. Parents mark their children (callee, chain inner part, alias value)
    on entry, so each child knows its context when its own turn comes."""

    def __init__(self, report: _Report, symbols: _Symbols) -> None:
        self.report = report
        self.symbols = symbols
        self.scopes: list[_Scope] = []
        self.callees: set[int] = set()  # Call.func nodes
        self.inner: set[int] = set()  # nodes that are the .value of an Attribute
        self.alias_values: set[int] = set()  # right-hand sides of simple assignments
        self.handled: set[int] = set()  # references already judged by their call
        self.super_inits: set[int] = set()  # the `.__init__` of super().__init__(...)
        self.folds: dict[int, str] = {}  # string value of constant string expressions
        self.reported_strings: set[int] = set()  # string expressions already reported
        self.enters: dict[type[ast.AST], Callable[[ast.AST], None]] = {
            ast.Import: self._import,
            ast.ImportFrom: self._import_from,
            ast.FunctionDef: self._function,
            ast.AsyncFunctionDef: self._function,
            ast.ClassDef: self._class,
            ast.arg: self._arg,
            ast.Call: self._call,
            ast.Attribute: self._attribute,
            ast.Name: self._name,
            ast.Subscript: self._subscript,
            ast.Assign: self._assign,
            ast.AnnAssign: self._assign,
            ast.NamedExpr: self._assign,
            ast.keyword: self._keyword_name,
            ast.ExceptHandler: self._pattern_name,
            ast.MatchAs: self._pattern_name,
            ast.MatchStar: self._pattern_name,
            ast.MatchClass: self._match_class,
            ast.MatchMapping: self._match_mapping,
        }

    def enter(self, node: ast.AST) -> None:
        if isinstance(node, ast.Module):
            self.scopes.append(_Scope(frozenset(_bound_names(list(node.body))), False))
        handler = self.enters.get(type(node))
        if handler is not None:
            handler(node)
        if isinstance(node, _SCOPES):
            self.scopes.append(_scope_of(node))

    def leave(self, node: ast.AST) -> None:
        if isinstance(node, _SCOPES):
            self.scopes.pop()
        self._fold(node)

    # ---- imports (GAS303/304/305)

    def _import(self, node: ast.AST) -> None:
        assert isinstance(node, ast.Import)
        for alias in node.names:
            verdict = _module_verdict(alias.name)
            if verdict is not None:
                self.report.verdict(verdict, self.report.at(alias))
            if alias.asname is not None:
                self._binding(alias.asname, alias, "imports a module as")

    def _import_from(self, node: ast.AST) -> None:
        assert isinstance(node, ast.ImportFrom)
        if node.level:
            message = "relative import: model.py is loaded as a lone module, with no package"
            hint = "put everything model.py needs into model.py itself"
            self.report.add(RELATIVE_IMPORT, self.report.at(node), message, hint)
            return
        module = node.module or ""
        verdict = _module_verdict(module)
        if verdict is not None:
            self._import_from_unlisted(node, module, verdict)
        else:
            for alias in node.names:
                self._import_from_member(module, alias)
        for alias in node.names:
            if alias.asname is not None or alias.name in BLOCKED_CALLS:
                self._binding(alias.asname or alias.name, alias, "imports a name as")

    def _import_from_unlisted(self, node: ast.ImportFrom, module: str, verdict: _Verdict) -> None:
        """``from X import y`` with X not allowed: fine only when every X.y is itself allowed."""
        if module == _FUTURE or verdict[0] != UNLISTED_IMPORT:
            self.report.verdict(verdict, self.report.at(node))
            return
        rest = [a for a in node.names if f"{module}.{a.name}" not in ALLOWED_IMPORTS]
        for alias in rest:
            member = _blocked_member(f"{module}.{alias.name}")
            if member is not None:
                self.report.verdict(_member_verdict(member, member), self.report.at(alias))
        if any(_blocked_member(f"{module}.{a.name}") is None for a in rest):
            self.report.verdict(verdict, self.report.at(node))

    def _import_from_member(self, module: str, alias: ast.alias) -> None:
        if alias.name == "*":
            message = f"from {module} import *: the names it binds cannot be checked"
            hint = "import the names you use explicitly"
            self.report.add(UNLISTED_IMPORT, self.report.at(alias), message, hint)
            return
        verdict = _import_member_verdict(module, alias.name)
        if verdict is not None:
            self.report.verdict(verdict, self.report.at(alias))

    # ---- definitions

    def _function(self, node: ast.AST) -> None:
        assert isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        in_class = bool(self.scopes) and self.scopes[-1].is_class
        if _is_dunder(node.name) and not (in_class and node.name in ALLOWED_DUNDER_METHODS):
            message = f"definition of the dunder {node.name!r}"
            hint = "only ordinary protocol methods such as __init__ and __call__ may be defined"
            self.report.add(DUNDER, self.report.at(node), message, hint)
        elif not _is_dunder(node.name):
            self._binding(node.name, node, "defines")

    def _class(self, node: ast.AST) -> None:
        assert isinstance(node, ast.ClassDef)
        self._binding(node.name, node, "defines the class")

    def _arg(self, node: ast.AST) -> None:
        assert isinstance(node, ast.arg)
        self._binding(node.arg, node, "has the parameter")

    def _binding(self, name: str, node: ast.AST, what: str) -> None:
        """A new binding whose name is a blocked builtin or a dunder is refused."""
        where = self.report.at(node)
        if name in BLOCKED_CALLS:
            message = f"{what} {name!r}, shadowing a blocked builtin"
            hint = "rename it: the network's analyzer matches the name, whatever it is bound to"
            self.report.add(BLOCKED_CALL, where, message, hint)
        elif _is_dunder(name):
            self.report.add(DUNDER, where, f"{what} the dunder {name!r}", _DUNDER_HINT)

    def _assign(self, node: ast.AST) -> None:
        assert isinstance(node, ast.Assign | ast.AnnAssign | ast.NamedExpr)
        if node.value is None:
            return
        values = node.value.elts if isinstance(node.value, ast.Tuple) else [node.value]
        self.alias_values.update(id(v) for v in values)

    # ---- calls (GAS306, GAS307, GAS312, strings)

    def _call(self, node: ast.AST) -> None:
        assert isinstance(node, ast.Call)
        func = node.func
        self.callees.add(id(func))
        if _is_init_call(func):
            self.super_inits.add(id(func))
        if isinstance(func, ast.Name) and func.id == _OPEN and not self._locally_bound(_OPEN):
            self.handled.add(id(func))
            self._open(node)
        if isinstance(func, ast.Name) and func.id == "type" and _arity(node) == 3:
            message = "type(name, bases, namespace) builds a class at run time"
            self.report.add(DYNAMIC_CODE, self.report.at(node), message, "write a class statement")
        if isinstance(func, ast.Attribute) and func.attr == _OPEN:
            self._method_open(node)
        self._loader_call(node)
        self._keywords(node)
        self._format_call(node)
        for value in [*node.args, *(k.value for k in node.keywords)]:
            self._string_constant(value, "passed to a call")

    def _open(self, node: ast.Call) -> None:
        mode = _argument(node, 1, "mode")
        spread = any(isinstance(a, ast.Starred) for a in node.args)
        spread |= any(k.arg is None for k in node.keywords)
        where = self.report.at(node.func)
        if spread or (mode is not None and not _is_str(mode)):
            message = "open() with a mode gasbuild cannot read: it may write files"
            self.report.add(BLOCKED_CALL, where, message, _CALL_HINTS[_OPEN])
        elif isinstance(mode, ast.Constant) and set(str(mode.value)) & _WRITE_MODE:
            message = f"open() for writing (mode {mode.value!r})"
            self.report.add(BLOCKED_CALL, where, message, _CALL_HINTS[_OPEN])
        else:
            message = "open() reads a file the submission does not ship"
            self.report.add(BLOCKED_CALL, where, message, _CALL_HINTS[_OPEN], "warning")

    def _method_open(self, node: ast.Call) -> None:
        """``Path.open("w")`` and friends: a literal write mode given to any ``.open()`` method."""
        assert isinstance(node.func, ast.Attribute)
        candidates = [*node.args[:2], _keyword(node, "mode")]
        modes = [c.value for c in candidates if isinstance(c, ast.Constant)]
        for mode in modes:
            if isinstance(mode, str) and _is_write_mode(mode):
                message = f".open() for writing (mode {mode!r})"
                where = self.report.at_attr(node.func)
                self.report.add(BLOCKED_CALL, where, message, _CALL_HINTS[_OPEN])

    def _loader_call(self, node: ast.Call) -> None:
        """torch.load needs weights_only=True; numpy.load must not allow pickles."""
        targets = self.symbols.resolve(node.func)
        where = self.report.at(node.func)
        if targets & _PICKLE_LOADERS:
            self.handled.add(id(node.func))
            flag = _keyword(node, "weights_only")
            if _is_const(flag, True):
                return
            explicit = _is_const(flag, False)
            message = "torch.load " + ("with weights_only=False" if explicit else _WEIGHTS_ONLY)
            self.report.add(
                BLOCKED_MEMBER, where, message, _PICKLE_HINT, "error" if explicit else "warning"
            )
        if targets & _NUMPY_LOADERS:
            self.handled.add(id(node.func))
            flag = _argument(node, 2, "allow_pickle")
            if flag is not None and not _is_const(flag, False):
                message = "numpy.load with allow_pickle: it unpickles arbitrary objects"
                self.report.add(BLOCKED_MEMBER, where, message, "leave allow_pickle=False")

    def _keywords(self, node: ast.Call) -> None:
        """Remote code and downloads at load time."""
        remote = _keyword(node, "trust_remote_code")
        if remote is not None and not _is_const(remote, False):
            message = "trust_remote_code runs code downloaded at load time"
            self.report.add(BLOCKED_MEMBER, self.report.at(remote), message, _DOWNLOAD_HINT)
        pretrained = _keyword(node, "pretrained")
        if pretrained is not None and not (_is_const(pretrained, False) or _is_none(pretrained)):
            message = "pretrained= downloads weights when the model loads"
            where = self.report.at(pretrained)
            self.report.add(BLOCKED_MEMBER, where, message, _DOWNLOAD_HINT, "warning")
        weights = _keyword(node, "weights")
        if weights is not None and not _is_none(weights) and self._is_torchvision_model(node):
            message = "weights= makes torchvision download weights when the model loads"
            where = self.report.at(weights)
            self.report.add(BLOCKED_MEMBER, where, message, _DOWNLOAD_HINT, "warning")
        func = node.func
        if (
            isinstance(func, ast.Attribute)
            and func.attr == "from_pretrained"
            and not _keyword_is_true(node, "local_files_only")  # then it cannot download
        ):
            message = ".from_pretrained() downloads unless given a local directory"
            hint = "fine for the submission's own config.json folder; ship weights in safetensors"
            self.report.add(BLOCKED_MEMBER, self.report.at_attr(func), message, hint, "warning")

    def _is_torchvision_model(self, node: ast.Call) -> bool:
        return any(t.startswith("torchvision.models.") for t in self.symbols.resolve(node.func))

    def _format_call(self, node: ast.Call) -> None:
        """``"{0.__globals__}".format(f)`` reads attributes without an Attribute node."""
        func = node.func
        if not isinstance(func, ast.Attribute) or func.attr not in ("format", "format_map"):
            return
        template = func.value if _is_str(func.value) else next(iter(node.args), None)
        if isinstance(template, ast.Constant) and _FORMAT_DUNDER.search(str(template.value)):
            message = "format string reads a dunder attribute"
            self.report.add(DUNDER, self.report.at(template), message, _DUNDER_HINT)

    # ---- names and attributes (GAS306, GAS307, GAS308)

    def _attribute(self, node: ast.AST) -> None:
        assert isinstance(node, ast.Attribute)
        self.inner.add(id(node.value))
        attr = node.attr
        if attr in BLOCKED_CALLS:
            self._blocked_name(attr, node, self.report.at_attr(node), method=True)
        elif _is_dunder(attr) and id(node) not in self.super_inits:
            message = f"access to the dunder attribute {attr!r}"
            self.report.add(DUNDER, self.report.at_attr(node), message, _DUNDER_HINT)
        elif attr in WRITE_METHODS:
            message = f"use of .{attr}(), which writes or deletes files"
            self.report.add(BLOCKED_CALL, self.report.at_attr(node), message, _CALL_HINTS[_OPEN])
        if id(node) not in self.inner and id(node) not in self.handled:
            self._reference(node)

    def _name(self, node: ast.AST) -> None:
        assert isinstance(node, ast.Name)
        name, load = node.id, isinstance(node.ctx, ast.Load)
        if name in BLOCKED_CALLS:
            if load:
                self._blocked_name(name, node, self.report.at(node), method=False)
            else:
                self._binding(name, node, "assigns")
        elif _is_dunder(name) and not (not load and name in _ALLOWED_DUNDER_STORES):
            hint = _DUNDER_NAME_HINTS.get(name, _DUNDER_HINT)
            self.report.add(DUNDER, self.report.at(node), f"use of the dunder {name!r}", hint)
        elif name in EXTRA_BLOCKED_BUILTINS and load and not self._handled_or_local(node):
            self._blocked_name(name, node, self.report.at(node), method=False)
        if load and id(node) not in self.inner and id(node) not in self.handled:
            self._reference(node)

    def _blocked_name(
        self, name: str, node: ast.AST, where: tuple[int, int] | None, *, method: bool
    ) -> None:
        called = id(node) in self.callees
        spelled = f".{name}" if method else name
        message = f"call of {spelled}()" if called else f"reference to {spelled}"
        message += " (a blocked builtin)"
        hint = (_METHOD_HINTS if method else {}).get(name) or _CALL_HINTS.get(name)
        self.report.add(BLOCKED_CALL, where, message, hint)

    def _reference(self, node: ast.Name | ast.Attribute) -> None:
        """Judge a whole chain (``t.jit.script``) once, at its outermost node."""
        targets = self.symbols.resolve(node)
        where = self.report.at(node)
        verdicts = [v for v in map(_chain_verdict, sorted(targets)) if v is not None]
        if not targets:
            tail = _tail_verdict(_chain(node)[1])
            verdicts = [tail] if tail is not None else []
        for verdict in verdicts:
            self.report.verdict(verdict, where)
        escaped = sorted(targets & _WATCHED_PARENTS)
        if escaped and id(node) not in self.alias_values and id(node) not in self.callees:
            message = f"{escaped[0]} used as a value: its blocked members could not be followed"
            hint = f"use {escaped[0]}.<member> directly"
            self.report.add(BLOCKED_MEMBER, where, message, hint)

    def _handled_or_local(self, node: ast.Name) -> bool:
        return id(node) in self.handled or self._locally_bound(node.id)

    def _locally_bound(self, name: str) -> bool:
        """Whether ``name`` is bound in the current scope chain (then it is not the builtin)."""
        for depth, scope in enumerate(reversed(self.scopes)):
            if scope.is_class and depth > 0:
                continue
            if name in scope.names:
                return True
        return False

    # ---- strings (GAS308)

    def _keyword_name(self, node: ast.AST) -> None:
        """``f(__class__=...)``: a dunder keyword reaches the same internals as the attribute."""
        assert isinstance(node, ast.keyword)
        if node.arg is not None and _is_dunder(node.arg):
            message = f"the dunder keyword argument {node.arg!r}"
            self.report.add(DUNDER, self.report.at(node), message, _DUNDER_HINT)

    def _pattern_name(self, node: ast.AST) -> None:
        """Names bound by ``except ... as x`` and ``case ... as x`` follow the binding rules."""
        assert isinstance(node, ast.ExceptHandler | ast.MatchAs | ast.MatchStar)
        if node.name is not None:
            self._binding(node.name, node, "binds")

    def _match_class(self, node: ast.AST) -> None:
        """``case object(__class__=c)`` reads the attribute ``__class__``."""
        assert isinstance(node, ast.MatchClass)
        for attr in node.kwd_attrs:
            if _is_dunder(attr) or attr in BLOCKED_CALLS:
                message = f"class pattern reads the attribute {attr!r}"
                self.report.add(DUNDER, self.report.at(node), message, _DUNDER_HINT)

    def _match_mapping(self, node: ast.AST) -> None:
        assert isinstance(node, ast.MatchMapping)
        for key in node.keys:
            self._string_constant(key, "used as a mapping-pattern key")

    def _subscript(self, node: ast.AST) -> None:
        assert isinstance(node, ast.Subscript)
        self._string_constant(node.slice, "used as a subscript")

    def _string_constant(self, node: ast.expr, how: str) -> None:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            reason = _suspicious_string(node.value, built=False)
            if reason is not None:
                message = f"the string {node.value!r} {how} names {reason}"
                self.report.add(DUNDER, self.report.at(node), message, _STRING_HINT)

    def _fold(self, node: ast.AST) -> None:
        """Bottom-up constant folding of string expressions; report built names once."""
        value = _fold_string(node, self.folds)
        if value is None:
            return
        self.folds[id(node)] = value
        if isinstance(node, ast.Constant):
            return
        children = {id(child) for child in ast.iter_child_nodes(node)}
        if children & self.reported_strings:
            self.reported_strings.add(id(node))
            return
        reason = _suspicious_string(value, built=True)
        if reason is not None:
            self.reported_strings.add(id(node))
            message = f"string built to spell {value!r}, which names {reason}"
            self.report.add(DUNDER, self.report.at(node), message, _STRING_HINT)


_WEIGHTS_ONLY = "without weights_only=True"
_DOWNLOAD_HINT = "the network may run the model offline; ship every weight in the safetensors file"
_STRING_HINT = "names built or looked up from strings evade the checks; write the code out plainly"


def _is_init_call(func: ast.expr) -> bool:
    """``super().__init__`` or ``Base.__init__``: calling an initializer reaches nothing new."""
    if not isinstance(func, ast.Attribute) or func.attr != "__init__":
        return False
    return _is_super_call(func.value) or _chain(func.value)[0] is not None


def _is_super_call(node: ast.expr) -> bool:
    return (
        isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "super"
    )


def _arity(node: ast.Call) -> int:
    return len(node.args) + len(node.keywords)


def _argument(node: ast.Call, index: int, keyword: str) -> ast.expr | None:
    if len(node.args) > index and not any(isinstance(a, ast.Starred) for a in node.args):
        return node.args[index]
    return _keyword(node, keyword)


def _keyword(node: ast.Call, name: str) -> ast.expr | None:
    for keyword in node.keywords:
        if keyword.arg == name:
            return keyword.value
    return None


def _is_const(node: ast.expr | None, value: bool) -> bool:
    return isinstance(node, ast.Constant) and node.value is value


def _is_none(node: ast.expr) -> bool:
    return isinstance(node, ast.Constant) and node.value is None


def _is_str(node: ast.expr | None) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, str)


def _suspicious_string(value: str, *, built: bool) -> str | None:
    """What a string names that model.py must not reach, or None.

    A plain literal is flagged only when it spells a dunder or a blocked builtin: every way of
    looking a name up at run time (getattr, ``__dict__``, vars, importlib) is blocked on its own,
    so a plain word such as a buffer named ``"signal"`` or ``mode="trace"`` reaches nothing, and
    flagging it would refuse honest models. Strings *built* from pieces are obfuscation and are
    held to every blocked name, dotted paths included.
    """
    if value in _STRING_BUILTINS:
        return "a blocked builtin"
    if _is_dunder(value):
        return "a dunder"
    if not built:
        return None
    if value in BLOCKED_IMPORTS:
        return "a blocked module"
    if value in _BLOCKED_WORDS or (_blocked_member(value) is not None and "." in value):
        return "a blocked member"
    if built and "." in value and _blocked_prefix(value) is not None:
        return "a blocked module"
    if built and _FORMAT_DUNDER.search(value):
        return "a dunder"
    return None


_STR_METHODS: Final = frozenset(
    {"lower", "upper", "strip", "lstrip", "rstrip", "casefold", "title", "capitalize", "swapcase"}
)


def _fold_string(node: ast.AST, folds: dict[int, str]) -> str | None:
    """The value of a string expression made only of constants, from its children's values."""
    value: str | None = None
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        value = node.value
    elif isinstance(node, ast.BinOp):
        value = _fold_binop(node, folds)
    elif isinstance(node, ast.JoinedStr):
        parts = [folds.get(id(v)) for v in node.values]
        value = None if None in parts else "".join(p for p in parts if p is not None)
    elif isinstance(node, ast.FormattedValue):
        plain = node.conversion == -1 and node.format_spec is None
        value = folds.get(id(node.value)) if plain else None
    elif isinstance(node, ast.Call):
        value = _fold_call(node, folds)
    elif isinstance(node, ast.Subscript):
        value = _fold_slice(node, folds)
    return value if value is not None and len(value) <= _MAX_FOLD else None


def _fold_binop(node: ast.BinOp, folds: dict[int, str]) -> str | None:
    left, right = folds.get(id(node.left)), folds.get(id(node.right))
    if isinstance(node.op, ast.Add) and left is not None and right is not None:
        return left + right
    if isinstance(node.op, ast.Mod) and left is not None and _SIMPLE_PERCENT.fullmatch(left):
        return _fold_percent(left, node.right, folds)
    if isinstance(node.op, ast.Mult):
        text, count = (left, node.right) if left is not None else (right, node.left)
        times = count.value if isinstance(count, ast.Constant) else None
        if text is not None and isinstance(times, int) and 0 <= times * len(text) <= _MAX_FOLD:
            return text * times
    return None


def _fold_percent(template: str, right: ast.expr, folds: dict[int, str]) -> str | None:
    items = right.elts if isinstance(right, ast.Tuple) else [right]
    pieces = [folds.get(id(item)) for item in items]
    if None in pieces:
        return None
    try:
        return template % tuple(pieces)
    except (TypeError, ValueError):
        return None


def _fold_call(node: ast.Call, folds: dict[int, str]) -> str | None:
    func, args = node.func, node.args
    if node.keywords:
        return None
    if isinstance(func, ast.Name) and func.id == "chr" and len(args) == 1:
        code = args[0].value if isinstance(args[0], ast.Constant) else None
        return chr(code) if isinstance(code, int) and 0 <= code < 0x110000 else None
    if isinstance(func, ast.Name) and func.id == "str" and len(args) == 1:
        return folds.get(id(args[0]))
    if _is_bytes_decode(node):
        assert isinstance(func, ast.Attribute) and isinstance(func.value, ast.Constant)
        raw = func.value.value
        return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else None
    if not isinstance(func, ast.Attribute) or id(func.value) not in folds:
        return None
    base = folds[id(func.value)]
    if func.attr == "join" and len(args) == 1:
        parts = _fold_pieces(args[0], folds)
        return None if parts is None else base.join(parts)
    if func.attr == "format" and _SIMPLE_FORMAT.fullmatch(base):
        pieces = [folds.get(id(a)) for a in args]
        if None not in pieces and not any(isinstance(a, ast.Starred) for a in args):
            return _try_format(base, [p for p in pieces if p is not None])
    if func.attr in _STR_METHODS and not args:
        result: str = getattr(base, func.attr)()
        return result
    if func.attr == "replace" and len(args) == 2:
        old, new = folds.get(id(args[0])), folds.get(id(args[1]))
        if old and new is not None and len(base) * max(len(new), 1) <= _MAX_FOLD:
            return base.replace(old, new)
    return None


def _is_write_mode(mode: str) -> bool:
    """A file mode string (``"w"``, ``"ab"``, ``"r+"``) that writes; file names never match."""
    return 0 < len(mode) <= 3 and set(mode) <= _MODE_LETTERS and bool(set(mode) & _WRITE_MODE)


def _is_bytes_decode(node: ast.Call) -> bool:
    func = node.func
    return (
        isinstance(func, ast.Attribute)
        and func.attr == "decode"
        and isinstance(func.value, ast.Constant)
        and isinstance(func.value.value, bytes)
        and len(node.args) <= 1
    )


def _fold_pieces(node: ast.expr, folds: dict[int, str]) -> list[str] | None:
    """The strings of ``["a", "b"]`` or ``map(chr, [111, 115])``, for ``"".join(...)``."""
    if isinstance(node, ast.List | ast.Tuple):
        parts = [folds.get(id(e)) for e in node.elts]
        return None if None in parts else [p for p in parts if p is not None]
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)):
        return None
    if node.func.id != "map" or len(node.args) != 2:
        return None
    mapper, items = node.args
    if not (isinstance(mapper, ast.Name) and mapper.id == "chr"):
        return None
    if not isinstance(items, ast.List | ast.Tuple):
        return None
    codes = [e.value if isinstance(e, ast.Constant) else None for e in items.elts]
    if not all(type(c) is int and 0 <= c < 0x110000 for c in codes):
        return None
    return [chr(c) for c in codes if isinstance(c, int)]


# Only plain ``{}``/``{0}`` fields and ``%s``: format specs could build huge strings.
_SIMPLE_FORMAT = re.compile(r"(?:[^{}]|\{\{|\}\}|\{\d*\})*")
_SIMPLE_PERCENT = re.compile(r"(?:[^%]|%%|%s)*")


def _try_format(template: str, pieces: list[str]) -> str | None:
    try:
        return template.format(*pieces)
    except (IndexError, KeyError, ValueError):
        return None


def _fold_slice(node: ast.Subscript, folds: dict[int, str]) -> str | None:
    base = folds.get(id(node.value))
    index = node.slice
    if base is None:
        return None
    if isinstance(index, ast.Slice):
        bounds = [_int_or_none(part) for part in (index.lower, index.upper, index.step)]
        if any(b is False for b in bounds) or bounds[2] == 0:
            return None
        return base[slice(*bounds)]
    value = _int_or_none(index)
    if type(value) is int and -len(base) <= value < len(base):
        return base[value]
    return None


def _int_or_none(node: ast.expr | None) -> int | bool | None:
    """An int constant, None for an absent part, False for anything else."""
    if node is None:
        return None
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        inner = _int_or_none(node.operand)
        return -inner if isinstance(inner, int) and not isinstance(inner, bool) else False
    if isinstance(node, ast.Constant) and type(node.value) is int:
        return node.value
    return False


# --------------------------------------------------------------------------- GAS309, GAS310


def _check_load_model(tree: ast.Module, report: _Report) -> None:
    """The loader calls ``load_model(weights_path, **model_keys)``, retrying with num_classes."""
    binding = _last_load_model(tree.body)
    if binding is None:
        message = "model.py defines no module-level load_model()"
        hint = "add def load_model(weights_path: str, num_classes: int = 2, **kwargs) -> nn.Module"
        report.add(LOAD_MODEL, None, message, hint)
        return
    if isinstance(binding, ast.AsyncFunctionDef):
        message = "load_model is async: the loader calls it and expects a module, not a coroutine"
        report.add(LOAD_MODEL, report.at(binding), message, "make it a plain def")
        return
    if isinstance(binding, ast.FunctionDef | ast.Lambda):
        _check_signature(binding, binding.args, report)
        return
    message = "load_model is not a def: gasbuild cannot check how it is called"
    hint = "define load_model with def at module level"
    report.add(LOAD_MODEL, report.at(binding), message, hint, "warning")


def _last_load_model(body: list[ast.stmt]) -> ast.AST | None:
    """The last module-level binding of ``load_model`` (in source order, through if/try)."""
    found: ast.AST | None = None
    for stmt in body:
        if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            found = stmt if stmt.name == "load_model" else found
        elif isinstance(stmt, ast.Assign | ast.AnnAssign):
            targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
            if any(isinstance(t, ast.Name) and t.id == "load_model" for t in targets):
                lambda_ = isinstance(stmt.value, ast.Lambda)
                found = stmt.value if lambda_ and stmt.value is not None else stmt
        elif isinstance(stmt, ast.Import | ast.ImportFrom) and _imports_load_model(stmt):
            found = stmt
        for nested in _nested_blocks(stmt):
            found = _last_load_model(nested) or found
    return found


def _imports_load_model(stmt: ast.Import | ast.ImportFrom) -> bool:
    return any(name == "load_model" for name, _ in _import_bindings(stmt))


def _check_signature(node: ast.AST, args: ast.arguments, report: _Report) -> None:
    where = report.at(node)
    if not (args.posonlyargs or args.args or args.vararg):
        message = "load_model takes no positional parameter for the weights path"
        hint = "the loader calls load_model(weights_path, **model_keys)"
        report.add(LOAD_MODEL, where, message, hint)
    names = {a.arg for a in [*args.posonlyargs, *args.args, *args.kwonlyargs]}
    if args.kwarg is None and "num_classes" not in names:
        message = "load_model takes neither num_classes nor **kwargs"
        hint = "the loader passes the config's model keys, num_classes at least, as keywords"
        report.add(LOAD_MODEL_KEYWORDS, where, message, hint, "warning")


def _nested_blocks(stmt: ast.stmt) -> list[list[ast.stmt]]:
    """Statement lists that run at import time along with ``stmt`` (if/else, try/except)."""
    if isinstance(stmt, ast.If):
        return [stmt.body, stmt.orelse]
    if isinstance(stmt, ast.Try) or (sys.version_info >= (3, 11) and isinstance(stmt, ast.TryStar)):
        handlers = [h.body for h in stmt.handlers]
        return [stmt.body, *handlers, stmt.orelse, stmt.finalbody]
    return []


# --------------------------------------------------------------------------- GAS311


_QUIET_STATEMENTS: Final = (
    ast.Import,
    ast.ImportFrom,
    ast.FunctionDef,
    ast.AsyncFunctionDef,
    ast.ClassDef,
    ast.Assign,
    ast.AnnAssign,
    ast.AugAssign,
    ast.Pass,
    ast.Global,
)


def _check_top_level(body: list[ast.stmt], report: _Report) -> None:
    """Module-level code runs when the loader imports model.py: keep it to definitions."""
    for stmt in body:
        nested = _nested_blocks(stmt)
        if nested:
            for block in nested:
                _check_top_level(block, report)
        elif not _is_quiet(stmt):
            message = f"module-level code with side effects ({_statement_kind(stmt)})"
            hint = "do the work inside load_model(); module level is for imports and definitions"
            report.add(SIDE_EFFECT, report.at(stmt), message, hint, "warning")


def _is_quiet(stmt: ast.stmt) -> bool:
    if isinstance(stmt, _QUIET_STATEMENTS):
        return True
    return isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant)


def _statement_kind(stmt: ast.stmt) -> str:
    if isinstance(stmt, ast.Expr):
        return "a call" if isinstance(stmt.value, ast.Call | ast.Await) else "an expression"
    return f"a {type(stmt).__name__.lower()} statement"


def _keyword_is_true(node: ast.Call, name: str) -> bool:
    """Whether ``name=True`` is passed literally."""
    return any(
        k.arg == name and isinstance(k.value, ast.Constant) and k.value.value is True
        for k in node.keywords
    )
