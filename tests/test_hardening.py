"""Issue 15: bad input, as an attacker or a careless user gives it, gets one clear line.

Every case runs the real command in-process (``gasbuild.cli._run``, as the script does) on a
copy of the quickstart example, and asserts the exit code, that the message is one line naming
gas.toml and the line to fix, and that nothing escaped as a traceback.
"""

from __future__ import annotations

import os
import re
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from gasbuild.cli import _run, cli

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
QUICKSTART = EXAMPLES / "quickstart"
WEIGHTS_LINE = re.compile(r"^weights = .*$", re.MULTILINE)


@dataclass
class Run:
    code: int
    out: str
    err: str


def run(capsys: pytest.CaptureFixture[str], *args: str) -> Run:
    """The CLI in-process: anything but a GasbuildError escapes _run and fails the test."""
    code = _run(cli, list(args), "gasbuild")
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return Run(code, captured.out, captured.err)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    shutil.copytree(QUICKSTART, root, ignore=shutil.ignore_patterns("dist", "gas.lock"))
    return root


def with_image_weights(root: Path, table: str) -> None:
    """Replace the image model's weights line (the first one) with ``weights = <table>``."""
    text = (root / "gas.toml").read_text()
    (root / "gas.toml").write_text(WEIGHTS_LINE.sub(lambda _: f"weights = {table}", text, 1))


def weights_line(root: Path) -> int:
    text = (root / "gas.toml").read_text()
    return text[: WEIGHTS_LINE.search(text).start()].count("\n") + 1  # type: ignore[union-attr]


def build(capsys: pytest.CaptureFixture[str], root: Path, *extra: str) -> Run:
    return run(capsys, "build", "-C", str(root), "--no-smoke", "--offline", *extra)


def one_line_at(result: Run, line: int | None) -> None:
    """Exit 2, one error line, naming gas.toml (and the line, when given)."""
    assert result.code == 2, result.err
    errors = [x for x in result.err.splitlines() if x.startswith("error:")]
    assert len(errors) == 1, result.err
    where = "gas.toml" if line is None else f"gas.toml:{line}:"
    assert where in errors[0], errors[0]
    assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f]", result.err)


# --------------------------------------------------------------------------- crashes that were


def test_weights_path_through_a_symlink_loop(
    capsys: pytest.CaptureFixture[str], project: Path
) -> None:
    (project / "loop").symlink_to("loop")
    with_image_weights(project, '{ path = "loop" }')
    result = build(capsys, project)
    one_line_at(result, weights_line(project))
    assert "symbolic link loop" in result.err


@pytest.mark.parametrize(
    "table",
    [
        '{ path = "weights/image\\u0000.safetensors" }',
        '{ path = "weights/image.safetensors", url = "https://h/x\\u0000" }',
        '{ url = "https://h/\\u0000x" }',
    ],
)
def test_nul_in_a_path(capsys: pytest.CaptureFixture[str], project: Path, table: str) -> None:
    with_image_weights(project, table)
    result = build(capsys, project)
    one_line_at(result, weights_line(project))
    assert "\\x00" not in result.err or "NUL" in result.err


@pytest.mark.parametrize("key", ["out", "templates"])
def test_nul_in_build_paths(capsys: pytest.CaptureFixture[str], project: Path, key: str) -> None:
    text = (project / "gas.toml").read_text().replace('out = "dist"', f'{key} = "a\\u0000b"')
    (project / "gas.toml").write_text(text)
    result = build(capsys, project)
    one_line_at(result, 15)
    assert f"build.{key} holds a NUL" in result.err


def test_out_naming_an_existing_file(capsys: pytest.CaptureFixture[str], project: Path) -> None:
    (project / "taken").write_text("not a folder")
    text = (project / "gas.toml").read_text().replace('out = "dist"', 'out = "taken"')
    (project / "gas.toml").write_text(text)
    result = build(capsys, project)
    one_line_at(result, 15)
    assert "build.out names an existing file" in result.err


