"""GAS309-GAS311: load_model's binding and signature, module-level side effects."""

from __future__ import annotations

import ast
import sys
from typing import Final

from gasbuild.check.static.policy import LOAD_MODEL, LOAD_MODEL_KEYWORDS, SIDE_EFFECT
from gasbuild.check.static.report import Report
from gasbuild.check.static.resolve import import_bindings

# --------------------------------------------------------------------------- GAS309, GAS310


def check_load_model(tree: ast.Module, report: Report) -> None:
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
    return any(name == "load_model" for name, _ in import_bindings(stmt))


def _check_signature(node: ast.AST, args: ast.arguments, report: Report) -> None:
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


def check_top_level(body: list[ast.stmt], report: Report) -> None:
    """Module-level code runs when the loader imports model.py: keep it to definitions."""
    for stmt in body:
        nested = _nested_blocks(stmt)
        if nested:
            for block in nested:
                check_top_level(block, report)
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
