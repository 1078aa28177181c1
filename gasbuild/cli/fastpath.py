"""The no-op rebuild without the build: replay the last report when nothing it read has changed.

A no-op ``gasbuild build`` reads no weight bytes, but loading the manifest (pydantic), the
templates (jinja2) and the stage modules costs most of its time before any file is looked at.
This module lets ``build`` answer "up to date" as ``make`` would, from one small record and the
standard library alone (os, sys, json, hashlib):

* **Recording.** After a *full* build that was itself a no-op (every stage a cache hit, no zip
  rebuilt, gas.lock unchanged), :class:`Recorder` writes ``<project>/.gasbuild/noop-build.json``:
  the invocation (the exact command line, working directory, the environment variables and
  terminal that change the output, the interpreter, gasbuild's version, whether the smoke test's
  modules are importable), what the build read (gas.toml's and gas.lock's digests; the stat
  record of every input, output zip and cache entry it looked at; every file of the templates
  and of gasbuild's own code) and the exact bytes it printed on stdout and stderr.
* **Replaying.** :func:`replay_argv` runs before click is imported (``gasbuild.cli.main``). It
  finds the record from the command line's ``-C``/``-f``, compares everything above with the
  present and, when everything matches, prints the recorded bytes. Anything else (no record,
  another command line, even one click would parse alike, such as ``-q build`` for ``build -q``,
  a changed stat, a file modified within ``RACY_NS`` of the record, an unreadable record, shell
  completion) is a decline, and the full path runs: it stays the single source of truth, and
  every full run replaces or removes the record. Matching the exact argv, not parsed flags, is
  what lets the replay skip click: the same tokens in the same directory, environment and
  interpreter parse the same way, whatever they mean.

Stat records follow git's index: a file whose mtime falls within the clock's granularity of the
record's write time is "racy" (a same-size rewrite in the same tick would keep its stat), so it
never lets the fast path answer.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
import time
from pathlib import Path

from gasbuild._version import __version__
from gasbuild.resources import MANIFEST_NAME, STATE_DIR

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing on the replay path
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence
    from typing import Any, TextIO

RECORD_NAME = "noop-build.json"
LOCK_NAME = "gas.lock"
RECORD_FORMAT = 2
# As the stat cache's RACY_SECONDS: files modified this close to the record are not trusted.
RACY_NS = 2_000_000_000

# Environment variables that change what a build does or how its report looks (rich reads the
# terminal ones), besides every GASBUILD_* setting and the credentials of remote sources.
_ENV_NAMES = (
    "SOURCE_DATE_EPOCH",
    "HOME",
    "XDG_CACHE_HOME",
    "PYTHONIOENCODING",
    "PYTHONUTF8",
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "TERM",
    "COLORTERM",
    "NO_COLOR",
    "FORCE_COLOR",
    "TTY_COMPATIBLE",
    "TTY_INTERACTIVE",
    "COLUMNS",
    "LINES",
    "JUPYTER_COLUMNS",
    "JUPYTER_LINES",
    "DATABRICKS_RUNTIME_VERSION",
    "PYTHONWARNINGS",
)
_ENV_PREFIXES = ("GASBUILD_", "HF_", "AWS_", "FSSPEC_")
# Names that may hold a credential: the record keeps only that they are set (see _secret).
_SECRET_WORDS = ("TOKEN", "SECRET", "PASSWORD", "PASSWD", "KEY", "CREDENTIAL", "SESSION", "AUTH")
_SECRET_SET = "<set>"
# The smoke test runs only when its child can import these (sandbox.runner.LOADER_MODULES), and
# the ONNX checks use onnx/onnxruntime when present: where each would come from.
_PROBED_MODULES = ("torch", "safetensors", "yaml", "onnx", "onnxruntime")

Stat = list[int] | None
# (prog_name, argv): the command line a record answers, token for token.
CommandLine = tuple[str, "Sequence[str]"]


# ------------------------------------------------------------------------------------------------
# What the present looks like


def manifest_path(directory: Path | None, manifest_file: Path | None) -> Path:
    """The gas.toml a build of these options reads (as ``manifest.find_manifest`` finds it)."""
    base = directory or Path.cwd()
    return base / manifest_file if manifest_file is not None else base / MANIFEST_NAME


def record_path(manifest: Path) -> Path:
    """Where the record of a manifest's last no-op build lives: beside push's receipts."""
    return manifest.parent / STATE_DIR / RECORD_NAME


def invocation(command_line: CommandLine) -> dict[str, Any]:
    """Everything outside the project's files that can change a build's report: the command
    line (which click parses the same way only in the same directory and environment)."""
    prog_name, argv = command_line
    return {
        "format": RECORD_FORMAT,
        "gasbuild": __version__,
        "python": [sys.executable, sys.version, list(sys.path), list(sys.warnoptions)],
        "cwd": os.getcwd(),
        "argv": [prog_name, *argv],
        "env": {
            name: _SECRET_SET if _secret(name) else value
            for name, value in sorted(os.environ.items())
            if name in _ENV_NAMES or name.startswith(_ENV_PREFIXES)
        },
        "modules": {name: _module_origin(name) for name in _PROBED_MODULES},
        "terminal": _terminal(),
    }


def _secret(name: str) -> bool:
    """Whether a variable may hold a credential (``AWS_SECRET_ACCESS_KEY``, ``HF_TOKEN``, ...).

    The record is a plain file in the project: such a value is never written to it, only that
    it is set. That loses nothing: a no-op reads nothing remote, so a credential cannot change
    its report, and a build that does need it is not a no-op."""
    upper = name.upper()
    return any(word in upper for word in _SECRET_WORDS)


def _module_origin(name: str) -> str | None:
    """Where ``name`` would be imported from, without importing it (None: not installed)."""
    import importlib.util

    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    return None if spec is None else str(spec.origin)


def _terminal() -> dict[str, Any]:
    """What rich looks at to lay out and colour the report: ttys, encodings, the window size."""
    streams = {"stdout": sys.stdout, "stderr": sys.stderr}
    out: dict[str, Any] = {}
    for name, stream in streams.items():
        try:
            tty = bool(stream.isatty())
        except (AttributeError, ValueError):
            tty = False
        out[name] = [tty, getattr(stream, "encoding", None)]
    size = None
    for fd in (0, 1, 2):
        with contextlib.suppress(OSError, ValueError):
            size = list(os.get_terminal_size(fd))
            break
    out["size"] = size
    return out


def stat_of(path: Path | str, *, with_ctime: bool = True) -> Stat:
    """A file's stat record; ``with_ctime`` for files users edit (a rewrite that restores the
    mtime still moves the ctime), not for cache entries (using one moves its times)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    record = [st.st_size, st.st_mtime_ns, st.st_ino, st.st_dev]
    return [*record, st.st_ctime_ns] if with_ctime else record


