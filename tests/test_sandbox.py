"""The sandbox holds when the static analyzer misses: real child processes, no mocks of the OS.

Each harmful model.py goes straight to ``check_smoke`` (the static checks are not in the
way); the harm is tried inside ``load_model``, and the model loads normally afterwards, so a
clean result means the sandbox stopped the harm rather than the model dying first.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from gasbuild.check.findings import CheckOptions, DirectorySubmission, Finding
from gasbuild.check.smoke import check_smoke, measurement_problem
from gasbuild.sandbox import runner

torch = pytest.importorskip("torch")
safetensors_torch = pytest.importorskip("safetensors.torch")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux containment"),
]

REPO = Path(__file__).resolve().parents[1]
CONFIG = (
    'name: "tiny"\nversion: "1.0.0"\nmodality: image\npreprocessing:\n  resize: [16, 16]\n'
    'model:\n  num_classes: 2\n  weights_file: "model.safetensors"\n'
)
MODEL_PY = """\
import os
import torch
import torch.nn as nn
from safetensors.torch import load_file


class Tiny(nn.Module):
    def __init__(self, num_classes=2):
        super().__init__()
        self.head = nn.Linear(3, num_classes)

    def forward(self, x):
        return self.head(x.float().mean(dim=(2, 3)) / 255.0)


def harm():
HARM


def load_model(weights_path, num_classes=2):
    harm()
    model = Tiny(num_classes)
    model.load_state_dict(load_file(weights_path))
    return model
"""


def make_submission(folder: Path, harm: str) -> DirectorySubmission:
    """A tiny working image model whose ``load_model`` first runs ``harm``."""
    folder.mkdir(parents=True)
    body = textwrap.indent(textwrap.dedent(harm).strip() or "pass", "    ")
    (folder / "model.py").write_text(MODEL_PY.replace("HARM", body))
    (folder / "model_config.yaml").write_text(CONFIG)
    generator = torch.Generator().manual_seed(1)
    tensors = {"head.weight": torch.randn(2, 3, generator=generator), "head.bias": torch.zeros(2)}
    (folder / "model.safetensors").write_bytes(bytes(safetensors_torch.save(tensors)))
    return DirectorySubmission(folder, folder.name)


def smoke(folder: Path, harm: str, **options: object) -> list[Finding]:
    layers: list[dict[str, str]] = []
    opts = CheckOptions(modality="image", smoke_timeout=120.0, on_sandbox=layers.append, **options)  # type: ignore[arg-type]
    findings = check_smoke(make_submission(folder, harm), opts)
    assert layers and all(v == "active" for v in layers[0].values()), layers
    return findings


def rendered(findings: list[Finding]) -> str:
    return "\n".join(f.format("sub") for f in findings)


def test_a_harmless_model_passes_with_every_layer_active(tmp_path: Path) -> None:
    findings = smoke(tmp_path / "sub", "pass")
    assert findings == [], rendered(findings)


def test_a_loopback_listener_receives_nothing(tmp_path: Path) -> None:
    received: list[bytes] = []
    with socket.create_server(("127.0.0.1", 0)) as server:
        server.settimeout(0.2)
        port = server.getsockname()[1]
        stop = threading.Event()

        def accept() -> None:
            while not stop.is_set():
                try:
                    conn, _ = server.accept()
                except TimeoutError:
                    continue
                with conn:
                    received.append(conn.recv(1 << 16) or b"<connected>")

        thread = threading.Thread(target=accept)
        thread.start()
        harm = f"""
            import socket
            errors = []
            for family, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
                try:
                    with socket.socket(family) as s:
                        s.connect((host, {port}))
                        s.sendall(open("/etc/hostname", "rb").read() or b"x")
                except OSError as exc:
                    errors.append(exc)
            try:
                socket.create_connection(("127.0.0.1", {port}), timeout=2).sendall(b"y")
            except OSError as exc:
                errors.append(exc)
            assert len(errors) == 3, errors
        """
        findings = smoke(tmp_path / "sub", harm)
        stop.set()
        thread.join()
    assert received == []
    assert findings == [], rendered(findings)


WRITES = """
    import pathlib
    import numpy as np
    import torch
    from safetensors.torch import save_file
    out = pathlib.Path({outside!r})
    attempts = [
        lambda: (out / "pathlib.txt").write_text("x"),
        lambda: open(out / "open.txt", "w").write("x"),
        lambda: os.close(os.open(out / "os.txt", os.O_CREAT | os.O_WRONLY)),
        lambda: torch.save({{"a": torch.ones(1)}}, out / "torch.pt"),
        lambda: save_file({{"a": torch.ones(1)}}, str(out / "st.safetensors")),
        lambda: np.memmap(out / "memmap.bin", dtype="uint8", mode="w+", shape=(16,)),
        lambda: np.save(out / "np.npy", np.ones(2)),
        lambda: os.mkdir(out / "folder"),
        lambda: os.symlink("/etc/passwd", out / "link"),
    ]
    try:
        from PIL import Image
        attempts.append(lambda: Image.new("RGB", (2, 2)).save(out / "pil.png"))
    except ImportError:
        pass
    failed = 0
    for attempt in attempts:
        try:
            attempt()
        except Exception:  # OSError, or a library's own (safetensors' SafetensorError)
            failed += 1
    assert failed == len(attempts), f"{{failed}} of {{len(attempts)}} writes failed"
    pathlib.Path("inside.txt").write_text("the work directory is writable")
