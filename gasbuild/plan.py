"""Plan and run a build: per model, fetch -> render -> validate -> package, each stage cached.

Keys come from :func:`gasbuild.cache.action_key`; a stage whose key is known is not run again. A
no-op rebuild therefore reads only small metadata: weights digests come from the stat cache (or
the store, for URLs), the validation result and the zip digest from the action cache, and the zip
in dist/ is trusted when its stat matches the digest recorded when it was written.
"""

from __future__ import annotations

import functools
import hashlib
import os
import tempfile
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

from gasbuild import check as validate_stage
from gasbuild import located, lock
from gasbuild.blobs import PROGRESS_FROM_BYTES, FileBlob, measure_file, sweep_stale_temp_files
from gasbuild.cache import Cache, FileStat, action_key, source_digest
from gasbuild.check import CheckOptions, Finding, StagedSubmission
from gasbuild.errors import CheckFailed, SourceError, display_path
from gasbuild.manifest import ModelTarget, Project, SourceSpec
from gasbuild.stages import convert, package, render
from gasbuild.stages.fetch import (
    Fetched,
    FetchOptions,
    Pins,
    ProgressFactory,
    cached_object,
    make_source,
)
from gasbuild.stages.package import Entry
from gasbuild.submission import CONFIG_FILE, MODEL_FILE, Modality, zip_name
from gasbuild.templates import Template


def no_step(name: str) -> AbstractContextManager[None]:
    """A step nobody is shown (the API, ``--json``)."""
    return nullcontext()


@dataclass(frozen=True)
class BuildOptions:
    """What the user asked of this build."""

    only: frozenset[Modality] | None = None
    out_dir: Path | None = None
    smoke: bool = True
    deep: bool = False
    smoke_batch: int = 2
    smoke_memory_mb: int | None = None  # None: [build] smoke_memory, else derived
    smoke_timeout: float | None = None  # None: [build] smoke_timeout, else derived
    write_lock: bool = True
    locked: bool = False  # fail instead of changing gas.lock (CI)
    fetch: FetchOptions = field(default_factory=FetchOptions)
    # Names a long step while it runs (the CLI shows a spinner on a terminal).
    step: Callable[[str], AbstractContextManager[None]] = no_step


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
    smoke: str = "passed"  # "passed", "skipped" (--no-smoke) or "not run" (GAS600: no torch)

    @property
    def smoke_tested(self) -> bool:
        return self.smoke == "passed"


@dataclass
class BuildReport:
    results: list[ModelResult]
    lock_path: Path
    lock_written: bool


FindingsSink = Callable[[str, list[Finding]], None]

# The package's own source files each stage's results depend on, besides the stage's inputs
# (relative to gasbuild/; a folder means its *.py files).
_STAGE_CODE: dict[str, tuple[str, ...]] = {
    "convert": ("stages/convert.py", "blobs.py"),
    "render": ("stages/render.py", "templates.py"),
    "export": ("stages/export.py", "sandbox", "blobs.py"),
    "validate": ("check", "sandbox", "submission.py"),
    "package": ("stages/package.py", "blobs.py"),
}


@functools.cache
def stage_version(stage: str, declared: str) -> str:
    """A stage's cache-key version: its declared version and a digest of its code.

    ``gasbuild.__version__`` is in every key, but between releases (an editable install, a
    checkout after a pull) a changed check or converter would otherwise reuse the results of
    the old code. Reading the few source files costs well under a millisecond.
    """
    root = Path(__file__).parent
    return f"{declared}+{source_digest(root / rel for rel in _STAGE_CODE[stage])[:16]}"


