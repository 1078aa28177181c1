"""The no-op fast path (``gasbuild.cli.fastpath``): it answers only what the full build would.

Builds run in-process through the script's own entry (``gasbuild.cli.main``: the replay is
offered the argv before click is imported) so that one example can build, edit and rebuild in
well under a second; the import test runs a real interpreter.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import EXAMPLES, REPO
from gasbuild import cache, cli
from gasbuild.cli import fastpath as _fastpath

QUICKSTART = EXAMPLES / "quickstart"
IMAGE_SHA256 = "ff6d3eac0a3044cecbbdf1c99204acb416e36fb93c58e60efca42b7b9b1f488c"
MANIFEST = f"""\
[build]
templates = "tpl"

[models.image]
name = "fp-image"
architecture = {{ file = "models/image_model.py" }}
weights = {{ path = "weights/image.safetensors", sha256 = "{IMAGE_SHA256}" }}
preprocessing = {{ resize = [64, 64] }}
model = {{ width = 16 }}

[models.audio]
name = "fp-audio"
architecture = {{ template = "audio-cnn", args = {{ channels = [8, 16, 32] }} }}
weights = {{ path = "weights/audio.safetensors" }}
"""
HEAVY = ("torch", "onnx", "onnxruntime", "bittensor", "pydantic", "jinja2")
# Nor click (the replay runs before the command line is parsed) nor the command modules.
NOT_ON_THE_REPLAY = (
    "click",
    *HEAVY,
    "rich",
    "gasbuild.manifest",
    "gasbuild.plan",
    "gasbuild.cli.app",
    "gasbuild.cli.build",
)
PAST = 1_700_000_000_000_000_000  # ns: long before any record


def make_project(root: Path) -> Path:
    """Two models: one from a model.py (its weights pinned), one from a project template."""
    proj = root / "proj"
    (proj / "models").mkdir(parents=True)
    (proj / "weights").mkdir()
    shutil.copytree(REPO / "templates" / "models" / "audio-cnn", proj / "tpl" / "audio-cnn")
    shutil.copy(QUICKSTART / "models" / "image_model.py", proj / "models")
    for name in ("image", "audio"):
        shutil.copy(QUICKSTART / "weights" / f"{name}.safetensors", proj / "weights")
    (proj / "gas.toml").write_text(MANIFEST)
    for path in proj.rglob("*"):  # checked out long ago: the stat cache may trust them
        os.utime(path, ns=(PAST, PAST))
    return proj


def argv_of(proj: Path, *flags: str, before: Sequence[str] = ()) -> list[str]:
    """``[BEFORE] build -C proj --no-smoke FLAGS``: global options go before ``build``."""
    return [*before, "build", "-C", str(proj), "--no-smoke", *flags]


def run_main(argv: Sequence[str], *, fast: bool = True) -> tuple[int, str, str]:
    """The ``gasbuild`` script in-process (``cli.main``): exit code, stdout, stderr."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.ExitStack() as stack:
        if not fast:
            stack.enter_context(mock.patch.object(_fastpath, "lookup", return_value=None))
        stack.enter_context(contextlib.redirect_stdout(out))
        stack.enter_context(contextlib.redirect_stderr(err))
        with pytest.raises(SystemExit) as done:
            cli.main(list(argv))
    code = done.value.code
    assert isinstance(code, int)
    return code, out.getvalue(), err.getvalue()


def build(
    proj: Path, *flags: str, before: Sequence[str] = (), fast: bool = True
) -> tuple[int, str, str]:
    """``gasbuild [BEFORE] build -C proj --no-smoke FLAGS`` in-process."""
    return run_main(argv_of(proj, *flags, before=before), fast=fast)


def answered_main(argv: Sequence[str]) -> tuple[tuple[int, str, str], bool]:
    """A run of ``gasbuild ARGV``, and whether the fast path answered it."""
    answers: list[object] = []
    real = _fastpath.lookup

    def spy(*args: object) -> object:
        answers.append(real(*args))  # type: ignore[arg-type]
        return answers[-1]

    with mock.patch.object(_fastpath, "lookup", spy):
        result = run_main(argv)
    return result, answers not in ([], [None])