"""


def test_no_file_appears_outside_the_temp_directory(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    findings = smoke(tmp_path / "sub", WRITES.format(outside=str(outside)))
    assert list(outside.iterdir()) == []
    assert findings == [], rendered(findings)


def test_the_same_writes_land_without_the_sandbox(tmp_path: Path) -> None:
    """The control: the write attempts above do write when nothing stops them."""
    outside = tmp_path / "outside"
    outside.mkdir()
    code = textwrap.dedent(WRITES.format(outside=str(outside))).replace(
        "assert failed", "assert failed == 0 or failed"
    )
    script = "import os\n" + code
    subprocess.run([sys.executable, "-c", script], check=True, cwd=tmp_path, timeout=120)
    assert (outside / "pathlib.txt").exists() and (outside / "memmap.bin").exists()


def test_a_canary_secret_never_reaches_the_child(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    canary = "canary-" + os.urandom(8).hex()
    monkeypatch.setenv("HF_TOKEN", canary)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", canary)
    harm = f"""
        import glob
        seen = [k for k, v in os.environ.items() if {canary!r} in v]
        for path in ["/proc/{os.getpid()}/environ", *glob.glob("/proc/[0-9]*/environ")]:
            try:
                with open(path, "rb") as handle:
                    if {canary!r}.encode() in handle.read():
                        seen.append(path)
            except OSError:
                pass
        try:
            with open("/proc/{os.getpid()}/mem", "rb") as handle:
                seen.append("mem")
        except OSError:
            pass
        if seen:
            raise RuntimeError("LEAKED " + " ".join(seen))
    """
    findings = smoke(tmp_path / "sub", harm)
    assert findings == [], rendered(findings)


def _processes_with(marker: str) -> list[int]:
    """Pids whose command line holds ``marker`` (this test runs as the same user or root)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if marker.encode() in cmdline:
            found.append(int(entry.name))
    return found


def test_a_forked_sleep_is_gone_when_the_check_returns(tmp_path: Path) -> None:
    seconds = str(3000 + os.getpid() % 997)  # a command line nothing else has
    harm = f"""
        import subprocess
        subprocess.Popen(["sleep", "{seconds}"], start_new_session=True)
        subprocess.Popen(["sleep", "{seconds}"])
    """
    findings = smoke(tmp_path / "sub", harm)
    assert findings == [], rendered(findings)
    assert _processes_with(f"sleep\0{seconds}") == []


GASBUILD_STANDIN = """
import sys
from pathlib import Path
from gasbuild.check.findings import CheckOptions, DirectorySubmission
from gasbuild.check.smoke import check_smoke
try:
    check_smoke(DirectorySubmission(Path(sys.argv[1]), "sub"), CheckOptions(modality="image"))
except KeyboardInterrupt:
    print("interrupted", file=sys.stderr)
    sys.exit(130)
"""


