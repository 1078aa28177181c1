"""The AST visitor: per-node rules producing GAS303-GAS308 and GAS312 findings."""

from __future__ import annotations

import ast
from collections.abc import Callable

from gasbuild.check.static.policy import (
    ALLOWED_DUNDER_METHODS,
    ALLOWED_DUNDER_STORES,
    BLOCKED_CALL,
    BLOCKED_MEMBER,
    CALL_HINTS,
    DOWNLOAD_HINT,
    DUNDER,
    DUNDER_HINT,
    DUNDER_NAME_HINTS,
    DYNAMIC_CODE,
    EXTRA_BLOCKED_BUILTINS,
    FUTURE,
    METHOD_HINTS,
    NUMPY_LOADERS,
    OPEN,
    PICKLE_LOADERS,
    RELATIVE_IMPORT,
    STRING_HINT,
    UNLISTED_IMPORT,
    WATCHED_PARENTS,
    WEIGHTS_ONLY,
    WRITE_METHODS,
    WRITE_MODE,
    Verdict,
)
from gasbuild.check.static.report import Report
from gasbuild.check.static.resolve import SCOPES, Scope, Symbols, bound_names, chain, scope_of
from gasbuild.check.static.strings import (
    FORMAT_DUNDER,
    fold_string,
    is_write_mode,
    suspicious_string,
)
from gasbuild.check.static.verdicts import (
    PICKLE_HINT,
    blocked_member,
    chain_verdict,
    import_member_verdict,
    is_dunder,
    member_verdict,
    module_verdict,
    tail_verdict,
)
from gasbuild.submission import (
    ALLOWED_IMPORTS,
    BLOCKED_CALLS,
)

# --------------------------------------------------------------------------- the walk


def walk(root: ast.AST, enter: Callable[[ast.AST], None], leave: Callable[[ast.AST], None]) -> None:
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