def content_digest(path: Path | str) -> str | None:
    """sha256 of a small file's bytes (gas.toml, gas.lock), None when it does not exist."""
    try:
        with open(path, "rb") as f:
            return hashlib.sha256(f.read()).hexdigest()
    except FileNotFoundError:
        return None


def tree_stats(root: Path | str) -> list[list[Any]] | None:
    """Every file under ``root`` (no ``__pycache__``) with its stat record, sorted by path."""
    if not os.path.isdir(root):
        return None
    found: list[list[Any]] = []
    stack = [str(root)]
    while stack:
        folder = stack.pop()
        with os.scandir(folder) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    if entry.name != "__pycache__":
                        stack.append(entry.path)
                    continue
                st = entry.stat()
                rel = os.path.relpath(entry.path, root)
                found.append([rel, st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns])
    return sorted(found)


def package_dir() -> Path:
    """gasbuild's own code: any change to it (an editable install, a pull) may change a report."""
    return Path(__file__).resolve().parent.parent


# ------------------------------------------------------------------------------------------------
# Replaying


def replay_argv(prog_name: str, argv: Sequence[str]) -> bool:
    """Print the recorded report and return True when ``argv`` is a build whose last no-op
    still holds; False (nothing printed) at the first doubt. Runs before click is imported."""
    if any(name.startswith("_") and name.endswith("_COMPLETE") for name in os.environ):
        return False  # shell completion: click answers it, never a build
    located = locate(argv)
    if located is None:
        return False
    report = lookup(*located, (prog_name, argv))
    if report is None:
        return False
    stdout, stderr = report
    sys.stderr.write(stderr)
    sys.stderr.flush()
    sys.stdout.write(stdout)
    sys.stdout.flush()
    return True


