"""Issue 15, as a property: any mutation of the examples' gas.toml ends with exit 0, 1 or 2,
never a traceback, and a manifest error names gas.toml and the line to fix."""

from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gasbuild import manifest
from gasbuild.cli import _run, cli
from gasbuild.errors import GasbuildError, ManifestError

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
# torch-free examples (the templates example converts checkpoints with torch)
NAMES = ("quickstart", "onnx-legacy", "hf-image")
TEXTS = {name: (EXAMPLES / name / "gas.toml").read_text(encoding="utf-8") for name in NAMES}

HOSTILE_VALUES = [
    '"a\\u0000b"',
    '"\\u001b[2J\\u0007"',
    '"line\\nbreak"',
    '"/proc/self"',
    '"/dev/zero"',
    '"loop"',
    '"weights"',
    '"gas.toml"',
    '"~nosuchuser/x"',
    '"s3://KEY:SECRET@bucket/x"',
    '"simplecache::http://u:p@127.0.0.1:9/x.safetensors"',
    '"http://127.0.0.1:9/x.safetensors?token=t"',
    '"https://127.0.0.1:9/x.safetensors#sig=s"',
    '"foo://x/y.safetensors"',
    '"file:///dev/zero"',
    '""',
    '"' + "x" * 5000 + '"',
    "-1",
    "0",
    "9999999999999999999",
    "1e999",
    "nan",
    "-inf",
    "true",
    "[]",
    "{}",
    "[[[[1]]]]",
    "{ a = { b = { c = 1 } } }",
    "1979-05-27T07:32:00Z",
    "[" * 70 + "]" * 70,
    "{ x = " * 40 + "1" + " }" * 40,
    "'''multi\nline'''",
]
HOSTILE_LINES = [
    "[models.video]",
    "[models.image.extra]",
    '[cache]\nremote = "s3://K:S@b/c"',
    '[cache]\ndir = "s3://b/c"',
    '[build]\nout = "/proc/self"',
    "[[models]]",
    "x = " + "[" * 2000 + "]" * 2000,
    "= 1",
    '"\\u0000" = 1',
]

ASSIGNMENT = re.compile(r"^(\s*[\w.\"'-]+\s*=\s*)(.*)$")


@st.composite
def mutated(draw: st.DrawFn) -> tuple[str, str]:
    name = draw(st.sampled_from(NAMES))
    lines = TEXTS[name].splitlines()
    for _ in range(draw(st.integers(1, 3))):
        op = draw(st.sampled_from(["value", "value", "delete", "insert", "bytes", "cut"]))
        at = draw(st.integers(0, max(len(lines) - 1, 0)))
        if op == "value":
            hits = [i for i, line in enumerate(lines) if ASSIGNMENT.match(line)]
            if hits:
                i = hits[at % len(hits)]
                match = ASSIGNMENT.match(lines[i])
                assert match is not None
                lines[i] = match.group(1) + draw(st.sampled_from(HOSTILE_VALUES))
        elif op == "delete" and lines:
            del lines[at]
        elif op == "insert":
            lines.insert(at, draw(st.sampled_from(HOSTILE_LINES)))
        elif op == "bytes" and lines:
            junk = draw(st.text(min_size=1, max_size=8))
            col = draw(st.integers(0, len(lines[at])))
            lines[at] = lines[at][:col] + junk + lines[at][col:]
        elif op == "cut":
            lines = lines[:at]
    return name, "\n".join(lines) + "\n"


def _copy(name: str, into: Path) -> Path:
    root = into / name
    shutil.copytree(EXAMPLES / name, root, ignore=shutil.ignore_patterns("dist", "gas.lock"))
    (root / "loop").symlink_to("loop")
    return root


def _manifest_error(path: Path) -> ManifestError | None:
    try:
        manifest.load(path)
    except ManifestError as exc:
        return exc
    except GasbuildError:
        return None
    return None


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(case=mutated())
def test_mutated_manifests_fail_cleanly(
    case: tuple[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    name, text = case
    with tempfile.TemporaryDirectory(prefix="gasbuild-props-") as tmp:
        root = _copy(name, Path(tmp))
        (root / "gas.toml").write_text(text, encoding="utf-8")
        args = ["build", "-C", str(root), "--no-smoke", "--offline"]
        code = _run(cli, args, "gasbuild")  # anything but a GasbuildError escapes: a failure
        captured = capsys.readouterr()
        assert code in (0, 1, 2), captured.err
        assert "Traceback" not in captured.err
        assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f]", captured.err + captured.out)
        error = _manifest_error(root / "gas.toml")
    if error is not None:
        assert code == 2
        assert error.location is not None and error.location.file.endswith("gas.toml")
        if error.key is not None and "is required" not in error.message:
            # a problem with a written key (a missing one has no line): its line is named
            assert error.location.line is not None, str(error)
            assert f"gas.toml:{error.location.line}" in captured.err


@settings(max_examples=400, deadline=None)
@given(case=mutated(), data=st.binary(max_size=64), at=st.integers(0, 10_000))
def test_mutated_manifest_bytes_load_or_fail_cleanly(
    case: tuple[str, str], data: bytes, at: int, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Raw bytes (invalid UTF-8, NULs, BOMs) spliced in: load raises only GasbuildError."""
    _, text = case
    raw = text.encode()
    at %= len(raw) + 1
    path = tmp_path_factory.mktemp("m") / "gas.toml"
    path.write_bytes(raw[:at] + data + raw[at:])
    try:
        manifest.load(path)
    except GasbuildError as exc:
        assert exc.exit_code == 2
        assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f]", str(exc))
