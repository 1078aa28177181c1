"""The smoke test: load a safetensors submission as the network's loader does, and run it.

``model.py`` is arbitrary code, so it never runs in this process. A child interpreter
(``sys.executable -I``, so ``PYTHON*`` variables and the user site are ignored) runs
``_smoke_child.py`` by path, in a fresh temporary directory holding the submission's files, with:

- a wall-clock timeout (``CheckOptions.smoke_timeout``), after which its whole process group is
  killed;
- an address-space limit (``RLIMIT_AS = CheckOptions.smoke_memory_mb``), set by the child itself
  before it imports anything heavy (a ``preexec_fn`` is unsafe when the parent has threads);
- no network: every proxy variable points at a closed local port, ``no_proxy`` is empty and the
  Hugging Face libraries are told they are offline, so a ``pretrained=True`` fails loudly here
  rather than silently on a machine that happens to be online;
- one or two threads, and HOME/TMPDIR/caches inside the temporary directory.

The child's protocol and steps are described in ``_smoke_child.py``. Only bounded tails of its
output are kept, so a model printing in a loop cannot exhaust the parent's memory.

Codes::

    GAS600  warning  smoke test not run: torch (or safetensors, yaml) is not installed;
                     error: the config gives nothing to run (modality, dtype, num_frames)
    GAS601  error    importing model.py, load_model, the cast or the forward raised (with the
                     model.py line from the traceback), model.py has no load_model, or its
                     signature takes neither the model keys nor num_classes alone
    GAS602  error    load_model returned something other than a torch.nn.Module
    GAS603  warning  load_model's signature cannot take the model keys; the loader calls it
                     with num_classes only, so the other keys are ignored
    GAS604  error    model parameters with no tensor in the weights file (hint: a prefix such
                     as 'module.' to strip); warning: buffers missing, tensors unused, or loaded
                     values that differ from the file's
    GAS605  error    the output is not [B, C] floating-point logits, C not in 1..3, or C not
                     model.num_classes
    GAS606  error    the logits hold NaN or Inf
    GAS607  error    the child did not finish within the timeout
    GAS608  error    out of memory under the limit, or the child died without a result
    GAS609  warning  no classification head for the benchmark's embeddings (self.classifier, or
                     the deepest nn.Linear with C outputs), or forward never calls it
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from gasbuild.stages.validate.config import is_plain_name
from gasbuild.stages.validate.findings import CheckOptions, Finding, Submission
from gasbuild.submission import (
    ALLOWED_IMPORTS,
    AUDIO_SAMPLES,
    CONFIG_FILE,
    DEFAULT_NUM_FRAMES,
    DEFAULT_RESIZE,
    DEFAULT_WEIGHTS_FILE,
    DTYPES,
    MODALITIES,
    MODEL_FILE,
    NUM_CLASSES_ALLOWED,
)

CHILD_SCRIPT = Path(__file__).with_name("_smoke_child.py")
# Modules the child needs; their locations are handed to it, since -I drops PYTHONPATH.
CHILD_MODULES = ("torch", "safetensors", "yaml")
DEFAULT_DTYPE = "float32"  # the loader's dtype when the config names none (SPEC.md §2)
_RGB = 3
SMOKE_THREADS = 2
# A local port nothing listens on (discard): any HTTP(S) request through the proxy fails at once.
DEAD_PROXY = "http://127.0.0.1:9"
# Files at least this large are symlinked into the temporary directory instead of copied.
LINK_MIN_BYTES = 1 << 20
_STDOUT_TAIL = 1 << 20  # bytes of protocol output kept (the result is a few kilobytes)
_STDERR_TAIL = 16 << 10  # bytes of the model's own output kept, for the last line
_KILL_GRACE = 10.0  # seconds to wait for the killed group's pipes to close
_MAX_LINE = 300


def smoke_available() -> bool:
    """Whether the child can import torch (and safetensors, yaml), without importing them."""
    return module_paths() is not None


def module_paths(names: tuple[str, ...] | None = None) -> list[str] | None:
    """The sys.path entries holding ``names``, or None when one is missing (nothing imported):
    the child runs with ``-I``, so it is handed these instead of PYTHONPATH."""
    import importlib.util

    paths: list[str] = []
    for name in CHILD_MODULES if names is None else names:
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            return None
        if spec is None or spec.origin is None:
            return None
        root = Path(spec.origin).parent
        entry = str(root.parent if spec.submodule_search_locations else root)
        if entry not in paths:
            paths.append(entry)
    return paths


def check_smoke(sub: Submission, opts: CheckOptions) -> list[Finding]:
    """Run the submission's model in a sandboxed child; its findings, or why it failed."""
    paths = module_paths()
    if paths is None:
        missing = ", ".join(CHILD_MODULES)
        message = f"smoke test not run: the child needs {missing}, and one is not installed"
        return [Finding("GAS600", "warning", message, hint="pip install 'gasbuild[torch]'")]
    with tempfile.TemporaryDirectory(prefix="gasbuild-smoke-") as tmp:
        root = Path(tmp)
        model_dir = _stage(sub, root / "submission")
        job = child_job_for(model_dir, opts, paths)
        run = run_child(job, root, opts.smoke_timeout)
    return _findings(run, opts)