_GLOBAL_FLAGS = frozenset({"-v", "--verbose", "-q", "--quiet"})
_DIRECTORY = ("-C", "--directory")
_FILE = ("-f", "--file")


def locate(argv: Sequence[str]) -> tuple[Path | None, Path | None] | None:
    """``(directory, manifest_file)`` of a ``build`` command line, read from its ``-C`` and
    ``-f`` as click would; None when it is no build or looks unusual (``--``, a repeated
    option). Only *where to look* for a record: a misreading finds no record of this argv."""
    tokens = list(argv)
    while tokens and (tokens[0] in _GLOBAL_FLAGS or _is_short_flags(tokens[0], "vq")):
        tokens.pop(0)
    if not tokens or tokens[0] != "build" or "--" in tokens:
        return None
    found: dict[str, str] = {}
    rest = iter(tokens[1:])
    for token in rest:
        for key, (short, long) in (("directory", _DIRECTORY), ("file", _FILE)):
            value: str | None = None
            if token in (short, long):
                value = next(rest, None)
                if value is None:
                    return None
            elif token.startswith(long + "="):
                value = token[len(long) + 1 :]
            elif token.startswith(short) and not token.startswith("--"):
                value = token[len(short) :]
            if value is not None:
                if key in found:
                    return None
                found[key] = value
    directory, manifest_file = found.get("directory"), found.get("file")
    return (
        None if directory is None else Path(directory),
        None if manifest_file is None else Path(manifest_file),
    )


def _is_short_flags(token: str, letters: str) -> bool:
    """``-vv``, ``-vq``: short flags run together."""
    return len(token) > 1 and token[0] == "-" and token[1] != "-" and set(token[1:]) <= set(letters)


def lookup(
    directory: Path | None, manifest_file: Path | None, command_line: CommandLine
) -> tuple[str, str] | None:
    """The recorded (stdout, stderr) when nothing the last no-op build read has changed;
    None at the first doubt. Used cache entries are marked as used, as the full path does."""
    manifest = manifest_path(directory, manifest_file)
    try:
        with open(record_path(manifest), "rb") as f:
            record = json.loads(f.read())
        if not isinstance(record, dict):
            return None
        if why_not(record, directory, manifest_file, command_line) is not None:
            return None
        stdout, stderr = record["stdout"], record["stderr"]
        used = [str(path) for path, _, touched in record["cache"] if touched is True]
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        return None
    if not isinstance(stdout, str) or not isinstance(stderr, str):
        return None
    for path in used:
        _touch(path)
    return stdout, stderr


def why_not(
    record: dict[str, Any],
    directory: Path | None,
    manifest_file: Path | None,
    command_line: CommandLine,
) -> str | None:
    """The first reason the record no longer holds (None: it does); cheapest checks first."""
    manifest = manifest_path(directory, manifest_file)
    if record.get("format") != RECORD_FORMAT or record.get("manifest") != str(manifest):
        return "another record format or manifest"
    now = invocation(command_line)
    for part, value in now.items():
        if record["invocation"].get(part) != value:
            return f"invocation: {part}"
    if record["manifest_sha256"] != content_digest(manifest):
        return "gas.toml changed"
    if record["lock_sha256"] != content_digest(manifest.parent / LOCK_NAME):
        return "gas.lock changed"
    written = int(record["written_ns"])
    for path, recorded in record["files"]:
        if recorded is None or _racy(recorded[1], written):
            return f"racy: {path}"
        if stat_of(path) != recorded:
            return f"changed: {path}"
    for path, recorded, _ in record["cache"]:
        if recorded is None or stat_of(path, with_ctime=False) != recorded:
            return f"cache entry changed: {path}"
    for root, recorded in record["trees"]:
        if recorded is None or any(_racy(f[2], written) for f in recorded):
            return f"racy: {root}"
        if tree_stats(root) != recorded:
            return f"changed: {root}"
    return None


def _racy(mtime_ns: int, written_ns: int) -> bool:
    return mtime_ns >= written_ns - RACY_NS


def _touch(path: str) -> None:
    """Move only the access time (``cache.touch``): gc keeps what no-op builds keep using."""
    with contextlib.suppress(OSError):
        os.utime(path, ns=(time.time_ns(), os.stat(path).st_mtime_ns))


