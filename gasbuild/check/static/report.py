"""Collecting findings with 1-based character columns."""

from __future__ import annotations

import ast
from dataclasses import dataclass, field

from gasbuild.check.findings import Finding, Severity
from gasbuild.check.static.policy import Verdict

# --------------------------------------------------------------------------- findings


@dataclass
class Report:
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

    def verdict(self, verdict: Verdict, where: tuple[int, int] | None) -> None:
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


NESTING_HINT = "flatten the expression; deeply nested code cannot be checked, so it is refused"