@pytest.mark.parametrize("out", ["/proc/self", "/dev/null/x"])
def test_out_that_cannot_be_written(
    capsys: pytest.CaptureFixture[str], project: Path, out: str
) -> None:
    if not Path("/proc/self").is_dir():  # pragma: no cover - Linux only
        pytest.skip("no /proc")
    text = (project / "gas.toml").read_text().replace('out = "dist"', f'out = "{out}"')
    (project / "gas.toml").write_text(text)
    result = build(capsys, project, "--only", "image")
    assert result.code == 2, result.err
    assert result.err.count("error:") == 1 and "[build] out (or --out)" in result.err


def test_out_option_naming_a_file(
    capsys: pytest.CaptureFixture[str], project: Path, tmp_path: Path
) -> None:
    (tmp_path / "file").write_text("x")
    result = build(capsys, project, "--only", "image", "--out", str(tmp_path / "file" / "sub"))
    assert result.code == 2 and "cannot write" in result.err


def test_toml_nested_2000_deep(capsys: pytest.CaptureFixture[str], project: Path) -> None:
    deep = "[" * 2000 + "]" * 2000
    with (project / "gas.toml").open("a") as f:
        f.write(f"\n[extra]\nx = {deep}\n")
    result = build(capsys, project)
    assert result.code == 2
    assert "nested more than 64 deep" in result.err and "gas.toml:" in result.err


def test_table_nested_300_deep_in_model(capsys: pytest.CaptureFixture[str], project: Path) -> None:
    deep = "{ a = " * 300 + "1" + " }" * 300
    text = (
        (project / "gas.toml").read_text().replace("model = { width = 16 }", f"model = {deep}", 1)
    )
    (project / "gas.toml").write_text(text)
    result = build(capsys, project)
    assert result.code == 2 and "nested more than" in result.err


def test_model_nested_40_deep_is_refused_with_its_key(
    capsys: pytest.CaptureFixture[str], project: Path
) -> None:
    """Past the parsed-document limit but under the text limit: the key path is named."""
    deep = "{ a = " * 40 + "1" + " }" * 40
    text = (
        (project / "gas.toml").read_text().replace("model = { width = 16 }", f"model = {deep}", 1)
    )
    (project / "gas.toml").write_text(text)
    result = build(capsys, project)
    assert result.code == 2 and "models.image.model.a" in result.err
    assert "nested more than 32 levels" in result.err


# --------------------------------------------------------------------------- odd manifests


def test_byte_order_mark_is_accepted(capsys: pytest.CaptureFixture[str], project: Path) -> None:
    manifest = project / "gas.toml"
    manifest.write_bytes(b"\xef\xbb\xbf" + manifest.read_bytes())
    assert build(capsys, project, "--only", "image").code == 0


def test_manifest_that_is_a_fifo(capsys: pytest.CaptureFixture[str], project: Path) -> None:
    (project / "gas.toml").unlink()
    os.mkfifo(project / "fifo.toml")
    result = build(capsys, project, "-f", "fifo.toml")
    assert result.code == 2 and result.err.count("error:") == 1


def test_manifest_that_is_a_fifo_given_to_check(
    capsys: pytest.CaptureFixture[str], project: Path
) -> None:
    os.mkfifo(project / "fifo.toml")
    result = run(capsys, "check", str(project / "fifo.toml"))
    assert result.code == 1 and "not a regular file (a FIFO)" in result.err


def test_huge_manifest(capsys: pytest.CaptureFixture[str], project: Path) -> None:
    with (project / "gas.toml").open("a") as f:
        f.write("# " + "x" * (2 << 20) + "\n")
    result = build(capsys, project)
    assert result.code == 2 and "over the 1048576-byte limit" in result.err


def test_manifest_not_utf8(capsys: pytest.CaptureFixture[str], project: Path) -> None:
    with (project / "gas.toml").open("ab") as f:
        f.write(b"\n# caf\xe9\n")
    one_line_at(build(capsys, project), None)