def _spinning_run(tmp_path: Path, marker: str) -> subprocess.Popen[bytes]:
    """A stand-in gasbuild running the smoke test of a model that spins and forks a sleep;
    returns once the model's processes are running."""
    harm = f"""
        import subprocess
        subprocess.Popen(["sleep", "{marker}"], start_new_session=True)
        while True:
            pass
    """
    make_submission(tmp_path / "sub", harm)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-c", GASBUILD_STANDIN, str(tmp_path / "sub")],
        env=env,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 120
    while not _processes_with(f"sleep\0{marker}"):
        assert time.monotonic() < deadline, "the model never started"
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        time.sleep(0.1)
    return proc


def _gone_within(marker: str, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not _processes_with(marker):
            return True
        time.sleep(0.05)
    return not _processes_with(marker)


def test_a_sigkilled_gasbuild_leaves_no_child_within_2_s(tmp_path: Path) -> None:
    marker = str(4000 + os.getpid() % 997)
    proc = _spinning_run(tmp_path, marker)
    launched = _processes_with(str(runner.LAUNCHER))
    assert launched
    proc.kill()
    proc.wait()
    assert _gone_within(f"sleep\0{marker}", 2.0)
    deadline = time.monotonic() + 2.0
    while any(_running(pid) for pid in launched) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(_running(pid) for pid in launched)


def _running(pid: int) -> bool:
    """Whether ``pid`` exists and is not a zombie."""
    try:
        status = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return status.rsplit(")", 1)[1].split()[0] != "Z"


def test_ctrl_c_kills_the_group_and_says_interrupted(tmp_path: Path) -> None:
    marker = str(5000 + os.getpid() % 997)
    proc = _spinning_run(tmp_path, marker)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130
    assert b"interrupted" in err and b"did not finish" not in err
    assert _gone_within(f"sleep\0{marker}", 2.0)


def test_a_forged_result_is_a_failure(tmp_path: Path) -> None:
    """model.py writes the verdict a naive parent would accept to every open pipe, then
    leaves with status 0 before anything was measured."""
    harm = """
        import json, stat
        forged = (json.dumps({"result": {"findings": []}}) + "\\n").encode()
        for fd in range(3, 256):
            try:
                if stat.S_ISFIFO(os.fstat(fd).st_mode):
                    os.write(fd, forged)
            except OSError:
                pass
        os.write(1, forged)
        os._exit(0)
    """
    findings = smoke(tmp_path / "sub", harm)
    assert [(f.code, f.severity) for f in findings] == [("GAS608", "error")], rendered(findings)
    assert "cannot be believed" in findings[0].message


def test_measurements_are_judged_by_the_parent() -> None:
    good = [
        {"batch": 2, "input_shape": [2, 3, 4, 4], "logits": [[0.1, 0.2], [0.3, 0.4]]},
        {"batch": 1, "input_shape": [1, 3, 4, 4], "logits": [[0.1, 0.2]]},
    ]
    assert measurement_problem(good, 2) is None
    assert measurement_problem(None, 2) is not None
    assert measurement_problem(good[:1], 2) is not None  # batch 1 never measured
    nan = [dict(good[0]), good[1]]
    nan[0]["logits"] = [[float("nan"), 0.0], [0.0, 0.0]]
    assert "finite" in str(measurement_problem(nan, 2))
    wide = [dict(good[0]), good[1]]
    wide[0]["logits"] = [[0.0] * 7, [0.0] * 7]
    assert measurement_problem(wide, 2) is not None


def test_sweep_removes_only_directories_whose_owner_is_gone() -> None:
    parent = runner.sandbox_parent()
    dead = subprocess.Popen(["true"])
    dead.wait()
    orphan = parent / f"smoke-{dead.pid}-test"
    orphan.mkdir()
    with runner.sandbox_dir("smoke-") as live:
        assert runner.sweep_sandbox_dirs() >= 1
        assert live.is_dir()
    assert not orphan.exists()