class Checker:
    """The per-node rules. Parents mark their children (callee, chain inner part, alias value)
    on entry, so each child knows its context when its own turn comes."""

    def __init__(self, report: Report, symbols: Symbols) -> None:
        self.report = report
        self.symbols = symbols
        self.scopes: list[Scope] = []
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
            self.scopes.append(Scope(frozenset(bound_names(list(node.body))), False))
        handler = self.enters.get(type(node))
        if handler is not None:
            handler(node)
        if isinstance(node, SCOPES):
            self.scopes.append(scope_of(node))

    def leave(self, node: ast.AST) -> None:
        if isinstance(node, SCOPES):
            self.scopes.pop()
        self._fold(node)

    # ---- imports (GAS303/304/305)

    def _import(self, node: ast.AST) -> None:
        assert isinstance(node, ast.Import)
        for alias in node.names:
            verdict = module_verdict(alias.name)
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
        verdict = module_verdict(module)
        if verdict is not None:
            self._import_from_unlisted(node, module, verdict)
        else:
            for alias in node.names:
                self._import_from_member(module, alias)
        for alias in node.names:
            if alias.asname is not None or alias.name in BLOCKED_CALLS:
                self._binding(alias.asname or alias.name, alias, "imports a name as")

    def _import_from_unlisted(self, node: ast.ImportFrom, module: str, verdict: Verdict) -> None:
        """``from X import y`` with X not allowed: fine only when every X.y is itself allowed."""
        if module == FUTURE or verdict[0] != UNLISTED_IMPORT:
            self.report.verdict(verdict, self.report.at(node))
            return
        rest = [a for a in node.names if f"{module}.{a.name}" not in ALLOWED_IMPORTS]
        for alias in rest:
            member = blocked_member(f"{module}.{alias.name}")
            if member is not None:
                self.report.verdict(member_verdict(member, member), self.report.at(alias))
        if any(blocked_member(f"{module}.{a.name}") is None for a in rest):
            self.report.verdict(verdict, self.report.at(node))

    def _import_from_member(self, module: str, alias: ast.alias) -> None:
        if alias.name == "*":
            message = f"from {module} import *: the names it binds cannot be checked"
            hint = "import the names you use explicitly"
            self.report.add(UNLISTED_IMPORT, self.report.at(alias), message, hint)
            return
        verdict = import_member_verdict(module, alias.name)
        if verdict is not None:
            self.report.verdict(verdict, self.report.at(alias))

    # ---- definitions

    def _function(self, node: ast.AST) -> None:
        assert isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        in_class = bool(self.scopes) and self.scopes[-1].is_class
        if is_dunder(node.name) and not (in_class and node.name in ALLOWED_DUNDER_METHODS):
            message = f"definition of the dunder {node.name!r}"
            hint = "only ordinary protocol methods such as __init__ and __call__ may be defined"
            self.report.add(DUNDER, self.report.at(node), message, hint)
        elif not is_dunder(node.name):
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
        elif is_dunder(name):
            self.report.add(DUNDER, where, f"{what} the dunder {name!r}", DUNDER_HINT)

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
        if isinstance(func, ast.Name) and func.id == OPEN and not self._locally_bound(OPEN):
            self.handled.add(id(func))
            self._open(node)
        if isinstance(func, ast.Name) and func.id == "type" and _arity(node) == 3:
            message = "type(name, bases, namespace) builds a class at run time"
            self.report.add(DYNAMIC_CODE, self.report.at(node), message, "write a class statement")
        if isinstance(func, ast.Attribute) and func.attr == OPEN:
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
            self.report.add(BLOCKED_CALL, where, message, CALL_HINTS[OPEN])
        elif isinstance(mode, ast.Constant) and set(str(mode.value)) & WRITE_MODE:
            message = f"open() for writing (mode {mode.value!r})"
            self.report.add(BLOCKED_CALL, where, message, CALL_HINTS[OPEN])
        else:
            message = "open() reads a file the submission does not ship"
            self.report.add(BLOCKED_CALL, where, message, CALL_HINTS[OPEN], "warning")

    def _method_open(self, node: ast.Call) -> None:
        """``Path.open("w")`` and friends: a literal write mode given to any ``.open()`` method."""
        assert isinstance(node.func, ast.Attribute)
        candidates = [*node.args[:2], _keyword(node, "mode")]
        modes = [c.value for c in candidates if isinstance(c, ast.Constant)]
        for mode in modes:
            if isinstance(mode, str) and is_write_mode(mode):
                message = f".open() for writing (mode {mode!r})"
                where = self.report.at_attr(node.func)
                self.report.add(BLOCKED_CALL, where, message, CALL_HINTS[OPEN])

    def _loader_call(self, node: ast.Call) -> None:
        """torch.load needs weights_only=True; numpy.load must not allow pickles."""
        targets = self.symbols.resolve(node.func)
        where = self.report.at(node.func)
        if targets & PICKLE_LOADERS:
            self.handled.add(id(node.func))
            flag = _keyword(node, "weights_only")
            if _is_const(flag, True):
                return
            explicit = _is_const(flag, False)
            message = "torch.load " + ("with weights_only=False" if explicit else WEIGHTS_ONLY)
            self.report.add(
                BLOCKED_MEMBER, where, message, PICKLE_HINT, "error" if explicit else "warning"
            )
        if targets & NUMPY_LOADERS:
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
            self.report.add(BLOCKED_MEMBER, self.report.at(remote), message, DOWNLOAD_HINT)
        pretrained = _keyword(node, "pretrained")
        if pretrained is not None and not (_is_const(pretrained, False) or _is_none(pretrained)):
            message = "pretrained= downloads weights when the model loads"
            where = self.report.at(pretrained)
            self.report.add(BLOCKED_MEMBER, where, message, DOWNLOAD_HINT, "warning")
        weights = _keyword(node, "weights")
        if weights is not None and not _is_none(weights) and self._is_torchvision_model(node):
            message = "weights= makes torchvision download weights when the model loads"
            where = self.report.at(weights)
            self.report.add(BLOCKED_MEMBER, where, message, DOWNLOAD_HINT, "warning")
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
        if isinstance(template, ast.Constant) and FORMAT_DUNDER.search(str(template.value)):
            message = "format string reads a dunder attribute"
            self.report.add(DUNDER, self.report.at(template), message, DUNDER_HINT)

    # ---- names and attributes (GAS306, GAS307, GAS308)

    def _attribute(self, node: ast.AST) -> None:
        assert isinstance(node, ast.Attribute)
        self.inner.add(id(node.value))
        attr = node.attr
        if attr in BLOCKED_CALLS:
            self._blocked_name(attr, node, self.report.at_attr(node), method=True)
        elif is_dunder(attr) and id(node) not in self.super_inits:
            message = f"access to the dunder attribute {attr!r}"
            self.report.add(DUNDER, self.report.at_attr(node), message, DUNDER_HINT)
        elif attr in WRITE_METHODS:
            message = f"use of .{attr}(), which writes or deletes files"
            self.report.add(BLOCKED_CALL, self.report.at_attr(node), message, CALL_HINTS[OPEN])
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
        elif is_dunder(name) and not (not load and name in ALLOWED_DUNDER_STORES):
            hint = DUNDER_NAME_HINTS.get(name, DUNDER_HINT)
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
        hint = (METHOD_HINTS if method else {}).get(name) or CALL_HINTS.get(name)
        self.report.add(BLOCKED_CALL, where, message, hint)

    def _reference(self, node: ast.Name | ast.Attribute) -> None:
        """Judge a whole chain (``t.jit.script``) once, at its outermost node."""
        targets = self.symbols.resolve(node)
        where = self.report.at(node)
        verdicts = [v for v in map(chain_verdict, sorted(targets)) if v is not None]
        if not targets:
            tail = tail_verdict(chain(node)[1])
            verdicts = [tail] if tail is not None else []
        for verdict in verdicts:
            self.report.verdict(verdict, where)
        escaped = sorted(targets & WATCHED_PARENTS)
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
        if node.arg is not None and is_dunder(node.arg):
            message = f"the dunder keyword argument {node.arg!r}"
            self.report.add(DUNDER, self.report.at(node), message, DUNDER_HINT)

    def _pattern_name(self, node: ast.AST) -> None:
        """Names bound by ``except ... as x`` and ``case ... as x`` follow the binding rules."""
        assert isinstance(node, ast.ExceptHandler | ast.MatchAs | ast.MatchStar)
        if node.name is not None:
            self._binding(node.name, node, "binds")

    def _match_class(self, node: ast.AST) -> None:
        """``case object(__class__=c)`` reads the attribute ``__class__``."""
        assert isinstance(node, ast.MatchClass)
        for attr in node.kwd_attrs:
            if is_dunder(attr) or attr in BLOCKED_CALLS:
                message = f"class pattern reads the attribute {attr!r}"
                self.report.add(DUNDER, self.report.at(node), message, DUNDER_HINT)

    def _match_mapping(self, node: ast.AST) -> None:
        assert isinstance(node, ast.MatchMapping)
        for key in node.keys:
            self._string_constant(key, "used as a mapping-pattern key")

    def _subscript(self, node: ast.AST) -> None:
        assert isinstance(node, ast.Subscript)
        self._string_constant(node.slice, "used as a subscript")

    def _string_constant(self, node: ast.expr, how: str) -> None:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            reason = suspicious_string(node.value, built=False)
            if reason is not None:
                message = f"the string {node.value!r} {how} names {reason}"
                self.report.add(DUNDER, self.report.at(node), message, STRING_HINT)

    def _fold(self, node: ast.AST) -> None:
        """Bottom-up constant folding of string expressions; report built names once."""
        value = fold_string(node, self.folds)
        if value is None:
            return
        self.folds[id(node)] = value
        if isinstance(node, ast.Constant):
            return
        children = {id(child) for child in ast.iter_child_nodes(node)}
        if children & self.reported_strings:
            self.reported_strings.add(id(node))
            return
        reason = suspicious_string(value, built=True)
        if reason is not None:
            self.reported_strings.add(id(node))
            message = f"string built to spell {value!r}, which names {reason}"
            self.report.add(DUNDER, self.report.at(node), message, STRING_HINT)


def _is_init_call(func: ast.expr) -> bool:
    """``super().__init__`` or ``Base.__init__``: calling an initializer reaches nothing new."""
    if not isinstance(func, ast.Attribute) or func.attr != "__init__":
        return False
    return _is_super_call(func.value) or chain(func.value)[0] is not None


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


def _keyword_is_true(node: ast.Call, name: str) -> bool:
    """Whether ``name=True`` is passed literally."""
    return any(
        k.arg == name and isinstance(k.value, ast.Constant) and k.value.value is True
        for k in node.keywords
    )