@pytest.mark.parametrize(
    ("table", "says"),
    [
        ('{ path = "weights/\\u001b[31mred.safetensors" }', "control characters"),
        ('{ path = "weights" }', "is not a file"),
        ('{ path = "s3://bucket/w.safetensors" }', "is a URL, not a local path"),
        ('{ url = "foo://x/y.safetensors" }', "not a URL gasbuild can read"),
        ('{ url = "weights/image.safetensors" }', "needs a scheme"),
        ('{ url = "http://h:port/x" }', "not a valid URL"),
    ],
)
def test_odd_sources(
    capsys: pytest.CaptureFixture[str], project: Path, table: str, says: str
) -> None:
    with_image_weights(project, table)
    result = run(capsys, "build", "-C", str(project), "--no-smoke", "--only", "image")
    one_line_at(result, weights_line(project))
    assert says in result.err


def test_unreadable_weights(capsys: pytest.CaptureFixture[str], project: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root reads every file")
    (project / "weights" / "image.safetensors").chmod(0)
    result = build(capsys, project, "--only", "image")
    one_line_at(result, weights_line(project))


# --------------------------------------------------------------------------- check's paths


def test_check_refuses_a_fifo_before_opening_it(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    os.mkfifo(tmp_path / "x.zip")
    result = run(capsys, "check", "--no-smoke", str(tmp_path / "x.zip"))
    assert result.code == 1
    assert "x.zip: GAS101 error not a regular file (a FIFO)" in result.err


def test_check_directory_with_a_fifo(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    submission = tmp_path / "sub"
    submission.mkdir()
    os.mkfifo(submission / "model.py")
    result = run(capsys, "check", "--no-smoke", str(submission))
    assert result.code == 1 and "GAS104 error 'model.py' is a special file (a FIFO)" in result.err


def test_control_characters_in_a_zip_name_are_escaped(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    import zipfile

    path = tmp_path / "s.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("model\x1b[2J.py", b"x")
    result = run(capsys, "check", "--no-smoke", str(path))
    assert result.code == 1 and "\x1b" not in result.err and "\\x1b" in result.err


# --------------------------------------------------------------------------- credentials


@dataclass
class Recorder:
    """Every request a loopback server received, headers included."""

    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    base: str = ""


@contextmanager
def recording_server() -> Iterator[Recorder]:
    state = Recorder()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def _record(self) -> None:
            state.requests.append((self.path, dict(self.headers)))
            self.send_error(404)

        do_GET = do_HEAD = _record

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.base = f"127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


SECRET = "s3cr3tPLANTED"


def written_text(*roots: Path) -> str:
    """Everything gasbuild wrote under ``roots`` (lock, cache, dist, receipts), as text: every
    file but the gas.toml the test planted the secret in."""
    chunks = []
    for root in roots:
        for path in sorted(root.rglob("*")):
            if path.is_file() and not path.is_symlink() and path.name != "gas.toml":
                chunks.append(path.read_bytes().decode("latin-1"))
    return "\n".join(chunks)


@pytest.mark.parametrize(
    "url",
    [
        "simplecache::http://user:{s}@{host}/x.safetensors",
        "http://user:{s}@{host}/x.safetensors",
        "http://{host}/x.safetensors?apikey={s}",
        "http://{host}/x.safetensors?X-Amz-Signature={s}",
        "http://{host}/x.safetensors#token={s}",
        "http://{host}/x.safetensors?v=hf_{s}abcdefghijklmnop",
        "blockcache::simplecache::http://{s}@{host}/x.safetensors",
        "zip://x.safetensors::http://user:{s}@{host}/w.zip",
    ],
)
def test_credentials_in_weights_urls_are_refused_and_never_leak(
    capsys: pytest.CaptureFixture[str],
    project: Path,
    _isolated_cache: Path,
    url: str,
) -> None:
    with recording_server() as server:
        with_image_weights(project, f'{{ url = "{url.format(s=SECRET, host=server.base)}" }}')
        result = run(capsys, "build", "-C", str(project), "--no-smoke")
    one_line_at(result, weights_line(project))
    assert server.requests == []  # no request: no Authorization header sent anywhere
    assert SECRET not in result.out + result.err
    assert SECRET not in written_text(project, _isolated_cache)


@pytest.mark.parametrize(
    ("table", "line"),
    [
        ('[cache]\nremote = "s3://AKIAKEY:{s}@bucket/c"\n', "cache.remote embeds credentials"),
        ('[cache]\ndir = "s3://AKIAKEY:{s}@bucket/c"\n', "cache.dir is a URL"),
        ('[publish]\nmirror = "s3://bucket/m?token={s}"\n', "publish.mirror carries"),
        ('[eval]\ndata = "s3://bucket/d?token={s}"\n', "eval.data carries"),
    ],
)
def test_credentials_in_settings_are_refused(
    capsys: pytest.CaptureFixture[str],
    project: Path,
    _isolated_cache: Path,
    table: str,
    line: str,
) -> None:
    with (project / "gas.toml").open("a") as f:
        f.write("\n" + table.format(s=SECRET))
    result = build(capsys, project)
    assert result.code == 2 and line in result.err, result.err
    assert SECRET not in result.out + result.err + written_text(project, _isolated_cache)


def test_network_upload_url_with_credentials_is_refused(
    capsys: pytest.CaptureFixture[str], project: Path
) -> None:
    text = (project / "gas.toml").read_text()
    text = text.replace("[network]\n", f'[network]\nupload_url = "https://u:{SECRET}@h/up"\n')
    (project / "gas.toml").write_text(text)
    result = build(capsys, project)
    assert result.code == 2 and "network.upload_url embeds credentials" in result.err
    assert SECRET not in result.err


def test_cache_dir_env_naming_a_url(
    capsys: pytest.CaptureFixture[str], project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GASBUILD_CACHE_DIR", f"s3://KEY:{SECRET}@bucket/c")
    result = build(capsys, project)
    assert result.code == 2 and "$GASBUILD_CACHE_DIR must be a local directory" in result.err
    assert SECRET not in result.err
    assert not any(SECRET in p.name for p in project.parent.rglob("*"))


def test_a_lock_never_records_a_secret_url(tmp_path: Path) -> None:
    from gasbuild import lock

    path = tmp_path / "gas.lock"
    lock.write(path, {"image": {"inputs": {"weights": {"url": f"https://h/x?token={SECRET}"}}}})
    text = path.read_text()
    assert SECRET not in text and "token=***" in text


# --------------------------------------------------------------------------- redaction


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://u:p@h/x?a=1&token=t#frag", "https://***@h/x?a=***&token=***#***"),
        ("simplecache::s3://K:S@b/k", "simplecache::s3://***@b/k"),
        ("hf://org/repo/file.safetensors", "hf://org/repo/file.safetensors"),
        ("http://h:port/x", "http://***"),
    ],
)
def test_redact_url(url: str, shown: str) -> None:
    from gasbuild.urls import redact_url

    assert redact_url(url) == shown


@pytest.mark.parametrize(
    "url",
    [
        "https://huggingface.co/org/repo/resolve/main/model.safetensors?download=true",
        "hf://org/repo/model.safetensors@0123abc",
        "s3://bucket/prefix/model.safetensors",
        "simplecache::https://example.org/model.safetensors",
    ],
)
def test_plain_urls_pass(url: str) -> None:
    from gasbuild.urls import url_secret_problem

    assert url_secret_problem(url) is None


def test_unknown_user_and_overlong_names_in_paths_are_one_line(tmp_path: Path) -> None:
    """Found by the mutation property: ``~nosuchuser`` made pathlib raise RuntimeError, and a
    256-byte folder name made ``exists()`` raise ENAMETOOLONG, both as tracebacks."""
    import shutil

    from conftest import EXAMPLES, run_cli

    root = tmp_path / "quickstart"
    shutil.copytree(EXAMPLES / "quickstart", root)
    text = (root / "gas.toml").read_text()
    (root / "gas.toml").write_text(text.replace('out = "dist"', 'out = "' + "x" * 300 + '"'))
    result = run_cli("build", "--no-smoke", cwd=root)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert "build.out" in result.stderr and "longer than 255 bytes" in result.stderr
    (root / "gas.toml").write_text(
        text.replace('out = "dist"', 'out = "~no_such_user_for_gasbuild/dist"')
    )
    result = run_cli("build", "--no-smoke", cwd=root)
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode in (0, 1, 2)