def build(
    project: Project,
    cache: Cache,
    options: BuildOptions,
    on_findings: FindingsSink | None = None,
) -> BuildReport:
    """Build every selected model; raise on the first model that cannot be built."""
    options = _smoke_limits(project, options)
    out_dir = options.out_dir or project.out_dir
    lock_path = project.root / lock.LOCK_NAME
    if options.locked and not lock_path.exists():
        raise lock.LockMismatch(
            f"{display_path(lock_path)} is missing and --locked was given",
            hint="run `gasbuild lock` and commit gas.lock",
        )
    locked = lock.read(lock_path)
    cache.sweep_temp_files()  # what a killed build left: its zip's temp file, its downloads
    sweep_stale_temp_files(out_dir)
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
    options = _smoke_limits(project, options)
    out_dir = options.out_dir or project.out_dir
    locked = lock.read(project.root / lock.LOCK_NAME)
    reports = []
    for target in project.targets(options.only):
        label = located.project_label(project, target)
        early: list[Finding] = []  # before an ONNX export: model.py's checks, the exporter's

        def collect(origin: str, found: list[Finding], early: list[Finding] = early) -> None:
            early.extend(found)

        try:
            with options.step(f"{target.modality}: fetching and rendering"):
                prepared = _prepare(
                    project, target, cache, options, locked.get(target.modality), collect
                )
        except CheckFailed:
            if not early:
                raise
            reports.append((label, early))  # model.py was not exported: these say why
            continue
        origin = display_path(out_dir / zip_name(target.modality))
        findings, _ = _validate(target, prepared.entries, cache, options, origin)
        # No zip is read or written: the model is named by its table, each finding by the
        # file it is about (model.py, gas.toml, the weights).
        reports.append((label, early + located.locate(project, target, prepared.entries, findings)))
    return reports


def _smoke_limits(project: Project, options: BuildOptions) -> BuildOptions:
    """The smoke limits: the flags', else gas.toml's ``[build]``, else None (derived)."""
    section = project.manifest.build
    return replace(
        options,
        smoke_memory_mb=options.smoke_memory_mb or section.smoke_memory,
        smoke_timeout=options.smoke_timeout or section.smoke_timeout,
    )


@dataclass
class Prepared:
    """A model's zip entries, what they were made from, and which stages the cache answered."""

    entries: list[Entry]
    inputs: dict[str, dict[str, Any]]
    stages: list[StageRun]


def _prepare(
    project: Project,
    target: ModelTarget,
    cache: Cache,
    options: BuildOptions,
    locked: dict[str, Any] | None,
    on_findings: FindingsSink | None = None,
) -> Prepared:
    """fetch -> convert -> render (-> export): everything before validation."""
    fetched = _fetch_all(project, target, cache, options, locked)
    stages = [StageRun("fetch", all(f.hit for f in fetched.values()))]
    try:
        weights, hit = _weights(target, fetched, cache, options)
    except convert.ConversionError as exc:
        # The fix is in the weights table of gas.toml: point at it, as manifest errors do.
        exc.location = exc.location or project.locate(f"{target.key}.weights")
        raise
    if hit is not None:
        stages.append(StageRun("convert", hit))
    template = _template(project, target)
    entries, hit = _render(target, fetched, weights, template, cache)
    stages.append(StageRun("render", hit))
    if target.spec.format == "onnx" and target.spec.architecture is not None:
        sink = _placing(on_findings, project, target, entries)
        _check_before_export(target, entries, sink)
        onnx_blob, hit = _export(target, entries, cache, options, sink)
        entries = [Entry.file(f"{target.modality}_detector.onnx", onnx_blob)]
        stages.append(StageRun("export", hit))
    records = {name: _input_record(f) for name, f in fetched.items()}
    if template is not None:
        # What it renders is locked through the model.py entry, so a change to a template that
        # renders the same file (its help text, say) does not unlock every gas.lock using it.
        records["architecture"] = {
            "template": template.name,
            "source": "builtin" if template.builtin else "project",
        }
    return Prepared(entries, records, stages)


