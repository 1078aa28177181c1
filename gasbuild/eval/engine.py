"""Scoring a submission zip on labelled data: the trusted side of ``gasbuild eval``/``predict``.

The parent (this module) decodes and preprocesses media into the benchmark's arrays and streams
them down a pipe to the sandboxed child (``gasbuild/sandbox/eval_child.py``), which sends back
one line of logits per batch on a second pipe; predictions and metrics are computed here. The
child is started first, in a thread, so that it imports torch and loads the model while the
first batches are decoded; a feeder thread writes the decoded batches (at most
``MAX_AHEAD_BYTES`` wait in memory) while this thread decodes the next ones. Where the time
goes, and why it is spent this way: docs/benchmarks.md, "gasbuild eval".

Results are cached in gasbuild's action cache under (zip digest, data digest, eval code
digest, parameters): a second eval of the same zip on the same data reads no media (file
digests are reused while a file's stat is unchanged) and starts no child.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import threading
import time
import zipfile
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gasbuild.blobs import sha256_file
from gasbuild.errors import CheckFailed, UserError, display_path
from gasbuild.eval import media
from gasbuild.eval.data import ClassFolder, Sample, data_digest, discover, sample_files
from gasbuild.eval.metrics import Prediction, process_output, score
from gasbuild.sandbox import DEFAULT_MEMORY_MB
from gasbuild.sandbox.runner import (
    SANDBOX_DIR,
    ChildRun,
    child_messages,
    exit_text,
    last_phase,
    loader_job,
    module_paths,
    run_child,
)
from gasbuild.submission import (
    CONFIG_FILE,
    DEFAULT_NUM_FRAMES,
    DEFAULT_RESIZE,
    MAX_NUM_FRAMES,
    MODALITIES,
    Modality,
)

if TYPE_CHECKING:
    from gasbuild.cache import Cache

EVAL_CHILD = SANDBOX_DIR / "eval_child.py"
EVAL_VERSION = "1"
CHILD_MODULES = ("torch", "safetensors", "yaml", "numpy")
# The benchmark's batch sizes (config.py DEFAULT_*_BATCH_SIZE).
BATCH_SIZES: dict[str, int] = {"image": 32, "video": 4, "audio": 16}
# Decoded batches may wait in memory up to this many bytes: enough to keep decoding while the
# child imports torch and loads the model (seconds), bounded for large datasets.
MAX_AHEAD_BYTES = 256 << 20
_PIPE_BYTES = 1 << 20
_PROGRESS_SECONDS = 0.2
_HASH_THREADS = 4
_WHOLE_READ_BYTES = 16 << 20
# glibc hands freed blocks of activation size back to the kernel (unmapped, or trimmed off
# the top of the heap) and faults them in afresh at the next forward (the quickstart model on
# a loaded machine: 12x the minor faults, twice the CPU time; docs/benchmarks.md). Blocks below
# 256 MiB are reused from the heap instead; at most 512 MiB of freed memory is kept, within the
# address-space limit the sandbox sets. The numbers a model computes do not change.
CHILD_ENV = {
    "MALLOC_MMAP_THRESHOLD_": str(256 << 20),
    "MALLOC_TRIM_THRESHOLD_": str(512 << 20),
    # Idle OpenMP threads sleep instead of spinning: the parent decodes on the same cores, and
    # on a shared machine a spinning team took 2-3x the wall time of the same forwards.
    "OMP_WAIT_POLICY": "PASSIVE",
}
_CODE = (
    "eval",
    "sandbox/eval_child.py",
    "sandbox/loader_child.py",
    "sandbox/smoke_child.py",
    "sandbox/runner.py",
)
_MAX_WARNINGS = 200
_MALFORMED = "malformed logits (expected [samples, 1..3] numbers)"

Progress = Callable[[int, int], None]  # (samples done, total)
Warn = Callable[[str], None]


class EvalError(CheckFailed):
    """The model could not be scored: it does not load, the child died, or it timed out."""


@dataclass(frozen=True)
class EvalOptions:
    """How to run: batch size (default: the benchmark's), a per-class sample cap, limits."""

    batch_size: int | None = None
    limit: int | None = None
    timeout: float | None = None  # None: 300 s plus 2 s per sample
    memory_mb: int = DEFAULT_MEMORY_MB


@dataclass(frozen=True)
class ModelInfo:
    """What the parent needs from model_config.yaml to preprocess (never trusted further)."""

    modality: Modality
    resize: tuple[int, int]
    num_frames: int
    frame_rate: float | None


@dataclass
class Scored:
    """One sample's outcome: a prediction, an error (its batch failed), or skipped."""

    sample: Sample
    prediction: Prediction | None = None
    error: str | None = None


@dataclass
class RunOutput:
    """Everything one child run produced, in sample order."""

    scored: list[Scored] = field(default_factory=list)
    skipped: list[tuple[Sample, str]] = field(default_factory=list)
    forward_ms: float = 0.0
    wall_seconds: float = 0.0


# ---------------------------------------------------------------------------------------------
# The zip and its config


def read_model_info(zip_path: Path, modality: str | None = None) -> ModelInfo:
    """The modality and input shape from a zip's model_config.yaml, as the loader reads them."""
    import yaml

    try:
        with zipfile.ZipFile(zip_path) as zf:
            config = yaml.safe_load(zf.read(CONFIG_FILE).decode("utf-8"))
    except (OSError, KeyError, zipfile.BadZipFile, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise UserError(
            f"{display_path(zip_path)}: cannot read {CONFIG_FILE} ({_short(exc)})",
            hint=f"run `gasbuild check {display_path(zip_path)}`",
        ) from None
    config = config if isinstance(config, dict) else {}
    chosen = modality or config.get("modality")
    if chosen not in MODALITIES:
        raise UserError(
            f"{display_path(zip_path)}: its config names no modality (got {chosen!r})",
            hint="pass --modality image|video|audio",
        )
    pre = config.get("preprocessing")
    pre = pre if isinstance(pre, dict) else {}
    resize, frames = DEFAULT_RESIZE, DEFAULT_NUM_FRAMES
    size = pre.get("resize")
    if isinstance(size, list) and len(size) == 2 and all(isinstance(v, int) for v in size):
        resize = (int(size[0]), int(size[1]))
        # pytorch_session.py: num_frames, else max_frames, else 16 (only together with resize)
        value = pre.get("num_frames", pre.get("max_frames", DEFAULT_NUM_FRAMES))
        frames = min(int(value), MAX_NUM_FRAMES) if isinstance(value, int) else frames
    rate = pre.get("frame_rate")
    frame_rate = float(rate) if isinstance(rate, int | float) and rate > 0 else None
    return ModelInfo(chosen, resize, frames, frame_rate)


def stage_zip(zip_path: Path, target: Path) -> Path:
    """Check the zip's container as the network would, then unpack its root files."""
    from gasbuild.check import CheckOptions
    from gasbuild.check.container import check_zip
    from gasbuild.check.findings import ZipSubmission, has_errors

    findings, zf = check_zip(zip_path, CheckOptions(smoke=False))
    if zf is None or has_errors(findings):
        first = next((f for f in findings if f.severity == "error"), None)
        if zf is not None:
            zf.close()
        raise UserError(
            f"{display_path(zip_path)}: not a sound submission zip"
            + (f" ({first.code}: {first.message})" if first else ""),
            hint=f"run `gasbuild check {display_path(zip_path)}`",
        )
    target.mkdir(parents=True)
    with zf:
        sub = ZipSubmission(zf, display_path(zip_path))
        for name in sub.names():
            with sub.open(name) as src, (target / name).open("wb") as out:
                shutil.copyfileobj(src, out, length=1 << 20)
    return target


# ---------------------------------------------------------------------------------------------
# Preprocessing (trusted side)


def preprocess(sample: Sample, info: ModelInfo) -> Any:
    """The array the benchmark feeds for one sample (raises media.MediaError)."""
    if info.modality == "image":
        return media.load_image(sample.path, info.resize)
    if info.modality == "video":
        return media.load_video(sample.path, info.resize, info.num_frames, info.frame_rate)
    return media.load_audio(sample.path)


def batches(
    folders: Iterable[ClassFolder],
    info: ModelInfo,
    batch_size: int,
    skipped: list[tuple[Sample, str]],
) -> Iterator[tuple[list[Sample], Any]]:
    """Per class folder, batches of successfully decoded samples (as the benchmark fills them);
    an unreadable file is recorded in ``skipped`` and left out."""
    import numpy as np

    for folder in folders:
        members: list[Sample] = []
        arrays: list[Any] = []
        for sample in folder.samples:
            try:
                arrays.append(preprocess(sample, info))
            except media.MediaError as exc:
                skipped.append((sample, str(exc)))
                continue
            members.append(sample)
            if len(members) == batch_size:
                yield members, np.stack(arrays)
                members, arrays = [], []
        if members:
            yield members, np.stack(arrays)


# ---------------------------------------------------------------------------------------------
# The child run


def run_model(
    zip_path: Path,
    info: ModelInfo,
    folders: list[ClassFolder],
    options: EvalOptions,
    progress: Progress | None = None,
) -> RunOutput:
    """Score every sample of ``folders`` with the zip's model, in the sandbox.

    Three things run at once: the child (importing torch, loading the model, then scoring), this
    thread decoding batches into a queue bounded by ``MAX_AHEAD_BYTES``, and a feeder thread
    writing the queue down the child's input pipe; a reader thread keeps the child's result
    lines."""
    paths = module_paths(CHILD_MODULES)
    if paths is None:
        raise EvalError(
            f"eval needs {', '.join(CHILD_MODULES)}, and one is not installed",
            hint="pip install 'gasbuild[torch,eval]'",
        )
    total = sum(len(f.samples) for f in folders)
    timeout = options.timeout or 300.0 + 2.0 * total
    batch_size = options.batch_size or BATCH_SIZES[info.modality]
    output = RunOutput()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="gasbuild-eval-") as tmp:
        root = Path(tmp)
        model_dir = stage_zip(zip_path, root / "submission")
        job = loader_job(
            model_dir, modality=info.modality, batch=batch_size, memory_mb=options.memory_mb,
            paths=paths,
        )  # fmt: skip
        job["threads"] = eval_threads()
        in_read, in_write = os.pipe()
        out_read, out_write = os.pipe()
        _grow_pipe(in_write)
        job["eval"] = {"in_fd": in_read, "out_fd": out_write}
        sizes: list[int] = []  # samples per batch sent, by index
        results = _Results(out_read, sizes, _max_line(batch_size))
        feeder = _Feeder(in_write)
        child = _ChildThread(job, root, timeout, (in_read, out_write), child_env(job["threads"]))
        sent: list[list[Sample]] = []
        try:
            for members, array in batches(folders, info, batch_size, output.skipped):
                sizes.append(len(members))
                if not feeder.put(len(sent), array):
                    break  # the child stopped reading: it ended, and says why below
                sent.append(members)
                _report(progress, results.samples + len(output.skipped), total)
        finally:
            feeder.close()
        while not child.wait(_PROGRESS_SECONDS):
            _report(progress, results.samples + len(output.skipped), total)
        run = child.join()
        results.join()
        _raise_for_child(run, zip_path, timeout, options.memory_mb)
        for index, members in enumerate(sent):
            _collect(results.lines.get(index), members, output)
    output.wall_seconds = time.perf_counter() - started
    return output


def eval_threads() -> int:
    """Torch's intra-op threads in the child: every core this process may use (the smoke test
    uses two). The parent's decoding shares them; ``OMP_WAIT_POLICY=PASSIVE`` keeps the team
    from spinning on the cores the decoder needs."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return max(1, cores)


def child_env(threads: int) -> dict[str, str]:
    """The variables the eval adds to the sandbox's environment."""
    count = str(threads)
    return {**CHILD_ENV, "OMP_NUM_THREADS": count, "MKL_NUM_THREADS": count}


def _report(progress: Progress | None, done: int, total: int) -> None:
    if progress is not None:
        progress(done, total)


def _grow_pipe(fd: int) -> None:
    """A 1 MiB pipe (Linux; the default is 64 KiB): fewer wake-ups per batch of megabytes."""
    import fcntl

    with contextlib.suppress(AttributeError, OSError):
        fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, _PIPE_BYTES)