def build_answered(
    proj: Path, *flags: str, before: Sequence[str] = ()
) -> tuple[tuple[int, str, str], bool]:
    """A build, and whether the fast path answered it."""
    return answered_main(argv_of(proj, *flags, before=before))


@pytest.fixture(autouse=True)
def _no_racy_window() -> Iterator[None]:
    """Builds here follow each other within milliseconds; the racy rule has its own test."""
    with mock.patch.object(_fastpath, "RACY_NS", 0):
        yield


def record_of(proj: Path) -> Path:
    return proj / ".gasbuild" / "noop-build.json"


def settle(proj: Path, *flags: str, before: Sequence[str] = ()) -> None:
    """Full builds until one is a no-op and records it (bounded: a rebuild, then a no-op)."""
    for _ in range(3):
        code, _, err = build(proj, *flags, before=before, fast=False)
        assert code == 0, err
        if record_of(proj).exists():
            return
    raise AssertionError("no full build recorded a no-op")


@pytest.mark.parametrize("flags", [(), ("--json",), ("--json", "--deep", "--only", "image")])
def test_the_replay_is_byte_identical_to_the_full_no_op(
    tmp_path: Path, flags: Sequence[str]
) -> None:
    proj = make_project(tmp_path)
    assert build(proj, *flags)[0] == 0
    assert not record_of(proj).exists(), "a build that rebuilt records nothing"
    full = build(proj, *flags)
    assert record_of(proj).exists()
    replayed, answered = build_answered(proj, *flags)
    assert answered
    assert replayed == full
    assert "up to date" in full[1] or '"rebuilt": false' in full[1]


def test_a_rebuild_removes_the_record_and_the_replay_declines_until_a_new_no_op(
    tmp_path: Path,
) -> None:
    proj = make_project(tmp_path)
    settle(proj)
    model_py = proj / "models" / "image_model.py"
    model_py.write_text(model_py.read_text() + "\n# tuned\n")
    os.utime(model_py, ns=(PAST + 1, PAST + 1))
    (code, out, _), answered = build_answered(proj)
    assert code == 0 and not answered and "rebuilt" in out
    assert not record_of(proj).exists()
    assert not build_answered(proj)[1]  # this full no-op records
    assert build_answered(proj)[1]


def test_the_no_op_imports_nothing_heavy(tmp_path: Path) -> None:
    proj = make_project(tmp_path)
    env = {**os.environ, "GASBUILD_CACHE_DIR": str(tmp_path / "cache")}
    code = (
        "import atexit, sys\n"
        "from gasbuild.cli import fastpath as _fastpath\n"
        "_fastpath.RACY_NS = 0  # the zips were written a moment ago\n"
        f"heavy = {NOT_ON_THE_REPLAY!r}\n"
        "atexit.register(lambda: print('LOADED=' + ','.join(\n"
        "    m for m in heavy if m in sys.modules), file=sys.stderr))\n"
        "from gasbuild.cli import main\n"
        f"main(['build', '-C', {str(proj)!r}, '--no-smoke'])\n"
    )
    runs = [
        subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300
        )
        for _ in range(3)  # a build, a full no-op that records, the replay
    ]
    # The full path, for contrast: it parses the flags with click and loads the manifest.
    assert {"click", "pydantic", "gasbuild.cli.build"} <= loaded(runs[1].stderr)
    done = runs[2]
    assert done.returncode == 0, done.stderr
    assert loaded(done.stderr) == set()
    assert "up to date" in done.stdout


def loaded(stderr: str) -> set[str]:
    """The modules a run's ``LOADED=`` line names."""
    line = next(x for x in stderr.splitlines() if x.startswith("LOADED="))
    return set(filter(None, line.removeprefix("LOADED=").split(",")))