def _build_model(
    project: Project,
    target: ModelTarget,
    cache: Cache,
    options: BuildOptions,
    out_dir: Path,
    on_findings: FindingsSink | None,
    locked: dict[str, Any] | None,
) -> ModelResult:
    with options.step(f"{target.modality}: fetching and rendering"):
        prepared = _prepare(project, target, cache, options, locked, on_findings)
    entries, stages = prepared.entries, prepared.stages
    if options.locked:
        lock.check_inputs(target.key, locked, prepared.inputs, _digests(entries))

    zip_path = out_dir / zip_name(target.modality)
    origin = display_path(zip_path)
    findings, hit = _validate(target, entries, cache, options, origin)
    stages.append(StageRun("validate", hit))
    if on_findings is not None and findings:  # at the files edited: the zip is not written
        on_findings(origin, located.locate(project, target, entries, findings))
    if validate_stage.has_errors(findings):
        raise CheckFailed(
            f"{origin}: not written, the submission has errors (see above)",
            hint="fix them in gas.toml or the model's files, then build again",
        )

    with options.step(f"{target.modality}: writing {display_path(zip_path)}"):
        result, hit = _package(entries, zip_path, cache, options.fetch.progress)
    stages.append(StageRun("package", hit))
    lock_entry = {
        "format": target.spec.format,
        "inputs": prepared.inputs,
        "entries": _digests(entries),
        "output": {
            "path": _relative(project, zip_path),
            "sha256": result.sha256,
            "size": result.size,
        },
    }
    if options.locked:
        lock.check_output(target.key, locked, lock_entry)
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
        smoke=_smoke_state(options, findings),
    )


def _smoke_state(options: BuildOptions, findings: list[Finding]) -> str:
    if not options.smoke:
        return "skipped"
    return "not run" if any(f.code in NOT_RUN_CODES for f in findings) else "passed"


# Findings that say a check did not run (GAS600: torch or onnxruntime is not installed): a
# validation holding one is never cached, so installing torch makes the next build run it.
NOT_RUN_CODES = frozenset({"GAS600"})


def _locked_input(locked: dict[str, Any] | None, name: str) -> dict[str, Any] | None:
    if not locked:
        return None
    value = locked.get("inputs", {}).get(name)
    return value if isinstance(value, dict) else None


# ------------------------------------------------------------------------------------------------
# fetch


def _fetch_all(
    project: Project,
    target: ModelTarget,
    cache: Cache,
    options: BuildOptions,
    locked: dict[str, Any] | None,
) -> dict[str, Fetched]:
    """Every input file of a model, by its gas.lock name: weights (and shards), model.py,
    and a template's file arguments."""
    spec = target.spec
    key = f"{target.key}.weights"
    fetched = {"weights": _fetch(project, key, spec.weights, cache, options, locked, "weights")}
    if _weights_kind(spec.weights) == "index":
        fetched.update(_fetch_shards(project, target, fetched["weights"], cache, options, locked))
    arch = spec.architecture
    if arch is None:
        return fetched
    if arch.template is None:
        fetched["architecture"] = _fetch(
            project,
            f"{target.key}.architecture",
            arch.as_source(),
            cache,
            options,
            locked,
            "architecture",
            path_key="file",
        )
        return fetched
    template = project.template_registry().get(arch.template)
    assert template is not None  # the manifest checked it
    for name, arg in template.args.items():
        if arg.type == "file" and name in arch.args:
            source = SourceSpec(path=arch.args[name])
            fetched[f"args.{name}"] = _fetch(
                project,
                f"{target.key}.architecture.args.{name}",
                source,
                cache,
                options,
                locked,
                f"args.{name}",
                path_key=None,
            )
    return fetched


def _fetch(
    project: Project,
    key: str,
    spec: SourceSpec,
    cache: Cache,
    options: BuildOptions,
    locked: dict[str, Any] | None,
    lock_name: str,
    *,
    path_key: str | None = "path",
) -> Fetched:
    """One input through its Source; ``path_key`` names the gas.toml key errors point at."""
    location = project.locate(f"{key}.{'url' if spec.url else path_key}" if path_key else key)
    source = make_source(spec.path, spec.url, project.root, key, location)
    pins = Pins(sha256=spec.sha256, size=spec.size)
    return source.fetch(cache, pins, options.fetch, _locked_input(locked, lock_name))