def forget(directory: Path | None, manifest_file: Path | None) -> None:
    """Remove the record: a full build that was not a no-op must never leave one behind."""
    with contextlib.suppress(OSError):
        os.unlink(record_path(manifest_path(directory, manifest_file)))


# ------------------------------------------------------------------------------------------------
# Recording


class _Tee:
    """A text stream that keeps a copy of what is written through it; everything else (isatty,
    fileno, encoding) is the wrapped stream's, so rich lays the report out as it would."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.parts: list[str] = []

    def write(self, text: str) -> int:
        self.parts.append(text)
        return self.stream.write(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)


class Recorder:
    """Collects what a full build reads and prints, and writes the record when it was a no-op.

    ``watch(cache)`` wraps the cache's path helpers on that one instance: every stat record,
    action and object the build looks up (and the files the stat records describe) is then
    known without the stages knowing about the fast path.
    """

    def __init__(
        self, directory: Path | None, manifest_file: Path | None, command_line: CommandLine
    ) -> None:
        self.directory = directory
        self.manifest_file = manifest_file
        self.invocation = invocation(command_line)
        # Files modified after this are racy against the record, whatever the build read.
        self.started_ns = time.time_ns()
        self.files: dict[str, None] = {}
        self.cache_files: dict[str, bool] = {}  # path -> the full path marks it as used
        self.trees: list[Path] = [package_dir()]
        self.noop = False  # set by the build once it knows
        self._out = _Tee(sys.stdout)
        self._err = _Tee(sys.stderr)

    @contextlib.contextmanager
    def capturing(self) -> Iterator[None]:
        """Copy stdout and stderr while the build and its report run."""
        saved = sys.stdout, sys.stderr
        sys.stdout, sys.stderr = self._out, self._err
        try:
            yield
        finally:
            sys.stdout, sys.stderr = saved

    def watch(self, cache: Any) -> None:
        """Record the paths of every cache entry ``cache`` looks up from now on."""
        stat_path: Callable[[Path], Path] = cache._stat_path
        action_path: Callable[[str], Path] = cache._action_path
        object_path: Callable[[str], Path] = cache.object_path

        def on_stat(path: Path) -> Path:
            found = stat_path(path)
            self._add(path, cache.root)
            self.cache_files.setdefault(str(found), False)  # stat records are never touched
            return found

        def on_action(key: str) -> Path:
            found = action_path(key)
            self.cache_files[str(found)] = True
            return found

        def on_object(sha256: str) -> Path:
            found = object_path(sha256)
            self.cache_files[str(found)] = True
            return found

        cache._stat_path, cache._action_path, cache.object_path = on_stat, on_action, on_object

    def _add(self, path: Path, cache_root: Path) -> None:
        """An input or output the build stat-checked: a project file, or one in the cache."""
        resolved = path.resolve()
        try:
            resolved.relative_to(cache_root.resolve())
        except ValueError:
            self.files[str(resolved)] = None
        else:
            self.cache_files.setdefault(str(resolved), False)

    def watch_tree(self, root: Path) -> None:
        """A folder whose every file the build may read (template directories)."""
        self.trees.append(root.resolve())

    def finish(self) -> None:
        """Write the record after a full no-op build; otherwise make sure none is left."""
        if not self.noop:
            forget(self.directory, self.manifest_file)
            return
        manifest = manifest_path(self.directory, self.manifest_file)
        record = {
            "format": RECORD_FORMAT,
            "manifest": str(manifest),
            "written_ns": self.started_ns,
            "invocation": self.invocation,
            "manifest_sha256": content_digest(manifest),
            "lock_sha256": content_digest(manifest.parent / LOCK_NAME),
            "files": [[p, stat_of(p)] for p in sorted(self.files)],
            "cache": [
                [p, stat_of(p, with_ctime=False), touched]
                for p, touched in sorted(self.cache_files.items())
            ],
            "trees": [[str(t), tree_stats(t)] for t in dict.fromkeys(self.trees)],
            "stdout": "".join(self._out.parts),
            "stderr": "".join(self._err.parts),
        }
        from gasbuild.blobs import atomic_write

        target = record_path(manifest)
        try:
            target.parent.mkdir(exist_ok=True)
            data = json.dumps(record, separators=(",", ":"), ensure_ascii=False).encode()
            atomic_write(target, data, durable=False)
        except (OSError, ValueError):  # read-only project, argv not UTF-8: no shortcut
            forget(self.directory, self.manifest_file)