def test_a_racy_record_never_answers(tmp_path: Path) -> None:
    proj = make_project(tmp_path)
    settle(proj)
    record = json.loads(record_of(proj).read_text())
    with mock.patch.object(_fastpath, "RACY_NS", cache.RACY_SECONDS * 1e9):
        # The zips were written moments before the record: a same-size rewrite in the same
        # clock tick would keep their stat, so their stat proves nothing yet.
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            command_line = ("gasbuild", record["invocation"]["argv"][1:])
            reason = _fastpath.why_not(record, proj, None, command_line)
        assert reason is not None and reason.startswith("racy: ")
        assert not build_answered(proj)[1]
    assert _fastpath.RACY_NS == 0


def test_an_unreadable_record_is_a_decline(tmp_path: Path) -> None:
    proj = make_project(tmp_path)
    settle(proj)
    for garbage in (b"", b"{", b"[]", b'{"format": 1}', b"\xff"):
        record_of(proj).write_bytes(garbage)
        (code, out, err), answered = build_answered(proj)
        assert code == 0 and not answered, err
        assert "up to date" in out
        assert json.loads(record_of(proj).read_text())["format"] == _fastpath.RECORD_FORMAT


def test_no_cache_neither_replays_nor_records(tmp_path: Path) -> None:
    proj = make_project(tmp_path)
    settle(proj)
    (code, out, _), answered = build_answered(proj, "--no-cache")
    assert code == 0 and not answered and "miss" in out
    assert not record_of(proj).exists()


def test_a_change_in_a_watched_tree_declines(tmp_path: Path) -> None:
    """gasbuild's own code is watched as a tree: any edit, addition or removal counts."""
    tree = tmp_path / "code"
    (tree / "sub").mkdir(parents=True)
    (tree / "a.py").write_text("x = 1\n")
    (tree / "sub" / "b.py").write_text("y = 2\n")
    (tree / "__pycache__").mkdir()
    before = _fastpath.tree_stats(tree)
    (tree / "__pycache__" / "a.cpython.pyc").write_bytes(b"ignored")
    assert _fastpath.tree_stats(tree) == before
    (tree / "sub" / "b.py").write_text("y = 3\n")
    assert _fastpath.tree_stats(tree) != before
    assert _fastpath.tree_stats(tmp_path / "missing") is None


# ------------------------------------------------------------------------------------------------
# The property: whenever the full path would rebuild or say anything else, the fast path declines.

EDITS = st.sampled_from(
    [
        "manifest comment",
        "manifest value",
        "model.py",
        "model.py, mtime kept",
        "model.py touched",
        "weights",
        "weights, mtime kept",
        "pinned weights, mtime kept",
        "template",
        "template, mtime kept",
        "new template folder",
        "gas.lock",
        "zip removed",
        "cache entries removed",
        "version",
    ]
)
# Edits that touch only the audio model (its weights and its project template).
AUDIO_ONLY_EDITS = frozenset({"weights", "weights, mtime kept", "template", "template, mtime kept"})
# (options before `build`, flags after it): the same build spelled differently (`-q build` and
# `build -q`, `--only image` and `--only=image`) is another command line, never replayed for it.
Invocation = tuple[tuple[str, ...], tuple[str, ...]]
INVOCATIONS = st.sampled_from(
    [
        ((), ()),
        ((), ("--json",)),
        ((), ("--deep",)),
        ((), ("--offline",)),
        ((), ("--only", "image")),
        ((), ("--only=image",)),
        (("-q",), ()),
        (("--quiet",), ()),
        ((), ("-q",)),
        (("-v",), ()),
        (("-v",), ("--json",)),
    ]
)
IMAGE_ONLY = (((), ("--only", "image")), ((), ("--only=image",)))


def _rewrite(path: Path, data: bytes, *, keep_mtime: bool, tick: int) -> None:
    """Write ``data`` in place; keep the old mtime (a clock that did not move) or set an old
    distinct one (so that the stat cache's own racy rule does not blur the full path's report)."""
    old = path.stat().st_mtime_ns
    with path.open("r+b") as f:
        f.write(data)
        f.truncate()
    stamp = old if keep_mtime else PAST + tick
    os.utime(path, ns=(stamp, stamp))