def _fetch_shards(
    project: Project,
    target: ModelTarget,
    index: Fetched,
    cache: Cache,
    options: BuildOptions,
    locked: dict[str, Any] | None,
) -> dict[str, Fetched]:
    """The shards an index names, fetched from beside it (same directory or URL prefix)."""
    spec = target.spec.weights
    key = f"{target.key}.weights"
    out = {}
    for name in convert.index_shards(index.blob.path, key=key):
        if spec.url is not None and not spec.url.startswith("file://"):
            shard = SourceSpec(url=sibling_url(spec.url, name))
        else:
            shard = SourceSpec(path=str(index.blob.path.parent / name))
        out[f"weights/{name}"] = _fetch(
            project, key, shard, cache, options, locked, f"weights/{name}"
        )
    return out


def sibling_url(url: str, name: str) -> str:
    """The URL of ``name`` in the same folder as ``url`` (an index's shards sit beside it)."""
    if url.startswith("hf://"):
        from gasbuild.stages.hfresolve import normalise_hf_url

        url = normalise_hf_url(url)
    base = url.split("?", 1)[0].split("#", 1)[0]
    return base.rsplit("/", 1)[0] + "/" + name


def _weights_kind(spec: SourceSpec) -> str:
    """index, checkpoint or safetensors, by the file name (anything else is taken as a
    safetensors file, which the validate stage checks by its header)."""
    name = _source_name(spec)
    if name.endswith(".index.json"):
        return "index"
    if name.endswith(convert.CHECKPOINT_SUFFIXES):
        return "checkpoint"
    return "safetensors"


def _source_name(spec: SourceSpec) -> str:
    """The file name a source ends in (for its kind: checkpoint, index or safetensors)."""
    if spec.url is not None:
        path = spec.url.split("?", 1)[0].split("#", 1)[0].rstrip("/")
        name = path.rsplit("/", 1)[-1]
        return name.rpartition("@")[0] if "@" in name else name
    return Path(spec.path or "").name


# ------------------------------------------------------------------------------------------------
# convert


def _weights(
    target: ModelTarget, fetched: dict[str, Fetched], cache: Cache, build: BuildOptions
) -> tuple[FileBlob, bool | None]:
    """The safetensors blob to ship (or export from), and whether conversion was a cache hit
    (None: the weights are used as they are, or the model is a ready ONNX file)."""
    spec = target.spec
    weights = fetched["weights"].blob
    if spec.format == "onnx" and spec.architecture is None:
        return weights, None
    settings = spec.weights.conversion_options()
    options = convert.ConvertOptions(
        state_dict_key=settings.get("state_dict_key"),
        strip_prefix=tuple(settings.get("strip_prefix", ())),
        rename=tuple(settings.get("rename", {}).items()),
        dtype=settings.get("dtype"),
    )
    name = _source_name(spec.weights)
    kind = _weights_kind(spec.weights)
    if kind == "safetensors" and options.is_identity:
        return weights, None
    if kind == "index":
        shards = [(n, f.blob) for n, f in fetched.items() if n.startswith("weights/")]
        files = [blob.path for _, blob in shards]
        labels = [n.removeprefix("weights/") for n, _ in shards]
        digests = {n: blob.sha256 for n, blob in shards} | {"index": weights.sha256}
    else:
        files, labels, digests = [weights.path], [name], {"weights": weights.sha256}
    params = {"kind": kind, "name": name, **options.params()}
    key = action_key("convert", stage_version("convert", convert.STAGE_VERSION), params, digests)

    def run() -> FileBlob:
        tmp = cache.temp_dir() / f"convert-{key[:16]}-{os.getpid()}.safetensors"
        try:
            with build.step(f"{target.modality}: converting {name}"):
                written = convert.convert(
                    files,
                    options,
                    tmp,
                    key=f"{target.key}.weights",
                    index=weights.path if kind == "index" else None,
                    labels=labels,
                )
            blob = FileBlob(tmp, written.size, written.crc32, written.sha256)
            path = _store(cache, tmp, blob)
        finally:
            tmp.unlink(missing_ok=True)
        cache.put_action(key, {"sha256": blob.sha256, "size": blob.size, "crc32": blob.crc32})
        return FileBlob(path, blob.size, blob.crc32, blob.sha256)

    return cached_stage(cache, f"convert:{key}", lambda: _cached_output(cache, key, build), run)


T = TypeVar("T")