def _stage(sub: Submission, target: Path) -> Path:
    """Put the submission's root entries in ``target``: large local files by symlink."""
    target.mkdir()
    for name in filter(is_plain_name, sub.names()):  # the container check reports the rest
        dest = target / name
        local = sub.local_path(name)
        if local is not None and sub.size(name) >= LINK_MIN_BYTES and _link(local, dest):
            continue
        with sub.open(name) as src, dest.open("wb") as out:
            shutil.copyfileobj(src, out, length=1 << 20)
    return target


def _link(source: Path, dest: Path) -> bool:
    try:
        dest.symlink_to(source.resolve())
    except OSError:  # no symlinks here (Windows without the privilege): copy instead
        return False
    return True


def child_job_for(model_dir: Path, opts: CheckOptions, paths: list[str]) -> dict[str, Any]:
    """The child's instructions, with the contract tables it must not import."""
    return {
        "model_dir": str(model_dir),
        "modality": opts.modality,
        "batch": opts.smoke_batch,
        "memory_mb": opts.smoke_memory_mb,
        "threads": min(SMOKE_THREADS, os.cpu_count() or 1),
        "sys_path": paths,
        "contract": {
            "config_file": CONFIG_FILE,
            "model_file": MODEL_FILE,
            "default_weights_file": DEFAULT_WEIGHTS_FILE,
            "dtypes": DTYPES,
            "default_dtype": DEFAULT_DTYPE,
            "modalities": list(MODALITIES),
            "audio_samples": AUDIO_SAMPLES,
            "default_resize": list(DEFAULT_RESIZE),
            "default_num_frames": DEFAULT_NUM_FRAMES,
            "channels": _RGB,
            "num_classes_allowed": list(NUM_CLASSES_ALLOWED),
            "allowed_imports": sorted({m.split(".")[0] for m in ALLOWED_IMPORTS}),
        },
    }


def child_env(root: Path) -> dict[str, str]:
    """A small, offline environment: no inherited secrets, caches and HOME in ``root``."""
    home = root / "home"
    home.mkdir(exist_ok=True)
    env = {key: os.environ[key] for key in ("PATH", "LANG", "LC_ALL") if key in os.environ}
    for key in ("http_proxy", "https_proxy", "all_proxy", "ftp_proxy"):
        env[key] = env[key.upper()] = DEAD_PROXY
    threads = str(SMOKE_THREADS)
    env.update(
        {
            "no_proxy": "",
            "NO_PROXY": "",
            "HOME": str(home),
            "TMPDIR": str(home),
            "XDG_CACHE_HOME": str(home / ".cache"),
            "TORCH_HOME": str(home / ".cache" / "torch"),
            "HF_HOME": str(home / ".cache" / "huggingface"),
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "HF_DATASETS_OFFLINE": "1",
            "CUDA_VISIBLE_DEVICES": "",
            "OMP_NUM_THREADS": threads,
            "MKL_NUM_THREADS": threads,
            "OPENBLAS_NUM_THREADS": threads,
            "MALLOC_ARENA_MAX": "2",  # glibc reserves 64 MB of address space per arena
        }
    )
    return env