def _max_line(batch_size: int) -> int:
    """The longest result line a batch can honestly produce: 3 logits per sample, each at most
    a few dozen characters of JSON."""
    return 1024 + batch_size * 3 * 32


class _ChildThread:
    """``run_child`` on a thread, so the parent decodes while the child loads and infers."""

    def __init__(
        self,
        job: dict[str, Any],
        root: Path,
        timeout: float,
        pass_fds: tuple[int, ...],
        env: dict[str, str],
    ) -> None:
        self.run: ChildRun | None = None

        def target() -> None:
            self.run = run_child(job, root, timeout, script=EVAL_CHILD, pass_fds=pass_fds, env=env)

        self._thread = threading.Thread(target=target, daemon=True)
        self._thread.start()

    def wait(self, seconds: float) -> bool:
        """True once the child has ended."""
        self._thread.join(seconds)
        return not self._thread.is_alive()

    def join(self) -> ChildRun:
        self._thread.join()
        assert self.run is not None
        return self.run


class _Feeder:
    """Writes batches down the child's input pipe on a thread, from a queue of at most
    ``MAX_AHEAD_BYTES`` (always room for one batch): decoding goes on while the child imports
    torch and while it infers, and memory stays bounded whatever the data set's size."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._queue: deque[tuple[int, Any]] = deque()
        self._bytes = 0
        self._closed = False
        self.broken = False  # the child closed its end: nothing more can be sent
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def put(self, index: int, array: Any) -> bool:
        """Queue a batch, waiting for room; False once the child no longer reads."""
        with self._cond:
            while self._queue and self._bytes + array.nbytes > MAX_AHEAD_BYTES:
                if self.broken:
                    return False
                self._cond.wait()
            if self.broken:
                return False
            self._queue.append((index, array))
            self._bytes += array.nbytes
            self._cond.notify_all()
        return True

    def close(self) -> None:
        """No more batches: the pipe closes once the queue is written (the child's end mark)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join()

    def _run(self) -> None:
        try:
            while (item := self._next()) is not None:
                index, array = item
                header = {"index": index, "shape": list(array.shape), "dtype": array.dtype.str}
                _write_all(self._fd, (json.dumps(header) + "\n").encode())
                _write_all(self._fd, memoryview(array).cast("B"))
                with self._cond:
                    self._bytes -= array.nbytes
                    self._cond.notify_all()
        except OSError:  # EPIPE: the child is gone; run_model learns why from its exit
            with self._cond:
                self.broken = True
                self._queue.clear()
                self._cond.notify_all()
        finally:
            os.close(self._fd)

    def _next(self) -> tuple[int, Any] | None:
        with self._cond:
            while not self._queue and not self._closed:
                self._cond.wait()
            return self._queue.popleft() if self._queue else None


def _write_all(fd: int, data: bytes | memoryview) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _raise_for_child(run: ChildRun, zip_path: Path, timeout: float, memory_mb: int) -> None:
    """An EvalError unless the child ended with a result."""
    messages = child_messages(run.stdout)
    name = display_path(zip_path)
    if run.returncode == 0:
        for message in reversed(messages):
            if isinstance(message.get("result"), dict):
                return
            error = message.get("error")
            if isinstance(error, dict):
                text = " ".join(str(error.get("message") or "failed").split())[:400]
                hint = error.get("hint")
                raise EvalError(
                    f"{name}: the model cannot be scored: {text}",
                    hint=str(hint)[:300] if hint else f"run `gasbuild check {name}`",
                )
    where = last_phase(messages)
    last = run.last_output()
    if run.timed_out:
        raise EvalError(
            f"{name}: the eval {run.timeout_text(timeout)}, while {where}",
            hint=f"last output: {last}" if last else "a model too slow on CPU? try --limit",
        )
    how = exit_text(run.returncode)
    raise EvalError(
        f"{name}: the eval's process {how} while {where}" + (f": {last}" if last else ""),
        hint=f"the memory limit is {memory_mb} MB",
    )


class _Results:
    """Reads the child's result lines on a thread. Model code can write anything there: a line
    longer than a batch's honest result, for a batch never sent, or a second one for a batch is
    ignored (that batch then counts as failed); reading goes on to the end so the child never
    blocks on a full pipe."""

    def __init__(self, fd: int, sizes: list[int], max_line: int) -> None:
        self.lines: dict[int, dict[str, Any]] = {}
        self.samples = 0  # samples whose batch has a result: the progress shown
        self._sizes = sizes
        self._max_line = max_line
        self._thread = threading.Thread(target=self._run, args=(fd,), daemon=True)
        self._thread.start()

    def _run(self, fd: int) -> None:
        with os.fdopen(fd, "rb") as reader:
            while line := reader.readline(self._max_line):
                if not line.endswith(b"\n"):  # too long: skip to the end of this line
                    while (rest := reader.readline(self._max_line)) and not rest.endswith(b"\n"):
                        pass
                    continue
                self._keep(line)

    def _keep(self, line: bytes) -> None:
        try:
            message = json.loads(line)
        except ValueError:
            return
        index = message.get("index") if isinstance(message, dict) else None
        if type(index) is not int or not 0 <= index < len(self._sizes) or index in self.lines:
            if type(index) is int and index in self.lines:
                self.lines[index] = {"error": "the child sent two results for this batch"}
            return
        self.lines[index] = message
        self.samples += self._sizes[index]

    def join(self) -> None:
        self._thread.join()


def _collect(message: dict[str, Any] | None, members: list[Sample], output: RunOutput) -> None:
    """One batch's logits, checked before use: model code wrote this line."""
    logits, error = _logits(message, len(members))
    ms = message.get("ms") if message else None
    if logits is not None and isinstance(ms, int | float) and not isinstance(ms, bool):
        output.forward_ms += float(ms)
    for row, sample in enumerate(members):
        if logits is None:
            output.scored.append(Scored(sample, error=error[:300]))
        else:
            output.scored.append(Scored(sample, prediction=process_output(logits[row])))


def _logits(message: dict[str, Any] | None, rows: int) -> tuple[Any, str]:
    """``[rows, 1..3]`` float32 logits from a result line, or None and why not."""
    import numpy as np

    if message is None:
        return None, "the child wrote no result for this batch"
    if message.get("error") is not None:
        return None, str(message["error"]) or "the batch failed"
    values = message.get("logits")
    if not isinstance(values, list) or len(values) != rows:
        count = len(values) if isinstance(values, list) else "no"
        return None, f"{count} rows of logits for {rows} samples"
    width = len(values[0]) if isinstance(values[0], list) else 0
    if width not in (1, 2, 3) or not all(
        isinstance(row, list)
        and len(row) == width
        and all(isinstance(v, int | float) and not isinstance(v, bool) for v in row)
        for row in values
    ):
        return None, _MALFORMED
    try:
        return np.asarray(values, dtype=np.float32), ""
    except OverflowError:  # an integer beyond any float
        return None, _MALFORMED


# ---------------------------------------------------------------------------------------------
# Eval: data + model -> figures (cached)


def summarise(modality: str, output: RunOutput, data_root: Path) -> dict[str, Any]:
    """The JSON result for one modality: the benchmark's figures plus per-class/folder views."""
    ok = [s for s in output.scored if s.prediction is not None]
    overall = score([s.sample.label for s in ok], [s.prediction for s in ok if s.prediction])
    result: dict[str, Any] = {
        "modality": modality,
        "samples": overall.samples,
        "errors": sum(1 for s in output.scored if s.error is not None),
        "skipped": len(output.skipped),
        "accuracy": overall.accuracy,
        "mcc": overall.mcc,
        "brier": overall.brier,
        "sn34_score": overall.sn34_score,
        "ms_per_sample": output.forward_ms / overall.samples if overall.samples else 0.0,
        "per_class": _groups(output.scored, lambda s: s.klass),
        "per_folder": _groups(output.scored, lambda s: f"{s.klass}/{s.folder}".rstrip("/.")),
        "skipped_files": [
            f"{_relative(s.path, data_root)}: {why}" for s, why in output.skipped[:_MAX_WARNINGS]
        ],
        "batch_errors": sorted({s.error for s in output.scored if s.error})[:20],
    }
    return result


def _groups(scored: list[Scored], key: Callable[[Sample], str]) -> dict[str, dict[str, Any]]:
    groups: dict[str, dict[str, Any]] = {}
    for item in scored:
        group = groups.setdefault(key(item.sample), {"samples": 0, "errors": 0, "correct": 0})
        if item.prediction is None:
            group["errors"] += 1
            continue
        group["samples"] += 1
        group["correct"] += int(item.prediction.predicted == item.sample.label)
    for group in groups.values():
        group["accuracy"] = group["correct"] / group["samples"] if group["samples"] else 0.0
    return dict(sorted(groups.items()))


def _relative(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


@dataclass(frozen=True)
class EvalRequest:
    """One zip on one data directory."""

    zip_path: Path
    data_dir: Path
    modality: Modality | None = None  # default: the zip's config
    options: EvalOptions = EvalOptions()


def code_digest() -> str:
    """The digest of the code that decides an eval's numbers (part of the cache key)."""
    from gasbuild.cache import source_digest  # not gasbuild.plan: it imports pydantic

    package = Path(__file__).resolve().parents[1]
    return source_digest(package / part for part in _CODE)


def cache_key(request: EvalRequest, info: ModelInfo, zip_sha: str, data_sha: str) -> str:
    from gasbuild.cache import action_key

    params = {
        "modality": info.modality,
        "resize": list(info.resize),
        "num_frames": info.num_frames,
        "frame_rate": info.frame_rate,
        "batch_size": request.options.batch_size or BATCH_SIZES[info.modality],
        "limit": request.options.limit,
        "decoders": media.decoders()[info.modality],
    }
    inputs = {"zip": zip_sha, "data": data_sha, "code": code_digest()}
    return action_key("eval", EVAL_VERSION, params, inputs)


def cached_file_digest(cache: Cache | None) -> Callable[[Path], str]:
    """sha256 of a file, reusing the cache's record while the file's stat is unchanged."""
    from gasbuild.cache import FileStat

    def digest(path: Path) -> str:
        if cache is not None:
            known = cache.get_digests(path)
            if known and isinstance(known.get("sha256"), str):
                return str(known["sha256"])
        stat = FileStat.of(path)
        value = sha256_file(path)
        if cache is not None:
            cache.put_digests(path, stat, {"sha256": value})
        return value

    return digest


def sample_digests(cache: Cache | None, root: Path, files: list[Path]) -> dict[Path, str]:
    """sha256 of every sample file: from the cache's one record for the data folder while a
    file's stat is unchanged, else hashed, on several threads (hashlib and file reads release
    the GIL), and recorded in one write. One stat record per sample file cost more than the
    hashing (thousands of small atomic writes; docs/benchmarks.md)."""
    from concurrent.futures import ThreadPoolExecutor

    from gasbuild.cache import FileStat

    known = cache.get_folder_digests(root) if cache is not None else {}
    digests: dict[Path, str] = {}
    todo: list[tuple[Path, str, FileStat]] = []
    for path in files:
        name = path.relative_to(root).as_posix()
        stat = FileStat.of(path)
        entry = known.get(name)
        if (
            isinstance(entry, dict)
            and entry.get("stat") == stat.as_list()
            and isinstance(entry.get("sha256"), str)
        ):
            digests[path] = entry["sha256"]
        else:
            todo.append((path, name, stat))
    if not todo:
        return digests
    with ThreadPoolExecutor(max_workers=min(_HASH_THREADS, len(todo))) as pool:
        hashed = list(pool.map(_sha256, [path for path, _, _ in todo]))
    for (path, _, _), value in zip(todo, hashed, strict=True):
        digests[path] = value
    if cache is not None:
        records = {name: (stat, value) for (_, name, stat), value in zip(todo, hashed, strict=True)}
        cache.put_folder_digests(root, records)
    return digests


def _sha256(path: Path) -> str:
    """A small file in one read (most samples), a large one streamed."""
    import hashlib

    if path.stat().st_size <= _WHOLE_READ_BYTES:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    return sha256_file(path)


def evaluate(
    request: EvalRequest,
    cache: Cache | None,
    *,
    progress: Progress | None = None,
    run: Callable[..., RunOutput] = run_model,
) -> dict[str, Any]:
    """The figures for one zip on the data, from the cache when this very eval ran before."""
    info = read_model_info(request.zip_path, request.modality)
    folders = discover(request.data_dir, info.modality, request.options.limit)
    digests = sample_digests(cache, request.data_dir, sample_files(folders))
    data_sha = data_digest(request.data_dir, digests, digests.__getitem__)
    zip_sha = cached_file_digest(cache)(request.zip_path)
    key = cache_key(request, info, zip_sha, data_sha)
    if cache is not None:
        hit = cache.get_action(key)
        if hit is not None and isinstance(hit.get("result"), dict):
            return {**hit["result"], "cached": True}
    output = run(request.zip_path, info, folders, request.options, progress)
    result = summarise(info.modality, output, request.data_dir)
    result.update(
        {
            "zip": display_path(request.zip_path),
            "zip_sha256": zip_sha,
            "data_sha256": data_sha,
            "decoder": media.decoders()[info.modality],
            "wall_seconds": output.wall_seconds,
        }
    )
    if cache is not None:
        cache.put_action(key, {"result": result})
    return {**result, "cached": False}


def predict_files(
    zip_path: Path,
    paths: list[Path],
    modality: Modality | None = None,
    options: EvalOptions = EvalOptions(),
) -> tuple[ModelInfo, RunOutput]:
    """Probabilities for loose files (or frame folders), no labels: ``gasbuild predict``."""
    info = read_model_info(zip_path, modality)
    samples = tuple(Sample(p, "real", ".") for p in paths)
    folder = ClassFolder("real", Path("."), samples)
    return info, run_model(zip_path, info, [folder], options)


def _short(exc: BaseException) -> str:
    return (" ".join(str(exc).split()) or type(exc).__name__)[:200]