def cached_stage(
    cache: Cache, lock_name: str, lookup: Callable[[], T | None], run: Callable[[], T]
) -> tuple[T, bool]:
    """A stage's output from the cache, or from running it once; and whether it was a hit.

    The sequence every storing stage shares: look the result up; on a miss take the stage's
    lock and look again (a concurrent build on the same cache may have just stored it, and
    then this one hits instead of doing the work twice); only then ``run``, which stores its
    outputs and records its key before the lock is released.
    """
    found = lookup()
    if found is not None:
        return found, True
    with cache.lock(lock_name):
        found = lookup()
        if found is not None:
            return found, True
        return run(), False


def _store(cache: Cache, tmp: Path, blob: FileBlob) -> Path:
    """Move a stage's output into the store, with its digests recorded, so that a no-op
    rebuild never reads it again."""
    path = cache.add_object(tmp, blob.sha256)
    digests = {"sha256": blob.sha256, "crc32": blob.crc32, "size": blob.size}
    cache.put_digests(path, FileStat.of(path), digests, ours=True)
    return path


def _cached_output(cache: Cache, key: str, build: BuildOptions) -> FileBlob | None:
    """The object a stage recorded under ``key``, when the local or remote store has it."""
    recorded = cache.get_action(key)
    if recorded is None:
        return None
    return cached_object(cache, str(recorded["sha256"]), build.fetch)


# ------------------------------------------------------------------------------------------------
# render


def _template(project: Project, target: ModelTarget) -> Template | None:
    arch = target.spec.architecture
    if arch is None or arch.template is None:
        return None
    template = project.template_registry().get(arch.template)
    assert template is not None  # the manifest checked it
    return template


def _render(
    target: ModelTarget,
    fetched: dict[str, Fetched],
    weights: FileBlob,
    template: Template | None,
    cache: Cache,
) -> tuple[list[Entry], bool]:
    """The entries of a safetensors submission (or of the model an ONNX file is exported
    from), sorted by name, and whether the rendered text came from the cache.

    The key covers the manifest's model table and the digests of model.py or the template and
    its file arguments, so rendering runs again only when what it reads has changed.
    """
    if target.spec.format == "onnx" and target.spec.architecture is None:
        return [Entry.file(f"{target.modality}_detector.onnx", weights)], True
    shipped = {
        entry: fetched[f"args.{arg}"].blob
        for entry, arg in (template.files if template else {}).items()
        if f"args.{arg}" in fetched
    }
    digests = {
        name: f.blob.sha256
        for name, f in fetched.items()
        if name != "weights" and not name.startswith("weights/")
    }
    params: dict[str, Any] = {
        "modality": target.modality,
        "model": target.spec.model_dump(mode="json", exclude={"weights"}),
        "preprocessing": render.config_data(target)["preprocessing"],
    }
    if template is not None:
        params["template"] = template.name
        digests["template"] = template.digest()
    key = action_key("render", stage_version("render", render.STAGE_VERSION), params, digests)
    recorded = cache.get_action(key)
    hit = recorded is not None
    if recorded is not None:
        config, model_py = bytes.fromhex(recorded["config"]), bytes.fromhex(recorded["model_py"])
    else:
        config = render.render_config(target)
        model_py = _model_py(target, fetched, template)
        cache.put_action(key, {"config": config.hex(), "model_py": model_py.hex()})
    entries = [
        Entry.text(CONFIG_FILE, config),
        Entry.text(MODEL_FILE, model_py),
        Entry.file(target.spec.weights_file, weights),
        *(Entry.file(name, blob) for name, blob in shipped.items()),
    ]
    return sorted(entries, key=lambda e: e.name), hit


def _model_py(target: ModelTarget, fetched: dict[str, Fetched], template: Template | None) -> bytes:
    if template is None:
        blob = fetched["architecture"].blob
        model_py = blob.path.read_bytes()
        if hashlib.sha256(model_py).hexdigest() != blob.sha256:
            raise SourceError(f"{target.key}.architecture changed during the build; run it again")
        return model_py
    arch = target.spec.architecture
    assert arch is not None
    return render.render_model_py(target, template, template.values(arch.args))