def _flip_last_byte(path: Path, *, keep_mtime: bool, tick: int) -> None:
    data = bytearray(path.read_bytes())
    data[-1] ^= 0x01
    _rewrite(path, bytes(data), keep_mtime=keep_mtime, tick=tick)


def apply(edit: str, proj: Path, cache_dir: Path, tick: int, stack: contextlib.ExitStack) -> None:
    keep = edit.endswith("mtime kept")
    model_py = proj / "models" / "image_model.py"
    template = proj / "tpl" / "audio-cnn" / "model.py.j2"
    if edit == "manifest comment":
        _rewrite(proj / "gas.toml", MANIFEST.encode() + b"# note\n", keep_mtime=False, tick=tick)
    elif edit == "manifest value":
        text = MANIFEST.replace('"fp-image"', '"fp-image2"')
        _rewrite(proj / "gas.toml", text.encode(), keep_mtime=False, tick=tick)
    elif edit.startswith("model.py touched"):
        os.utime(model_py, ns=(PAST + tick, PAST + tick))
    elif edit.startswith("model.py"):
        _rewrite(model_py, model_py.read_bytes() + b"# edit\n", keep_mtime=keep, tick=tick)
    elif edit.startswith("weights"):
        _flip_last_byte(proj / "weights" / "audio.safetensors", keep_mtime=keep, tick=tick)
    elif edit.startswith("pinned weights"):
        _flip_last_byte(proj / "weights" / "image.safetensors", keep_mtime=keep, tick=tick)
    elif edit.startswith("template"):
        _rewrite(template, template.read_bytes() + b"\n", keep_mtime=keep, tick=tick)
    elif edit == "new template folder":
        (proj / "tpl" / "notes").mkdir(exist_ok=True)
        (proj / "tpl" / "notes" / "README").write_text("not a template\n")
    elif edit == "gas.lock":
        lock = proj / "gas.lock"
        _rewrite(lock, lock.read_bytes() + b"# hand edit\n", keep_mtime=False, tick=tick)
    elif edit == "zip removed":
        (proj / "dist" / "audio_detector.zip").unlink(missing_ok=True)
    elif edit == "cache entries removed":
        shutil.rmtree(cache_dir / "actions", ignore_errors=True)
    elif edit == "version":
        for module in (_fastpath, cache):
            stack.enter_context(mock.patch.object(module, "__version__", f"99.{tick}"))


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    recorded=INVOCATIONS,
    asked=INVOCATIONS,
    edits=st.lists(EDITS, max_size=3),
)
def test_the_fast_path_never_answers_what_the_full_path_would_not(
    recorded: Invocation, asked: Invocation, edits: list[str]
) -> None:
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        root = Path(tmp)
        cache_dir = root / "cache"
        stack.enter_context(mock.patch.dict(os.environ, {"GASBUILD_CACHE_DIR": str(cache_dir)}))
        proj = make_project(root)
        settle(proj, *recorded[1], before=recorded[0])
        for tick, edit in enumerate(edits, start=1):
            apply(edit, proj, cache_dir, tick, stack)
        answer, answered = build_answered(proj, *asked[1], before=asked[0])
        if answered:
            # Nothing the full path reads has changed: it must say exactly the same.
            assert answer[0] == 0
            assert build(proj, *asked[1], before=asked[0], fast=False) == answer
        if not edits and asked == recorded:
            assert answered, "the fast path must answer an unchanged project"
        # An image-only build reads nothing of the audio model: edits to it need not decline
        # (the replay then still equals the full path's answer, asserted above).
        image_only = asked == recorded and asked in IMAGE_ONLY
        relevant = [e for e in edits if not (image_only and e in AUDIO_ONLY_EDITS)]
        if relevant or asked != recorded:
            assert not answered  # every edit here changes something the record watches


