"""Plan and run a build: per model, fetch -> render -> validate -> package, each stage cached.

Keys come from :func:`gasbuild.cache.action_key`; a stage whose key is known is not run again. A
no-op rebuild therefore reads only small metadata: weights digests come from the stat cache (or
the store, for URLs), the validation result and the zip digest from the action cache, and the zip
in dist/ is trusted when its stat matches the digest recorded when it was written.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gasbuild import lock
from gasbuild.cache import Cache, FileStat, action_key
from gasbuild.errors import CheckFailed, SourceError, UserError, display_path
from gasbuild.manifest import ModelTarget, Project
from gasbuild.stages import package, render
from gasbuild.stages import validate as validate_stage
from gasbuild.stages.fetch import Fetched, FetchOptions, Pins, make_source
from gasbuild.stages.package import Entry
from gasbuild.stages.validate import CheckOptions, Finding, StagedSubmission
from gasbuild.submission import CONFIG_FILE, MODEL_FILE, Modality, zip_name


@dataclass(frozen=True)
class BuildOptions:
    """What the user asked of this build."""

    only: frozenset[Modality] | None = None
    out_dir: Path | None = None
    smoke: bool = True
    deep: bool = False
    smoke_batch: int = 2
    write_lock: bool = True
    locked: bool = False  # fail instead of changing gas.lock (CI)
    fetch: FetchOptions = field(default_factory=FetchOptions)


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


class LockMismatch(UserError):
    """``--locked`` and gas.lock is missing or does not match what the build resolved."""


def build(
    project: Project,
    cache: Cache,
    options: BuildOptions,
    on_findings: FindingsSink | None = None,
) -> BuildReport:
    """Build every selected model; raise on the first model that cannot be built."""
    out_dir = options.out_dir or project.out_dir
    lock_path = project.root / lock.LOCK_NAME
    if options.locked and not lock_path.exists():
        raise LockMismatch(
            f"{display_path(lock_path)} is missing and --locked was given",
            hint="run `gasbuild lock` and commit gas.lock",
        )
    locked = lock.read(lock_path)
    results = [
        _build_model(
            project, target, cache, options, out_dir, on_findings, locked.get(target.modality)
        )
        for target in project.targets(options.only)
    ]
    written = False
    if options.write_lock and not options.locked:
        updates: dict[str, Any] = {r.modality: r.lock_entry for r in results}
        written = lock.write(lock_path, updates)
    return BuildReport(results, lock_path, written)


def check(project: Project, cache: Cache, options: BuildOptions) -> list[tuple[str, list[Finding]]]:
    """What ``build`` would find for each model, without writing anything but cache entries."""
    out_dir = options.out_dir or project.out_dir
    locked = lock.read(project.root / lock.LOCK_NAME)
    reports = []
    for target in project.targets(options.only):
        inputs = {
            "weights": _fetch_weights(project, target, cache, options, locked.get(target.modality))
        }
        if target.spec.format == "safetensors":
            inputs["architecture"] = _fetch_architecture(
                project, target, cache, options, locked.get(target.modality)
            )
        origin = display_path(out_dir / zip_name(target.modality))
        entries, _ = _render(target, inputs, cache)
        findings, _ = _validate(target, entries, cache, options, origin)
        reports.append((origin, findings))
    return reports


def _build_model(
    project: Project,
    target: ModelTarget,
    cache: Cache,
    options: BuildOptions,
    out_dir: Path,
    on_findings: FindingsSink | None,
    locked: dict[str, Any] | None,
) -> ModelResult:
    stages: list[StageRun] = []
    inputs: dict[str, Fetched] = {
        "weights": _fetch_weights(project, target, cache, options, locked)
    }
    if target.spec.format == "safetensors":
        inputs["architecture"] = _fetch_architecture(project, target, cache, options, locked)
    stages.append(StageRun("fetch", all(f.hit for f in inputs.values())))
    entries, hit = _render(target, inputs, cache)
    stages.append(StageRun("render", hit))
    input_records = {name: _input_record(f) for name, f in inputs.items()}
    if options.locked:
        _check_locked(target, locked, input_records, _digests(entries))

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
    lock_entry = {
        "format": target.spec.format,
        "inputs": input_records,
        "entries": _digests(entries),
        "output": {
            "path": _relative(project, zip_path),
            "sha256": result.sha256,
            "size": result.size,
        },
    }
    if options.locked:
        _check_locked_output(target, locked, lock_entry)
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


def _locked_input(locked: dict[str, Any] | None, name: str) -> dict[str, Any] | None:
    if not locked:
        return None
    value = locked.get("inputs", {}).get(name)
    return value if isinstance(value, dict) else None


def _fetch_weights(
    project: Project,
    target: ModelTarget,
    cache: Cache,
    options: BuildOptions,
    locked: dict[str, Any] | None,
) -> Fetched:
    spec = target.spec.weights
    key = f"{target.key}.weights"
    location = project.locate(f"{key}.{'url' if spec.url else 'path'}")
    source = make_source(spec.path, spec.url, project.root, key, location)
    pins = Pins(sha256=spec.sha256, size=spec.size)
    return source.fetch(cache, pins, options.fetch, _locked_input(locked, "weights"))


def _fetch_architecture(
    project: Project,
    target: ModelTarget,
    cache: Cache,
    options: BuildOptions,
    locked: dict[str, Any] | None,
) -> Fetched:
    arch = target.spec.architecture
    assert arch is not None  # the manifest requires it for safetensors
    key = f"{target.key}.architecture"
    location = project.locate(f"{key}.{'url' if arch.url else 'file'}")
    source = make_source(arch.file, arch.url, project.root, key, location)
    return source.fetch(
        cache, Pins(sha256=arch.sha256), options.fetch, _locked_input(locked, "architecture")
    )


def _render(
    target: ModelTarget, inputs: dict[str, Fetched], cache: Cache
) -> tuple[list[Entry], bool]:
    """The zip's entries, sorted by name, and whether the rendered text came from the cache.

    The key covers the manifest's model table and model.py's digest, so a template (or any
    later render step) is only run again when what it reads has changed.
    """
    weights = inputs["weights"].blob
    if target.spec.format == "onnx":
        return [Entry.file(f"{target.modality}_detector.onnx", weights)], True
    arch = inputs["architecture"].blob
    params = {"modality": target.modality, "model": target.spec.model_dump(mode="json")}
    key = action_key("render", render.STAGE_VERSION, params, {MODEL_FILE: arch.sha256})
    recorded = cache.get_action(key)
    config = model_py = None
    if recorded is not None:
        config = bytes.fromhex(recorded.get("config", ""))
        model_py = arch.path.read_bytes()
    hit = config is not None and hashlib.sha256(model_py or b"").hexdigest() == arch.sha256
    if not hit:
        model_py = arch.path.read_bytes()
        if hashlib.sha256(model_py).hexdigest() != arch.sha256:
            raise SourceError(f"{target.key}.architecture changed during the build; run it again")
        config = render.render_config(target)
        cache.put_action(key, {"config": config.hex()})
    assert config is not None and model_py is not None
    entries = [
        Entry.text(CONFIG_FILE, config),
        Entry.text(MODEL_FILE, model_py),
        Entry.file(target.spec.weights_file, weights),
    ]
    return sorted(entries, key=lambda e: e.name), hit


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
        smoke_batch=options.smoke_batch,
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
    with cache.lock(f"zip:{zip_path.resolve()}"):  # one writer per output; others then hit
        on_disk = cache.get_digests(zip_path) if zip_path.exists() else None
        if (
            recorded is not None
            and on_disk is not None
            and on_disk.get("sha256") == recorded["sha256"]
        ):
            return package.ZipResult(recorded["sha256"], int(recorded["size"])), True
        result = package.write_zip(zip_path, entries, date_time=date_time)
    cache.put_action(key, {"sha256": result.sha256, "size": result.size})
    digests = {"sha256": result.sha256, "size": result.size}
    cache.put_digests(zip_path, FileStat.of(zip_path), digests, ours=True)
    return result, False


def _digests(entries: list[Entry]) -> dict[str, str]:
    return {
        e.name: hashlib.sha256(e.data).hexdigest() if isinstance(e.data, bytes) else e.data.sha256
        for e in entries
    }


def _relative(project: Project, path: Path) -> str:
    return Path(os.path.relpath(path, project.root)).as_posix()


def _input_record(fetched: Fetched) -> dict[str, Any]:
    return {**fetched.record, "sha256": fetched.blob.sha256, "size": fetched.blob.size}


def _check_locked(
    target: ModelTarget,
    locked: dict[str, Any] | None,
    inputs: dict[str, dict[str, Any]],
    entries: dict[str, str],
) -> None:
    """Before anything is written: the resolved inputs must be exactly what gas.lock says."""
    if not locked:
        raise LockMismatch(
            f"gas.lock has no entry for {target.key}",
            hint="run `gasbuild lock` and commit gas.lock",
        )
    changes = _differences("inputs", locked.get("inputs", {}), inputs)
    changes += _differences("entries", locked.get("entries", {}), entries)
    if changes:
        raise LockMismatch(
            f"gas.lock is stale for {target.key}: " + "; ".join(changes[:4]),
            hint="run `gasbuild lock` to accept the change, then commit gas.lock",
        )


def _check_locked_output(
    target: ModelTarget, locked: dict[str, Any] | None, entry: dict[str, Any]
) -> None:
    changes = _differences("output", (locked or {}).get("output", {}), entry["output"])
    if changes:
        raise LockMismatch(
            f"{target.key} did not reproduce the zip in gas.lock: " + "; ".join(changes),
            hint="the same inputs gave other bytes; report this with both zips",
        )


def _differences(prefix: str, old: Any, new: Any) -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[str] = []
        for key in sorted(set(old) | set(new)):
            out += _differences(f"{prefix}.{key}", old.get(key), new.get(key))
        return out
    if old == new:
        return []
    return [f"{prefix} would change from {old!r} to {new!r}"]