# ------------------------------------------------------------------------------------------------
# export (format = "onnx" from an architecture)


def _placing(
    on_findings: FindingsSink | None, project: Project, target: ModelTarget, entries: list[Entry]
) -> FindingsSink | None:
    """``on_findings``, told each finding at the file it is about (see gasbuild.located)."""
    if on_findings is None:
        return None
    sink = on_findings

    def placed(origin: str, findings: list[Finding]) -> None:
        sink(origin, located.locate(project, target, entries, findings))

    return placed


def _check_before_export(
    target: ModelTarget, entries: list[Entry], on_findings: FindingsSink | None
) -> None:
    """The export runs model.py (sandboxed, like the smoke test): check it statically first."""
    from gasbuild.check.static import check_static

    staged = {e.name: (e.data if isinstance(e.data, bytes) else e.data.path) for e in entries}
    origin = f"{target.key}.architecture"
    opts = CheckOptions(modality=target.modality, format="safetensors", smoke=False)
    findings = check_static(StagedSubmission(staged, origin), opts)
    errors = [f for f in findings if f.severity == "error"]
    if on_findings is not None and errors:
        on_findings(origin, errors)
    if errors:
        raise CheckFailed(
            f"{target.key}: model.py was not exported to ONNX: it has errors (see above)",
            hint="the export runs model.py, so it must pass the same checks as a submission",
        )


def _export(
    target: ModelTarget,
    entries: list[Entry],
    cache: Cache,
    build: BuildOptions,
    on_findings: FindingsSink | None,
) -> tuple[FileBlob, bool]:
    """The ONNX file exported from the rendered model, cached by the entries' digests; the
    exporter's warnings are reported (GAS509) from the cache too, so a rebuild still says them."""
    from gasbuild.stages import export

    pre = target.preprocessing
    tuning = target.spec.export.model_dump() if target.spec.export is not None else {}
    options = export.ExportOptions(
        modality=target.modality, resize=pre.resize, num_frames=pre.num_frames, **tuning
    )
    key = action_key(
        "export", stage_version("export", export.STAGE_VERSION), options.params(), _digests(entries)
    )

    def run() -> FileBlob:
        with tempfile.TemporaryDirectory(
            prefix=f"gasbuild-export-{os.getpid()}-", dir=cache.temp_dir()
        ) as tmp:
            model_dir = Path(tmp) / "model"
            model_dir.mkdir()
            for entry in entries:
                dest = model_dir / entry.name
                if isinstance(entry.data, bytes):
                    dest.write_bytes(entry.data)
                else:
                    dest.symlink_to(entry.data.path.resolve())
            out = Path(tmp) / "model.onnx"
            with build.step(f"{target.modality}: exporting model.py to ONNX"):
                result = export.export_onnx(model_dir, out, options, key=target.key)
            blob = measure_file(out)
            path = _store(cache, out, blob)
        outputs = {"sha256": blob.sha256, "size": blob.size, "crc32": blob.crc32}
        cache.put_action(key, {**outputs, "warnings": list(result.warnings)})
        return FileBlob(path, blob.size, blob.crc32, blob.sha256)

    blob, hit = cached_stage(cache, f"export:{key}", lambda: _cached_output(cache, key, build), run)
    _export_warnings(target, cache.get_action(key), on_findings)
    return blob, hit


def _export_warnings(
    target: ModelTarget, recorded: dict[str, Any] | None, on_findings: FindingsSink | None
) -> None:
    warnings = [str(w) for w in (recorded or {}).get("warnings", [])]
    if on_findings is None or not warnings:
        return
    hint = "the ONNX graph may not compute what model.py does for other inputs; check it"
    from gasbuild.check.onnx import EXPORT_WARNING

    findings = [Finding(EXPORT_WARNING, "warning", w, file=MODEL_FILE, hint=hint) for w in warnings]
    on_findings(f"{target.key}.architecture", findings)


# ------------------------------------------------------------------------------------------------
# validate and package


