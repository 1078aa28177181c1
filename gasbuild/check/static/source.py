"""GAS301 and GAS302: decoding and parsing model.py (compiled, never run)."""

from __future__ import annotations

import ast
import codecs
import re
import warnings

from gasbuild.check.static.policy import ENCODING, SYNTAX
from gasbuild.check.static.report import NESTING_HINT, Report

_COOKIE = re.compile(rb"^[ \t\f]*#.*?coding[:=][ \t]*([-\w.]+)")
_BLANK_OR_COMMENT = re.compile(rb"^[ \t\f]*(?:#.*)?\r?$")
NEWLINES = re.compile(r"\r\n|\r|\n")
_UTF8_BOM = b"\xef\xbb\xbf"

# --------------------------------------------------------------------------- GAS301, GAS302


def decode(source: bytes, report: Report) -> str:
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


def _check_cookie(body: bytes, report: Report) -> None:
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


def parse(text: str, filename: str, report: Report) -> ast.Module | None:
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


def _parse_and_compile(text: str, filename: str, report: Report) -> ast.Module | None:
    try:
        tree = ast.parse(text, filename)
    except SyntaxError as exc:
        report.add(SYNTAX, _syntax_position(exc), f"syntax error: {exc.msg}", _SYNTAX_HINT)
        return None
    except (ValueError, RecursionError, MemoryError):
        report.add(SYNTAX, None, "model.py is nested too deeply to parse", NESTING_HINT)
        return None
    try:
        compile(tree, filename, "exec", dont_inherit=True)
    except SyntaxError as exc:
        report.add(SYNTAX, _syntax_position(exc), f"syntax error: {exc.msg}", _SYNTAX_HINT)
    except (RecursionError, MemoryError):
        report.add(SYNTAX, None, "model.py is nested too deeply to compile", NESTING_HINT)
    except Exception as exc:  # compile() of a parsed tree has no other documented failure
        report.add(SYNTAX, None, f"model.py does not compile: {exc}", _SYNTAX_HINT)
    return tree


_SYNTAX_HINT = "run `python -m py_compile model.py` to see the error in context"


def _syntax_position(exc: SyntaxError) -> tuple[int, int] | None:
    if exc.lineno is None:
        return None
    return exc.lineno, max(exc.offset or 1, 1)
