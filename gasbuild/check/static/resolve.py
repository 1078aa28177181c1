"""Symbol resolution: which dotted module paths a name or attribute chain may stand for."""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Final

from gasbuild.check.static.policy import CHECKED_METHODS, METHOD_ROOT

# Alias resolution: rounds of propagation, dotted depth and alternatives per name (cycles end).
_ALIAS_ROUNDS = 12
_MAX_DEPTH = 12
_MAX_ORIGINS = 64

# --------------------------------------------------------------------------- symbol table


@dataclass
class Symbols:
    """What names (and attribute names) may stand for, as dotted module paths.

    Scope-blind on purpose: a name that is ever bound to ``torch.jit`` anywhere is taken to be
    ``torch.jit`` everywhere. That over-approximates, which is the strict direction.
    """

    names: dict[str, set[str]] = field(default_factory=dict)
    attrs: dict[str, set[str]] = field(default_factory=dict)

    def resolve(self, node: ast.expr) -> set[str]:
        """The dotted paths a Name/Attribute chain may denote (empty when unknown)."""
        root, attrs = chain(node)
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


def chain(node: ast.expr) -> tuple[str | None, list[str]]:
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


def collect_symbols(tree: ast.Module) -> Symbols:
    """Import bindings, then assignments propagated until nothing new is learned."""
    symbols = Symbols()
    links: list[_Link] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            for name, origin in import_bindings(node):
                symbols.bind(symbols.names, name, [origin])
        elif isinstance(node, ast.ClassDef):
            links.extend(_class_links(node))
        else:
            links.extend(_assignment_links(node))
    for _ in range(_ALIAS_ROUNDS):
        changed = False
        for is_attr, name, value in links:
            table = symbols.attrs if is_attr else symbols.names
            changed |= symbols.bind(table, name, _origins(symbols, value))
        if not changed:
            break
    return symbols


def _origins(symbols: Symbols, value: ast.expr) -> set[str]:
    """What an assigned value stands for; a checked method of an object gasbuild cannot resolve
    (``f = path.open``) stands for the method itself, so that ``f("w")`` is judged as
    ``path.open("w")``."""
    found = symbols.resolve(value)
    if not found and isinstance(value, ast.Attribute) and value.attr in CHECKED_METHODS:
        return {f"{METHOD_ROOT}.{value.attr}"}
    return found


def import_bindings(node: ast.Import | ast.ImportFrom) -> Iterator[tuple[str, str]]:
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


SCOPES: Final = (
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
class Scope:
    """Names bound in one scope; class scopes are invisible from the functions inside them."""

    names: frozenset[str]
    is_class: bool


def scope_of(node: ast.AST) -> Scope:
    names: set[str] = set()
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
        args = node.args
        every = [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]
        names.update(a.arg for a in every if a is not None)
    if isinstance(node, ast.ListComp | ast.SetComp | ast.DictComp | ast.GeneratorExp):
        for generator in node.generators:
            names.update(_stored_names(generator.target))
        return Scope(frozenset(names), False)
    body: list[ast.AST] = [node.body] if isinstance(node, ast.Lambda) else list(_body(node))
    names.update(bound_names(body))
    return Scope(frozenset(names), isinstance(node, ast.ClassDef))


def _body(node: ast.AST) -> list[ast.stmt]:
    body: list[ast.stmt] = getattr(node, "body", [])
    return body if isinstance(body, list) else []


def bound_names(roots: Iterable[ast.AST]) -> set[str]:
    """Names bound directly in a scope's statements (nested scopes excluded, their names kept)."""
    names: set[str] = set()
    pending = list(roots)
    while pending:
        node = pending.pop()
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
            continue
        if isinstance(node, SCOPES):
            continue
        if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
            names.add(node.id)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names.update(name for name, _ in import_bindings(node))
        elif isinstance(node, ast.ExceptHandler | ast.MatchAs | ast.MatchStar) and node.name:
            names.add(node.name)
        pending.extend(ast.iter_child_nodes(node))
    return names


def _stored_names(target: ast.AST) -> set[str]:
    return {
        n.id for n in ast.walk(target) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)
    }