def _validate(
    target: ModelTarget,
    entries: list[Entry],
    cache: Cache,
    options: BuildOptions,
    origin: str,
) -> tuple[list[Finding], bool]:
    """The checks of one model (cached), shown as a step: the smoke test may take minutes."""
    running = "checking and smoke-testing" if options.smoke else "checking"
    with options.step(f"{target.modality}: {running} (cached results are reused)"):
        return _validate_entries(target, entries, cache, options, origin)


def _validate_entries(
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
        smoke_memory_mb=options.smoke_memory_mb,
        smoke_timeout=options.smoke_timeout,
        allow_dynamic_hw=target.spec.allow_dynamic_hw,
    )
    params = {
        "modality": target.modality,
        "format": target.spec.format,
        "smoke": opts.smoke,
        "deep": opts.deep,
        "smoke_batch": opts.smoke_batch,
        # Set limits change the verdict; derived ones follow from the entries already keyed.
        **({"smoke_memory_mb": opts.smoke_memory_mb} if opts.smoke_memory_mb else {}),
        **({"smoke_timeout": opts.smoke_timeout} if opts.smoke_timeout else {}),
        **({"allow_dynamic_hw": True} if opts.allow_dynamic_hw else {}),
    }
    key = action_key(
        "validate",
        stage_version("validate", validate_stage.STAGE_VERSION),
        params,
        _digests(entries),
    )
    recorded = cache.get_action(key)
    if recorded is not None:
        return [Finding(**f) for f in recorded["findings"]], True
    staged = {e.name: (e.data if isinstance(e.data, bytes) else e.data.path) for e in entries}
    findings = validate_stage.check_contents(StagedSubmission(staged, origin), opts)
    did_not_run = any(f.code in NOT_RUN_CODES for f in findings)
    if not validate_stage.has_errors(findings) and not did_not_run:
        cache.put_action(key, {"findings": [f.to_json() for f in findings]})
    return findings, False


def _package(
    entries: list[Entry], zip_path: Path, cache: Cache, progress: ProgressFactory | None = None
) -> tuple[package.ZipResult, bool]:
    date_time = package.zip_date_time()
    params = {"date_time": list(date_time), "names": [e.name for e in entries]}
    key = action_key(
        "package", stage_version("package", package.STAGE_VERSION), params, _digests(entries)
    )

    def lookup() -> package.ZipResult | None:
        """The recorded zip, when the file at ``zip_path`` is still exactly it."""
        recorded = cache.get_action(key)
        try:
            if recorded is None or not zip_path.exists():
                return None
        except OSError:  # a name too long, say: writing it says so in one line
            return None
        on_disk = cache.get_digests(zip_path)
        if on_disk is None or on_disk.get("sha256") != recorded["sha256"]:
            return None
        return package.ZipResult(recorded["sha256"], int(recorded["size"]))

    def run() -> package.ZipResult:
        # a bar on a terminal: writing a zip of 1 GiB takes seconds
        total = package.payload_size(entries)
        bar = None
        if progress is not None and total >= PROGRESS_FROM_BYTES:
            bar = progress(f"writing {zip_path.name}", total)
        try:
            advance = None if bar is None else bar.advance
            result = package.write_zip(zip_path, entries, date_time=date_time, progress=advance)
        finally:
            if bar is not None:
                bar.finish()
        cache.put_action(key, {"sha256": result.sha256, "size": result.size})
        digests = {"sha256": result.sha256, "size": result.size}
        cache.put_digests(zip_path, FileStat.of(zip_path), digests, ours=True)
        return result

    # One writer per output file; a concurrent build of the same zip then hits.
    return cached_stage(cache, f"zip:{zip_path.resolve()}", lookup, run)


def _digests(entries: list[Entry]) -> dict[str, str]:
    return {
        e.name: hashlib.sha256(e.data).hexdigest() if isinstance(e.data, bytes) else e.data.sha256
        for e in entries
    }


def _relative(project: Project, path: Path) -> str:
    return Path(os.path.relpath(path, project.root)).as_posix()


def _input_record(fetched: Fetched) -> dict[str, Any]:
    return {**fetched.record, "sha256": fetched.blob.sha256, "size": fetched.blob.size}
