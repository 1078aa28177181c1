"""Validate stage: run every check that applies to a submission, as strictly as the network.

Each validator is ``(Submission, CheckOptions) -> list[Finding]`` (see ``findings``). This module
only decides which validators apply to which format, and in what order; the rules themselves
live one module per subject::

    container  GAS1xx  the zip itself (layout, names, sizes, bombs)
    config     GAS2xx  model_config.yaml
    static     GAS3xx  model.py, by AST, never imported
    weights    GAS4xx  safetensors header (and values with --deep)
    onnx       GAS5xx  legacy ONNX submissions
    smoke      GAS6xx  load + forward in a child process, as the network's loader does

Heavy validators import torch/onnx inside their functions, so importing this module is cheap.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from gasbuild.check.findings import (
    CheckOptions,
    DirectorySubmission,
    Finding,
    StagedSubmission,
    Submission,
    ZipSubmission,
    has_errors,
)

STAGE_VERSION = "2"  # 2: the smoke test binds load_model first, finds the head (GAS609)

__all__ = [
    "STAGE_VERSION",
    "CheckOptions",
    "DirectorySubmission",
    "Finding",
    "StagedSubmission",
    "Submission",
    "ZipSubmission",
    "check_contents",
    "check_zip_path",
    "has_errors",
]


Validator = Callable[[Submission, CheckOptions], list[Finding]]


def _validators(fmt: str) -> list[Validator]:
    """The checks that never run the model, for a format."""
    if fmt == "onnx":
        from gasbuild.check.onnx import check_onnx

        return [check_onnx]
    from gasbuild.check.config import check_config
    from gasbuild.check.static import check_static
    from gasbuild.check.weights import check_weights

    return [check_config, check_static, check_weights]


def check_contents(sub: Submission, opts: CheckOptions) -> list[Finding]:
    """Every content check for the submission's format; the smoke test only if the rest pass.

    The smoke test is the one check that runs the submission's code, so it is kept apart from
    the others: a model that fails any other check is never executed.
    """
    from gasbuild.check.container import infer_format

    fmt = opts.format or infer_format(sub.names())
    findings: list[Finding] = []
    for check in _validators(fmt):
        findings.extend(check(sub, opts))
    if fmt != "onnx" and opts.smoke and not has_errors(findings):
        from gasbuild.check.smoke import check_smoke

        findings.extend(check_smoke(sub, opts))
    return sorted(findings, key=_order)


def check_zip_path(path: Path, opts: CheckOptions, origin: str) -> list[Finding]:
    """Container checks, then (if the container is sound) every content check."""
    from gasbuild.check.container import check_zip, infer_format

    findings, zf = check_zip(path, opts)
    if zf is None:
        return sorted(findings, key=_order)
    with zf:
        sub = ZipSubmission(zf, origin)
        if opts.format is None:
            opts = _with_format(opts, infer_format(sub.names()))
        if not has_errors(findings):
            findings.extend(check_contents(sub, opts))
    return sorted(findings, key=_order)


def _with_format(opts: CheckOptions, fmt: str) -> CheckOptions:
    from dataclasses import replace

    return replace(opts, format=fmt)  # type: ignore[arg-type]


def _order(f: Finding) -> tuple[str, int, int, str]:
    return (f.file or "", f.line or 0, f.col or 0, f.code)
