"""Plan and run a build: per model, fetch -> render -> validate -> package, each stage cached.

Keys come from :func:`gasbuild.cache.action_key`; a stage whose key is known is not run again. A
no-op rebuild therefore reads only small metadata: weights digests come from the stat cache, the
validation result and the zip digest from the action cache, and the zip in dist/ is trusted when
its stat matches the digest recorded when it was written.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gasbuild import lock
from gasbuild.cache import Cache, FileStat, action_key
from gasbuild.errors import CheckFailed, SourceError, display_path
from gasbuild.manifest import ModelTarget, Project
from gasbuild.stages import fetch, package, render
from gasbuild.stages import validate as validate_stage
from gasbuild.stages.package import Entry, FileBlob
from gasbuild.stages.validate import CheckOptions, Finding, StagedSubmission
from gasbuild.submission import CONFIG_FILE, MODEL_FILE, Modality, zip_name


@dataclass(frozen=True)
class BuildOptions:
    """What the user asked of this build."""

    only: frozenset[Modality] | None = None
    out_dir: Path | None = None
    smoke: bool = True
    deep: bool = False
    write_lock: bool = True


@dataclass(frozen=True)
class StageRun:
    name: str
    hit: bool


@dataclass
class ModelResult:
    """What one model's build produced."""

    modality: Modality
    format: str
    zip_path: Path
    sha256: str
    size: int
    rebuilt: bool
    stages: list[StageRun] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    lock_entry: dict[str, Any] = field(default_factory=dict)


@dataclass
class BuildReport:
    results: list[ModelResult]
    lock_path: Path
    lock_written: bool


FindingsSink = Callable[[str, list[Finding]], None]


def build(
    project: Project,
    cache: Cache,
    options: BuildOptions,
    on_findings: FindingsSink | None = None,
) -> BuildReport:
    """Build every selected model; raise on the first model that cannot be built."""
    out_dir = options.out_dir or project.out_dir
    results = [
        _build_model(project, target, cache, options, out_dir, on_findings)
        for target in project.targets(options.only)
    ]
    lock_path = project.root / lock.LOCK_NAME
    written = False
    if options.write_lock:
        updates: dict[str, Any] = {r.modality: r.lock_entry for r in results}
        written = lock.write(lock_path, updates)
    return BuildReport(results, lock_path, written)


def _build_model(
    project: Project,
    target: ModelTarget,
    cache: Cache,
    options: BuildOptions,
    out_dir: Path,
    on_findings: FindingsSink | None,
) -> ModelResult:
    stages: list[StageRun] = []
    weights, hit = fetch.fetch_local(
        target.weights_path,
        cache,
        sha256=target.spec.weights.sha256,
        size=target.spec.weights.size,
        location=project.locate(f"{target.key}.weights.path"),
        key=f"{target.key}.weights",
    )
    stages.append(StageRun("fetch", hit))
    entries, inputs = _render(project, target, weights)
    stages.append(StageRun("render", False))
    zip_path = out_dir / zip_name(target.modality)
    origin = display_path(zip_path)

    findings, hit = _validate(target, entries, cache, options, origin)
    stages.append(StageRun("validate", hit))
    if on_findings is not None and findings:
        on_findings(origin, findings)
    if validate_stage.has_errors(findings):
        raise CheckFailed(
            f"{origin}: not written, the submission has errors (see above)",
            hint="fix them in gas.toml or the model's files, then build again",
        )

    result, hit = _package(entries, zip_path, cache)
    stages.append(StageRun("package", hit))
    lock_entry = _lock_entry(project, target, inputs, entries, zip_path, result)
    return ModelResult(
        modality=target.modality,
        format=target.spec.format,
        zip_path=zip_path,
        sha256=result.sha256,
        size=result.size,
        rebuilt=not hit,
        stages=stages,
        findings=findings,
        lock_entry=lock_entry,
    )


