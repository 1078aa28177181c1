"""The sandbox runner: start an untrusted child interpreter, contain it, and read what it said.

Every process that imports a submission's ``model.py`` (the smoke test's ``smoke_child.py``, the
export stage's ``export_child.py``, the coming eval) is started here, never in gasbuild's own
process. A child is ``sys.executable -I launch.py <script>`` in ``root/work``: ``launch.py``
puts the process under ``contain.py``'s layers before the script runs (user, network and PID
namespaces; seccomp on network sockets; Landlock: reads only beneath Python, the modules handed
over and the submission, writes only in ``root/work`` and ``root/home``, no TCP, no signals
out; ``PR_SET_PDEATHSIG``; address-space, CPU and file-size limits) and reports which held as
its first line. Around it: its own process group, killed whole whenever a run ends (timeout,
normal exit, Ctrl-C); a small environment (``child_env``: no inherited secrets, proxies at a
closed port, Hugging Face offline, HOME/TMPDIR/caches inside ``root``).

The protocol: one JSON job on stdin; JSON lines on stdout (``{"sandbox": ...}``, then
``{"phase": ...}`` as each step starts, then a result). Only bounded tails are kept.

Threat model. ``model.py`` runs in the same process as the child script, so it can do anything
the child can: read the job (and any nonce in it), write any line to the protocol pipe, exit
with any status. No secret held by the child can authenticate a result. What holds instead:

- the sandbox, not the analyzer, keeps the machine safe: no network, no writes outside the
  temporary directory, no reads outside Python, its packages and the submission, no access to
  gasbuild's environment or memory, nothing left running afterwards;
- the verdict is made on this side (``gasbuild.check.smoke``) from raw measurements the child
  reports (the logits of each forward, as numbers), checked here: shape, classes, finiteness,
  one record for every batch asked. A message without them (the forged ``{"result":
  {"findings": []}}``), a premature exit, a crash or a timeout is a failure. A failure the child
  reports is believed: it can only make the submission look worse, which is the model's own
  loss.
- What cannot be verified: that the numbers came from the model's ``forward``. A model.py that
  fabricates complete, well-formed logits passes the smoke test, exactly as a model computing
  those logits would; the smoke test is a pre-flight check for the miner's own mistakes, not
  a proof to a third party (the network runs the model itself). The inputs come from a per-run
  nonce, so canned logits for a known input do not line up with this run's.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from gasbuild.blobs import stale_temp_files
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

SANDBOX_DIR = Path(__file__).parent
SMOKE_CHILD = SANDBOX_DIR / "smoke_child.py"
EXPORT_CHILD = SANDBOX_DIR / "export_child.py"
LAUNCHER = SANDBOX_DIR / "launch.py"  # contains the process, then runs the child script
# Modules a loader child needs; their locations are handed to it, since -I drops PYTHONPATH.
LOADER_MODULES = ("torch", "safetensors", "yaml")
DEFAULT_DTYPE = "float32"  # the loader's dtype when the config names none (SPEC.md §2)
_RGB = 3
SMOKE_THREADS = 2
# A local port nothing listens on (discard): any HTTP(S) request through the proxy fails at once.
DEAD_PROXY = "http://127.0.0.1:9"
_STDOUT_TAIL = 1 << 20  # bytes of protocol output kept (the result is a few kilobytes)
_STDERR_TAIL = 16 << 10  # bytes of the model's own output kept, for the last line
_KILL_GRACE = 10.0  # seconds to wait for the killed group's pipes to close
_MAX_LINE = 300
# ``sandbox_dir``'s names: ``<prefix><pid>-<random>`` (the prefix ends in "-").
_SANDBOX_NAME = re.compile(r"^(?:.*-)?(?P<pid>\d+)-[^-]*$")


def module_paths(names: tuple[str, ...] | None = None) -> list[str] | None:
    """The sys.path entries holding ``names``, or None when one is missing (nothing imported):
    the child runs with ``-I``, so it is handed these instead of PYTHONPATH."""
    import importlib.util

    paths: list[str] = []
    for name in LOADER_MODULES if names is None else names:
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


def loader_job(
    model_dir: Path, *, modality: str | None, batch: int, memory_mb: int, paths: list[str]
) -> dict[str, Any]:
    """A loader child's instructions (the smoke test's, the export's), with the contract tables
    it must not import: the child never imports gasbuild's own modules for them."""
    return {
        "model_dir": str(model_dir),
        "modality": modality,
        "batch": batch,
        "memory_mb": memory_mb,
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
    # The containment layers the launcher reported before any child code ran (contain.py).
    layers: dict[str, str] = field(default_factory=dict)

    @property
    def timed_out(self) -> bool:
        """Stopped by a time limit: killed at the wall-clock timeout, or by the CPU-time limit
        the sandbox sets (SIGXCPU), which a busy model reaches first on a loaded machine."""
        return self.returncode is None or self.returncode == -signal.SIGXCPU

    def timeout_text(self, timeout: float) -> str:
        """Which time limit stopped it (``timed_out`` runs only)."""
        if self.returncode is None:
            return f"did not finish within {timeout:g} s"
        return "used up its CPU time"

    def last_output(self) -> str:
        """The last line the child wrote on stderr (the model's own output included)."""
        return last_line(self.stderr)


def sandbox_parent() -> Path:
    """The one gasbuild-owned folder holding every sandbox's temporary directory (mode 0700),
    so ``gasbuild cache gc`` finds what a killed gasbuild left behind."""
    uid = os.getuid() if hasattr(os, "getuid") else 0
    parent = Path(tempfile.gettempdir()) / f"gasbuild-sandbox-{uid}"
    parent.mkdir(mode=0o700, exist_ok=True)
    return parent


@contextlib.contextmanager
def sandbox_dir(prefix: str) -> Iterator[Path]:
    """A fresh directory for one child, named ``<prefix><pid>-...`` under ``sandbox_parent``;
    removed when the block ends (the pid tells ``sweep_sandbox_dirs`` whose it is)."""
    root = Path(tempfile.mkdtemp(prefix=f"{prefix}{os.getpid()}-", dir=sandbox_parent()))
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def sweep_sandbox_dirs() -> int:
    """Remove sandbox directories whose owning process is gone; how many were removed."""
    parent = Path(tempfile.gettempdir()) / f"gasbuild-sandbox-{os.getuid()}"
    doomed = stale_temp_files(parent, _SANDBOX_NAME)
    for entry in doomed:
        shutil.rmtree(entry, ignore_errors=True)
    return len(doomed)


def sandbox_spec(job: dict[str, Any], root: Path, timeout: float) -> dict[str, Any]:
    """What ``contain.py`` enforces for a job: who the parent is, the limits, and where the
    child may read (Python, the modules it is handed, the submission and the targets of its
    symlinks, and any ``read_only`` folders the job names, e.g. the eval's input batches) and
    write (``root/work`` and ``root/home`` only)."""
    memory_mb = int(job.get("memory_mb") or 0)
    threads = int(job.get("threads") or SMOKE_THREADS)
    read = [sys.prefix, sys.base_prefix, str(Path(sys.executable).resolve().parent)]
    read += [str(SANDBOX_DIR), *job.get("sys_path", []), *job.get("read_only", [])]
    model_dir = job.get("model_dir")
    if isinstance(model_dir, str):
        read.append(model_dir)
        folder = Path(model_dir)
        if folder.is_dir():
            read += [str(p.resolve()) for p in folder.iterdir() if p.is_symlink()]
    return {
        "parent_pid": os.getpid(),
        "memory_mb": memory_mb,
        # CPU seconds: every thread busy for the whole wall-clock timeout, and a little more.
        "cpu_seconds": math.ceil(timeout * threads) + 10,
        # No file the child writes may be larger than what fits in its memory.
        "file_mb": memory_mb,
        "read": list(dict.fromkeys(read)),
        "write": [str(root / "work"), str(root / "home")],
    }


def run_child(
    job: dict[str, Any],
    root: Path,
    timeout: float,
    script: Path = SMOKE_CHILD,
    *,
    contain: bool = True,
    pass_fds: tuple[int, ...] = (),
    env: dict[str, str] | None = None,
) -> ChildRun:
    """Run a child script (the smoke test's, the export stage's, the eval's) on ``job``,
    contained (``launch.py`` then ``contain.py``), in ``root/work``, in its own process group.

    The group is killed whenever the run ends: at the timeout, after a normal exit (a forked
    ``sleep`` does not outlive the check), and on Ctrl-C, which is then raised again so the
    command exits 130. A killed gasbuild takes the child along (``PR_SET_PDEATHSIG``).
    ``contain=False`` (the bench's baseline only) skips every layer but the process group.

    ``pass_fds`` (the eval's pipes) are handed to the child under the same numbers and closed
    here once it has them, so that only the child holds those ends: its death is then an EOF
    or EPIPE on this side, never a hang. ``env`` adds variables to ``child_env``'s."""
    work = root / "work"
    work.mkdir()
    child_environment = {**child_env(root), **(env or {})}
    job = {**job, "sandbox": sandbox_spec(job, root, timeout) if contain else None}
    try:
        proc = subprocess.Popen(
            [sys.executable, "-I", str(LAUNCHER), str(script)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=work,
            env=child_environment,
            start_new_session=True,
            pass_fds=pass_fds,
        )
    finally:
        for fd in pass_fds:
            os.close(fd)
    try:
        return _wait(proc, job, timeout)
    finally:
        _kill_group(proc)


def _wait(proc: subprocess.Popen[bytes], job: dict[str, Any], timeout: float) -> ChildRun:
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
    _kill_group(proc)  # what the child left running holds the pipes open
    stdout = out.text(_KILL_GRACE)
    return ChildRun(returncode, stdout, err.text(_KILL_GRACE), _layers(stdout))


def _layers(stdout: str) -> dict[str, str]:
    """The launcher's first line: which containment layers are active."""
    for message in child_messages(stdout)[:1]:
        layers = message.get("sandbox")
        if isinstance(layers, dict):
            return {str(k): str(v) for k, v in layers.items()}
    return {}


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
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


def last_phase(messages: list[dict[str, Any]]) -> str:
    """Where the child was when it stopped: its last announced phase, or "starting"."""
    phases = [m for m in messages if "phase" in m]
    return phase_text(phases[-1]) if phases else "starting"


def phase_text(phase: dict[str, Any]) -> str:
    batch = phase.get("batch")
    return str(phase["phase"]) + (f" on a batch of {batch}" if batch is not None else "")


def exit_text(returncode: int | None) -> str:
    """How the child's process ended, for a message (``None``: killed at the timeout)."""
    if returncode is None:
        return "was killed at the timeout"
    if returncode < 0:
        try:
            return f"was killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"was killed by signal {-returncode}"
    return f"exited with status {returncode} and no result"


def last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][:_MAX_LINE] if lines else ""
