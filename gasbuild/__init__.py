"""gasbuild: declarative, reproducible submissions for BitMind's GAS subnet (Bittensor subnet 34).

The public API is small on purpose: load a manifest, build it, check a submission, push it
(``check_submission``, since ``gasbuild.check`` is the checker's package)::

    import gasbuild

    project = gasbuild.load_project("path/to/project")      # gas.toml -> Project
    report = gasbuild.build(project)                          # -> BuildReport (zips, digests)
    findings = gasbuild.check_submission("dist/image_detector.zip")   # -> list[Finding]
    gasbuild.push(items, gasbuild.PushSettings(...))          # -> PushReport

Errors are one tree (drawn in ``gasbuild.errors``): catch :class:`GasbuildError`, and
``error.exit_code`` says whether it was the user's input (2) or not (1). Every other module is
private by convention. Names are imported on first use, so ``import gasbuild`` costs nothing.
"""

from __future__ import annotations

import importlib

from gasbuild._version import __version__

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (the no-op replay skips it)
if TYPE_CHECKING:
    from typing import Any

# name -> module that defines it (imported on first attribute access, PEP 562)
_EXPORTS: dict[str, str] = {
    # functions
    "load_project": "gasbuild._api",
    "build": "gasbuild._api",
    "check_submission": "gasbuild._api",
    "open_cache": "gasbuild._api",
    "push": "gasbuild.publish.push",
    # types
    "Project": "gasbuild.manifest",
    "BuildReport": "gasbuild.plan",
    "ModelResult": "gasbuild.plan",
    "Finding": "gasbuild.check.findings",
    "PushItem": "gasbuild.publish.push",
    "PushSettings": "gasbuild.publish.push",
    "PushReport": "gasbuild.publish.push",
    # errors
    "GasbuildError": "gasbuild.errors",
    "UserError": "gasbuild.errors",
    "ManifestError": "gasbuild.errors",
    "SourceError": "gasbuild.errors",
    "UsageError": "gasbuild.errors",
    "CheckFailed": "gasbuild.errors",
    "BuildError": "gasbuild.errors",
    "TransportError": "gasbuild.errors",
    "PublishError": "gasbuild.errors",
}

__all__ = [
    "BuildError",
    "BuildReport",
    "CheckFailed",
    "Finding",
    "GasbuildError",
    "ManifestError",
    "ModelResult",
    "Project",
    "PublishError",
    "PushItem",
    "PushReport",
    "PushSettings",
    "SourceError",
    "TransportError",
    "UsageError",
    "UserError",
    "__version__",
    "build",
    "check_submission",
    "load_project",
    "open_cache",
    "push",
]

if TYPE_CHECKING:
    from gasbuild._api import build, check_submission, load_project, open_cache
    from gasbuild.check.findings import Finding
    from gasbuild.errors import (
        BuildError,
        CheckFailed,
        GasbuildError,
        ManifestError,
        PublishError,
        SourceError,
        TransportError,
        UsageError,
        UserError,
    )
    from gasbuild.manifest import Project
    from gasbuild.plan import BuildReport, ModelResult
    from gasbuild.publish.push import PushItem, PushReport, PushSettings, push


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'gasbuild' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
