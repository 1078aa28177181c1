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
                     ``open``/``.open()`` for writing or with a mode that is not a literal,
                     writers of allowed packages (torch.save, numpy.save*, save_file, savemat,
                     ``Image.save``, ``.write_text()``, ``.mkdir()``, ``Path.rename`` ...) and
                     guarded calls whose mode or flag writes (np.memmap, open_memmap,
                     ``torch.from_file(shared=True)``); reading is no finding
    GAS307  error    a blocked member reached by any chain or alias: torch.jit.script/trace/load/
                     CompilationUnit, torch.utils.cpp_extension, numpy.ctypeslib, torch.hub,
                     torch.ops.load_library, torch.classes, torch._C, torch.fx ...; names of
                     torch.jit, torch.utils, torch.serialization, numpy.lib off their allow-lists;
                     private (``_x``) and test (``testing``) components of allowed packages; a
                     blocked module reached through an allowed one (``pathlib.os``); a module,
                     guarded function or checked method used as a value (functools.partial);
                     guarded calls whose argument unpickles or downloads: ``numpy.load``'s
                     allow_pickle, ``torch.load``'s weights_only not literally True, pretrained=,
                     download=, torchvision weights=, trust_remote_code, a hub id given to
                     ``.from_pretrained()`` -- a non-literal or ``**spread`` argument counts
                     as the dangerous value
                     warning: ``torch.load`` without weights_only; ``.from_pretrained(folder)``
                     of a run-time path without ``local_files_only=True``
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

from gasbuild.check.findings import CheckOptions, Finding, Submission
from gasbuild.check.static.policy import SYNTAX
from gasbuild.check.static.report import NESTING_HINT, Report
from gasbuild.check.static.resolve import collect_symbols
from gasbuild.check.static.source import NEWLINES, decode, parse
from gasbuild.check.static.toplevel import check_load_model, check_top_level
from gasbuild.check.static.verdicts import module_verdict
from gasbuild.check.static.visitor import Checker, walk
from gasbuild.submission import MODEL_FILE

__all__ = ["analyze_source", "blocked_reason", "check_static"]

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
    report = Report(filename)
    text = decode(source, report)
    report.lines = NEWLINES.split(text)
    tree = parse(text, filename, report)
    if tree is not None:
        try:
            _analyze_tree(tree, report)
        except (RecursionError, MemoryError):
            report.add(SYNTAX, None, "model.py is nested too deeply to analyze", NESTING_HINT)
    return report.sorted()


def blocked_reason(module: str) -> str | None:
    """Why ``import module`` is refused in model.py, or None when it is allowed."""
    verdict = module_verdict(module)
    return None if verdict is None else verdict[2]


def _analyze_tree(tree: ast.Module, report: Report) -> None:
    checker = Checker(report, collect_symbols(tree))
    walk(tree, checker.enter, checker.leave)
    check_load_model(tree, report)
    check_top_level(tree.body, report)