def _render(
    project: Project, target: ModelTarget, weights: FileBlob
) -> tuple[list[Entry], dict[str, dict[str, Any]]]:
    """The zip's entries, sorted by name, and the lock's record of each input."""
    inputs: dict[str, dict[str, Any]] = {"weights": _input_record(project, weights)}
    if target.spec.format == "onnx":
        return [Entry.file(f"{target.modality}_detector.onnx", weights)], inputs
    assert target.architecture_path is not None  # the manifest requires it for safetensors
    model_py = _read_text_input(project, target, target.architecture_path)
    inputs["architecture"] = {
        "path": _relative(project, target.architecture_path),
        "sha256": _sha256(model_py),
        "size": len(model_py),
    }
    entries = [
        Entry.text(CONFIG_FILE, render.render_config(target)),
        Entry.text(MODEL_FILE, model_py),
        Entry.file(target.spec.weights_file, weights),
    ]
    return sorted(entries, key=lambda e: e.name), inputs


def _read_text_input(project: Project, target: ModelTarget, path: Path) -> bytes:
    location = project.locate(f"{target.key}.architecture.file")
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise SourceError(
            f"{target.key}.architecture.file: {display_path(path)} does not exist",
            hint="fix the path (it is relative to gas.toml)",
            location=location,
        ) from None
    except OSError as exc:
        raise SourceError(
            f"{target.key}.architecture.file: cannot read {display_path(path)} ({exc.strerror})",
            location=location,
        ) from None


def _validate(
    target: ModelTarget,
    entries: list[Entry],
    cache: Cache,
    options: BuildOptions,
    origin: str,
) -> tuple[list[Finding], bool]:
    opts = CheckOptions(
        modality=target.modality,
        format=target.spec.format,
        deep=options.deep,
        smoke=options.smoke,
    )
    params = {
        "modality": target.modality,
        "format": target.spec.format,
        "smoke": opts.smoke,
        "deep": opts.deep,
        "smoke_batch": opts.smoke_batch,
    }
    key = action_key("validate", validate_stage.STAGE_VERSION, params, _digests(entries))
    recorded = cache.get_action(key)
    if recorded is not None:
        return [Finding(**f) for f in recorded["findings"]], True
    staged = {e.name: (e.data if isinstance(e.data, bytes) else e.data.path) for e in entries}
    findings = validate_stage.check_contents(StagedSubmission(staged, origin), opts)
    if not validate_stage.has_errors(findings):
        cache.put_action(key, {"findings": [f.to_json() for f in findings]})
    return findings, False


def _package(entries: list[Entry], zip_path: Path, cache: Cache) -> tuple[package.ZipResult, bool]:
    date_time = package.zip_date_time()
    params = {"date_time": list(date_time), "names": [e.name for e in entries]}
    key = action_key("package", package.STAGE_VERSION, params, _digests(entries))
    recorded = cache.get_action(key)
    if recorded is not None:
        on_disk = cache.get_digests(zip_path) if zip_path.exists() else None
        if on_disk is not None and on_disk.get("sha256") == recorded["sha256"]:
            return package.ZipResult(recorded["sha256"], int(recorded["size"])), True
    result = package.write_zip(zip_path, entries, date_time=date_time)
    cache.put_action(key, {"sha256": result.sha256, "size": result.size})
    cache.put_digests(
        zip_path, FileStat.of(zip_path), {"sha256": result.sha256, "size": result.size}
    )
    return result, False


def _digests(entries: list[Entry]) -> dict[str, str]:
    return {
        e.name: _sha256(e.data) if isinstance(e.data, bytes) else e.data.sha256 for e in entries
    }


def _sha256(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


def _relative(project: Project, path: Path) -> str:
    import os

    return Path(os.path.relpath(path, project.root)).as_posix()


def _input_record(project: Project, blob: FileBlob) -> dict[str, Any]:
    return {"path": _relative(project, blob.path), "sha256": blob.sha256, "size": blob.size}


def _lock_entry(
    project: Project,
    target: ModelTarget,
    inputs: dict[str, dict[str, Any]],
    entries: list[Entry],
    zip_path: Path,
    result: package.ZipResult,
) -> dict[str, Any]:
    return {
        "format": target.spec.format,
        "inputs": inputs,
        "entries": _digests(entries),
        "output": {
            "path": _relative(project, zip_path),
            "sha256": result.sha256,
            "size": result.size,
        },
    }