class _Tail:
    """Reads a pipe to its end on a thread, keeping only the last ``limit`` bytes."""

    def __init__(self, pipe: IO[bytes], limit: int) -> None:
        self._pipe = pipe
        self._chunks: deque[bytes] = deque()
        self._size = 0
        self._limit = limit
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        with self._pipe:
            while chunk := os.read(self._pipe.fileno(), 1 << 16):
                self._chunks.append(chunk)
                self._size += len(chunk)
                while self._size - len(self._chunks[0]) >= self._limit:
                    self._size -= len(self._chunks.popleft())

    def text(self, timeout: float) -> str:
        self._thread.join(timeout)
        return b"".join(self._chunks)[-self._limit :].decode("utf-8", "replace")


@dataclass(frozen=True)
class ChildRun:
    """How the child ended, with the tails of what it wrote."""

    returncode: int | None  # None: killed at the timeout
    stdout: str
    stderr: str


def run_child(
    job: dict[str, Any], root: Path, timeout: float, script: Path = CHILD_SCRIPT
) -> ChildRun:
    """Run a child script (the smoke test's, or the export stage's) on ``job`` in its own
    process group, offline, in ``root/work``; kill the whole group at the timeout."""
    work = root / "work"
    work.mkdir()
    proc = subprocess.Popen(
        [sys.executable, "-I", str(script)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=work,
        env=child_env(root),
        start_new_session=True,
    )
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    out, err = _Tail(proc.stdout, _STDOUT_TAIL), _Tail(proc.stderr, _STDERR_TAIL)
    try:
        with proc.stdin:
            proc.stdin.write(json.dumps(job).encode())
    except BrokenPipeError:  # the child died at once; its exit status says why
        pass
    try:
        returncode: int | None = proc.wait(timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        returncode = None
    return ChildRun(returncode, out.text(_KILL_GRACE), err.text(_KILL_GRACE))


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def child_messages(stdout: str) -> list[dict[str, Any]]:
    """The child's protocol lines (anything else on stdout is ignored)."""
    messages = []
    for line in stdout.splitlines():
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict):
            messages.append(value)
    return messages


def _findings(run: ChildRun, opts: CheckOptions) -> list[Finding]:
    messages = child_messages(run.stdout)
    results = [m["result"] for m in messages if isinstance(m.get("result"), dict)]
    if results and run.returncode == 0:
        return [f for f in map(_finding, results[-1].get("findings", [])) if f is not None]
    phases = [m for m in messages if "phase" in m]
    where = phase_text(phases[-1]) if phases else "starting"
    last = last_line(run.stderr)
    if run.returncode is None:
        message = f"the smoke test did not finish within {opts.smoke_timeout:g} s, while {where}"
        hint = f"last output: {last}" if last else "an endless loop, or a model too slow on CPU"
        return [Finding("GAS607", "error", message, file=MODEL_FILE, hint=hint)]
    how = exit_text(run.returncode)
    message = f"the smoke test's process {how} while {where}" + (f": {last}" if last else "")
    hint = f"the memory limit is {opts.smoke_memory_mb} MB"
    return [Finding("GAS608", "error", message, file=MODEL_FILE, hint=hint)]


def phase_text(phase: dict[str, Any]) -> str:
    batch = phase.get("batch")
    return str(phase["phase"]) + (f" on a batch of {batch}" if batch is not None else "")


def exit_text(returncode: int) -> str:
    if returncode < 0:
        try:
            return f"was killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"was killed by signal {-returncode}"
    return f"exited with status {returncode} and no result"


def last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][:_MAX_LINE] if lines else ""


def _finding(raw: object) -> Finding | None:
    """A finding from the child's JSON; malformed entries are dropped, not trusted."""
    if not isinstance(raw, dict):
        return None
    code, severity, message = raw.get("code"), raw.get("severity"), raw.get("message")
    if not (isinstance(code, str) and code.startswith("GAS6") and isinstance(message, str)):
        return None
    if severity not in ("error", "warning"):
        return None
    file, line, hint = raw.get("file"), raw.get("line"), raw.get("hint")
    return Finding(
        code,
        severity,
        message,
        file=file if isinstance(file, str) else None,
        line=line if isinstance(line, int) and not isinstance(line, bool) else None,
        hint=hint if isinstance(hint, str) else None,
    )
