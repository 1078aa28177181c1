"""The AST visitor: per-node rules producing GAS303-GAS308 and GAS312 findings."""

from __future__ import annotations

import ast
from collections.abc import Callable

from gasbuild.check.static.calls import argument_state, guard_verdict
from gasbuild.check.static.policy import (
    ALLOWED_DUNDER_METHODS,
    ALLOWED_DUNDER_STORES,
    BLOCKED_CALL,
    BLOCKED_MEMBER,
    CALL_HINTS,
    CALLED_WRITE_METHODS,
    CHECKED_METHODS,
    DOWNLOAD_HINT,
    DUNDER,
    DUNDER_HINT,
    DUNDER_NAME_HINTS,
    DYNAMIC_CODE,
    EXTRA_BLOCKED_BUILTINS,
    FUTURE,
    GUARDED_CALLS,
    GUARDED_METHODS,
    KEYWORD_GUARDS,
    KNOWN_MODULES,
    METHOD_HINTS,
    METHOD_ROOT,
    NETWORK_METHODS,
    ONE_ARGUMENT_WRITERS,
    OPEN,
    OPEN_MODE,
    RELATIVE_IMPORT,
    STRING_HINT,
    TIMM_REMOTE_PREFIXES,
    UNLISTED_IMPORT,
    WRITE_METHODS,
    Guard,
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
    blocked_member,
    chain_verdict,
    guards_of,
    import_member_verdict,
    is_dunder,
    is_file_writer,
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
        self.passed: set[int] = set()  # checked methods passed as values
        self.pretrained_calls: list[ast.Call] = []  # from_pretrained calls judged after folding
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
            ast.List: self._container,
            ast.Tuple: self._container,
            ast.Set: self._container,
            ast.Dict: self._container,
            ast.Lambda: self._lambda,
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
        if self.pretrained_calls and self.pretrained_calls[-1] is node:
            assert isinstance(node, ast.Call)
            self._remote_ids(self.pretrained_calls.pop())

    def _container(self, node: ast.AST) -> None:
        assert isinstance(node, ast.List | ast.Tuple | ast.Set | ast.Dict)
        values = node.values if isinstance(node, ast.Dict) else node.elts
        for value in values:
            self._mark_passed(value)

    def _lambda(self, node: ast.AST) -> None:
        assert isinstance(node, ast.Lambda)
        self._mark_passed(node.body)

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
        judged = self._guarded_call(node)
        self._keyword_guards(node, judged)
        self._format_call(node)
        for value in [*node.args, *(k.value for k in node.keywords)]:
            self._string_constant(value, "passed to a call")
            self._mark_passed(value)

    def _open(self, node: ast.Call) -> None:
        """Builtin open(): a write, or a mode gasbuild cannot read, is an error. Reading is fine:
        a model may read the config.json shipped beside its weights, and nothing read can leave
        without a write or the network, which are refused on their own."""
        verdict = guard_verdict("open()", OPEN_MODE, argument_state(node, OPEN_MODE))
        if verdict is not None:
            self.report.verdict(verdict, self.report.at(node.func))

    def _guarded_call(self, node: ast.Call) -> set[str]:
        """Judge a call by what its callee resolves to and by its method name.

        Returns the keywords already judged, so the any-call keyword rules do not repeat them.
        """
        judged: set[str] = set()
        targets = self.symbols.resolve(node.func)
        methods = {t.split(".", 1)[1] for t in targets if t.startswith(METHOD_ROOT + ".")}
        for target in sorted(targets):
            for guard in guards_of(target):
                judged.add(guard.keyword)
                self._judge(node, f"{target}()", guard, self.report.at(node.func))
            if target in GUARDED_CALLS and target.endswith("create_model"):
                self._timm_name(node, target)
        func = node.func
        if isinstance(func, ast.Attribute) and not any(map(is_file_writer, targets)):
            methods.add(func.attr)
        for method in sorted(methods):
            judged |= self._method_call(node, method, targets)
        return judged

    def _timm_name(self, node: ast.Call, target: str) -> None:
        """``timm.create_model("hf-hub:org/name")`` fetches the config from the network."""
        name = node.args[0] if node.args else _keyword(node, "model_name")
        value = name.value if isinstance(name, ast.Constant) else None
        if name is not None and isinstance(value, str) and value.startswith(TIMM_REMOTE_PREFIXES):
            message = f"{target}({value!r}) fetches the model from the network"
            hint = "give an architecture name (resnet18, vit_base_patch16_224 ...)"
            self.report.add(BLOCKED_MEMBER, self.report.at(name), message, hint)

    def _judge(
        self, node: ast.Call, label: str, guard: Guard, where: tuple[int, int] | None
    ) -> None:
        verdict = guard_verdict(label, guard, argument_state(node, guard))
        if verdict is not None:
            self.report.verdict(verdict, where)

    def _method_call(self, node: ast.Call, method: str, targets: set[str]) -> set[str]:
        """Methods judged on any object: .open(mode), .save(), .from_pretrained(...) ..."""
        func = node.func
        where = (
            self.report.at_attr(func) if isinstance(func, ast.Attribute) else self.report.at(func)
        )
        label = f".{method}()"
        if method == OPEN:
            self._method_open(node, label, where)
            return {"mode"}
        judged: set[str] = set()
        for guard in GUARDED_METHODS.get(method, ()):
            judged.add(guard.keyword)
            self._judge(node, label, guard, where)
        if method == "from_pretrained" and not _keyword_is_true(node, "local_files_only"):
            self.pretrained_calls.append(node)
        if method in CALLED_WRITE_METHODS or (
            method in ONE_ARGUMENT_WRITERS and _one_path_argument(node)
        ):
            self._called_writer(method, where)
        if method in NETWORK_METHODS:
            message = f"call of {label}, which uploads or downloads"
            self.report.add(BLOCKED_MEMBER, where, message, DOWNLOAD_HINT)
        del targets
        return judged

    def _method_open(self, node: ast.Call, label: str, where: tuple[int, int] | None) -> None:
        """``.open(mode)``: Path.open takes the mode first, PIL's Image.open and the unbound
        ``Path.open(path, mode)`` second; any literal write mode among the first two is refused."""
        func = node.func
        receiver = self.symbols.resolve(func.value) if isinstance(func, ast.Attribute) else set()
        shifted = any(t == "PIL.Image" or t.startswith("pathlib.") for t in receiver)
        position = 1 if shifted else 0
        verdict = guard_verdict(label, OPEN_MODE, argument_state(node, OPEN_MODE, position))
        if verdict is not None:
            self.report.verdict(verdict, where)
            return
        for arg in node.args[:2]:
            mode = arg.value if isinstance(arg, ast.Constant) else None
            if isinstance(mode, str) and is_write_mode(mode):
                message = f"{label} for writing (mode {mode!r})"
                self.report.add(BLOCKED_CALL, where, message, CALL_HINTS[OPEN])

    def _called_writer(self, method: str, where: tuple[int, int] | None) -> None:
        if method == "show":
            message = "call of .show(), which starts an image viewer program"
            hint = "the network runs the model without a display; remove the call"
            self.report.add(BLOCKED_MEMBER, where, message, hint)
            return
        message = f"call of .{method}(), which writes files"
        self.report.add(BLOCKED_CALL, where, message, CALL_HINTS[OPEN])

    def _keyword_guards(self, node: ast.Call, judged: set[str]) -> None:
        """Keywords that are dangerous on any call: trust_remote_code, pretrained, download ..."""
        for keyword in node.keywords:
            guard = KEYWORD_GUARDS.get(keyword.arg or "")
            if guard is None or guard.keyword in judged:
                continue
            label = _callee_text(node.func)
            verdict = guard_verdict(label, guard, argument_state(node, guard))
            if verdict is not None:
                self.report.verdict(verdict, self.report.at(keyword.value))

    def _remote_ids(self, node: ast.Call) -> None:
        """``.from_pretrained()`` without local_files_only=True, judged once strings are folded:
        a literal or built hub id downloads (and names what it fetches: an exfiltration channel);
        a path computed at run time may be the submission's own folder, which is fine."""
        func = node.func
        where = (
            self.report.at_attr(func) if isinstance(func, ast.Attribute) else self.report.at(func)
        )
        first = node.args[0] if node.args and not isinstance(node.args[0], ast.Starred) else None
        first = first or _keyword(node, "pretrained_model_name_or_path")
        value = self.folds.get(id(first)) if first is not None else None
        if value is not None and not value.startswith(("/", ".")):
            message = f".from_pretrained({value!r}) downloads from the Hugging Face hub"
            hint = "load from Path(weights_path).parent with local_files_only=True"
            self.report.add(BLOCKED_MEMBER, where, message, hint)
            return
        message = ".from_pretrained() downloads unless given a local directory"
        hint = "fine for the submission's own config.json folder; pass local_files_only=True"
        self.report.add(BLOCKED_MEMBER, where, message, hint, "warning")

    def _mark_passed(self, value: ast.expr) -> None:
        """A checked method passed as a value (``partial(p.open, mode=m)``, ``map(img.save, ...)``)
        is refused where it appears: whoever calls it later cannot be seen."""
        if isinstance(value, ast.Starred):
            value = value.value
        if isinstance(value, ast.Attribute) and value.attr in CHECKED_METHODS:
            self.passed.add(id(value))

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
        elif id(node) in self.passed:
            message = (
                f".{attr} passed as a value: the arguments it is called with cannot be checked"
            )
            hint = f"call .{attr}(...) directly, with literal arguments"
            self.report.add(self._passed_code(attr), self.report.at_attr(node), message, hint)
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
        if id(node) not in self.alias_values and id(node) not in self.callees:
            self._escape(node, targets, where)

    def _escape(self, node: ast.expr, targets: set[str], where: tuple[int, int] | None) -> None:
        """A module, a guarded function or a checked method used as a value (passed, stored,
        wrapped in functools.partial): what it reaches, or is called with, cannot be followed."""
        modules = sorted(targets & KNOWN_MODULES)
        if modules:
            message = f"{modules[0]} used as a value: its members could not be followed"
            hint = f"use {modules[0]}.<member> directly"
            self.report.add(BLOCKED_MEMBER, where, message, hint)
        guarded = sorted(
            t for t in targets if t in GUARDED_CALLS or t.startswith(METHOD_ROOT + ".")
        )
        if guarded:
            name = guarded[0].replace(METHOD_ROOT, "")
            message = f"{name} used as a value: the arguments it is called with cannot be checked"
            hint = "call it directly, with literal arguments (no functools.partial, no aliases)"
            code = self._passed_code(name.rsplit(".", 1)[-1])
            self.report.add(code, where, message, hint)
        del node

    @staticmethod
    def _passed_code(method: str) -> str:
        writes = method in CALLED_WRITE_METHODS | ONE_ARGUMENT_WRITERS | {OPEN} and method != "show"
        return BLOCKED_CALL if writes else BLOCKED_MEMBER

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


def _one_path_argument(node: ast.Call) -> bool:
    """``p.rename(target)``/``p.replace(target)``: one argument, as Path takes (str.replace
    takes two; ``tensor.rename(None)`` drops names)."""
    if node.keywords or len(node.args) != 1 or isinstance(node.args[0], ast.Starred):
        return False
    return not _is_none(node.args[0])


def _callee_text(func: ast.expr) -> str:
    """How a finding names the function called: ``np.load()``, ``.open()``, ``a call``."""
    root, attrs = chain(func)
    if root is None:
        return f".{attrs[-1]}()" if attrs else "a call"
    return ".".join([root, *attrs]) + "()"