def test_a_build_without_no_smoke_is_not_the_recorded_one(tmp_path: Path) -> None:
    """``--no-smoke`` dropped: the full path would run the smoke test (and print its verdict),
    so the replay declines without printing anything."""
    proj = make_project(tmp_path)
    settle(proj)
    smoked = ["build", "-C", str(proj)]
    assert _fastpath.lookup(proj, None, ("gasbuild", smoked)) is None
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        assert not _fastpath.replay_argv("gasbuild", smoked)
        assert _fastpath.replay_argv("gasbuild", argv_of(proj))  # the recorded one still holds
    assert "up to date" in out.getvalue()
    assert not _fastpath.replay_argv("gascli", argv_of(proj))  # another program name


def test_shell_completion_is_never_replayed(tmp_path: Path) -> None:
    proj = make_project(tmp_path)
    settle(proj)
    with mock.patch.dict(os.environ, {"_GASBUILD_COMPLETE": "bash_complete"}):
        assert not _fastpath.replay_argv("gasbuild", argv_of(proj))


# Pieces of a build command line, by kind: the -C and -f spellings click accepts, other flags.
DIRS = st.sampled_from(["proj", "a/b", "./x", "/abs/dir", "d-1"])
PIECES = st.one_of(
    DIRS.map(lambda d: ("C", ["-C", d])),
    DIRS.map(lambda d: ("C", ["-C" + d])),
    DIRS.map(lambda d: ("C", ["--directory", d])),
    DIRS.map(lambda d: ("C", ["--directory=" + d])),
    DIRS.map(lambda d: ("f", ["-f", d + ".toml"])),
    DIRS.map(lambda d: ("f", ["--file=" + d + ".toml"])),
    st.sampled_from(
        [["--json"], ["--deep"], ["-q"], ["-v"], ["--only", "image"], ["--no-smoke"]]
    ).map(lambda tokens: ("flag", tokens)),
)


@settings(max_examples=200, deadline=None)
@given(
    before=st.lists(st.sampled_from(["-q", "-v", "-vv", "--quiet", "--verbose"]), max_size=2),
    pieces=st.lists(PIECES, max_size=5),
)
def test_locate_reads_c_and_f_as_click_does(
    before: list[str], pieces: list[tuple[str, list[str]]]
) -> None:
    """Where the replay looks for a record is where the build that wrote it did."""
    from gasbuild.cli.build import build as build_command

    tokens = [token for _, piece in pieces for token in piece]
    located = _fastpath.locate([*before, "build", *tokens])
    ctx = build_command.make_context("build", list(tokens), resilient_parsing=True)
    kinds = [kind for kind, _ in pieces]
    if kinds.count("C") > 1 or kinds.count("f") > 1:
        assert located is None  # click takes the last; the replay does not guess
    else:
        assert located == (ctx.params["directory"], ctx.params["manifest_file"])
    assert _fastpath.locate([*before, "check", *tokens]) is None
    assert _fastpath.locate(["--version", "build", *tokens]) is None


def test_the_record_keeps_no_credential(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The record is a plain file beside gas.toml: a token or secret key in the environment is
    kept as "set", never as its value, and the replay still answers with it set."""
    secrets = {
        "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY",
        "AWS_SESSION_TOKEN": "FwoGZXIvYXdzEXAMPLESESSIONTOKEN",
        "HF_TOKEN": "hf_exampleTOKENvalue0123456789",
        "GASBUILD_WALLET_PASSWORD": "correct-horse-battery-staple",
    }
    for name, value in secrets.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("GASBUILD_CACHE_DIR", str(tmp_path / "cache"))
    proj = make_project(tmp_path)
    settle(proj)
    assert build_answered(proj)[1]
    text = record_of(proj).read_text()
    env = json.loads(text)["invocation"]["env"]
    assert {env[name] for name in secrets} == {"<set>"}
    for path in [*proj.rglob("*"), *(tmp_path / "cache").rglob("*")]:
        if path.is_file():
            data = path.read_bytes()
            assert not any(v.encode() in data for v in secrets.values()), path
