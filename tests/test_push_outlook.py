"""Issue 16, the push points still missing: `push --dry-run` shows each hotkey's submissions as
this project's receipts know them (never presigning), `status` asks an unreachable chain once,
an upload's progress ends at the zip's size, and "n" at the push prompt is a decision (exit 1).

Through the registered commands (``gasbuild.cli._run``, as a user's argv) at COLUMNS=80, with
the loopback upload service of tests/fakes/gas_api.py; chain endpoints are real sockets on
127.0.0.1 (one that accepts and never answers, one that refuses), reached by the installed SDK.
"""

from __future__ import annotations

import io
import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import click
import pytest
from hypothesis import given
from hypothesis import strategies as st

pytest.importorskip("bittensor_wallet")

from fakes.gas_api import GasApiState, serve_gas_api
from fakes.publishing import make_wallet, make_zip
from gasbuild import ui
from gasbuild.cli import _run
from gasbuild.cli.push import register
from gasbuild.manifest import Project
from gasbuild.publish.push import PushItem, no_checks
from gasbuild.publish.receipts import BurnRecord, BurnStore, Receipt, ReceiptStore
from gasbuild.publish.status import hotkey_name
from gasbuild.submission import Modality, zip_name

MANIFEST = """\
[wallet]
name = "miner"
hotkey = "img"
path = "{wallets}"

[network]
netuid = 34

[models.image]
architecture = {{ file = "model.py" }}
weights = {{ path = "w.safetensors" }}

[models.video]
hotkey = "{video_hotkey}"
architecture = {{ file = "model.py" }}
weights = {{ path = "w.safetensors" }}

[models.audio]
hotkey = "aud"
architecture = {{ file = "model.py" }}
weights = {{ path = "w.safetensors" }}
"""

PAYLOADS: dict[str, bytes] = {}  # modality -> zip payload (changed to make a "new model")


def built_zips(project: Project, only: frozenset[Modality] | None) -> list[PushItem]:
    """Stands in for plan.build: small zips made here, one per declared model."""
    items = []
    for modality, _ in project.manifest.declared():
        if only is not None and modality not in only:
            continue
        path = project.out_dir / zip_name(modality)
        payload = PAYLOADS.get(modality, modality.encode())
        zip_path, digest, size = make_zip(path, modality, payload)
        items.append(PushItem(modality, zip_path, digest, size, hotkey_name(project, modality)))
    return items


@dataclass
class Cli:
    root: Path
    server: GasApiState
    addresses: dict[str, str]
    group: click.Group
    wallets: Path

    def run(self, *args: str) -> int:
        return _run(self.group, list(args), "gasbuild")

    def write_manifest(self, video_hotkey: str = "vid", extra: str = "") -> None:
        text = MANIFEST.format(wallets=self.wallets, video_hotkey=video_hotkey)
        (self.root / "gas.toml").write_text(text.replace("netuid = 34\n", f"netuid = 34\n{extra}"))


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Cli]:
    wallets = tmp_path / "wallets"
    addresses = make_wallet(wallets, "miner", ("img", "vid", "aud"))
    chain_file = tmp_path / "chain.json"
    chain_file.write_text(json.dumps({"registered": sorted(addresses.values())}))
    root = tmp_path / "project"
    root.mkdir()
    group, discriminator = click.Group("gasbuild"), click.Group("discriminator")
    register(group, discriminator, checker=no_checks, builder=built_zips)
    monkeypatch.setenv("GASBUILD_CHAIN", f"memory:{chain_file}")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("COLUMNS", "80")
    monkeypatch.setattr(ui, "_consoles", {})  # made afresh, at 80 columns
    monkeypatch.setattr(ui, "json_printed", False)
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    PAYLOADS.clear()
    monkeypatch.chdir(tmp_path)
    with serve_gas_api() as server:
        monkeypatch.setenv("GASBUILD_UPLOAD_URL", server.base_url)
        made = Cli(root, server, addresses, group, wallets)
        made.write_manifest()
        yield made
    PAYLOADS.clear()


def _fits(text: str, width: int = 80) -> str:
    """Assert no line is wider than ``width``; return the text with its folds undone."""
    long = [line for line in text.splitlines() if len(line) > width]
    assert not long, long
    return " ".join(text.split())


def _old_receipt(cli: Cli, hotkey: str, *, days: int, used: int, most: int) -> None:
    """A confirmed push of an earlier zip on ``hotkey``, as a push records it."""
    when = (datetime.now(timezone.utc) - timedelta(days=days)).isoformat(timespec="seconds")
    receipt = Receipt(
        sha256="e" * 64,
        modality="image",
        hotkey_ss58=cli.addresses[hotkey],
        netuid=34,
        size=10,
        model_id=5,
        r2_key="models/x/image/5.zip",
        uploaded=True,
        confirmed=True,
        submissions_used=used,
        submissions_max=most,
        presigned_at=when,
    )
    ReceiptStore(cli.root / ".gasbuild").save(receipt)


# -- 1: push --dry-run shows each hotkey's submissions ------------------------------------


def test_dry_run_without_receipts_says_unknown(
    cli: Cli, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.run("push", "-C", str(cli.root), "--dry-run") == 0
    out = _fits(capsys.readouterr().out)
    assert "nothing uploaded, no upload slot reserved" in out
    assert out.count("used: unknown (no push from here yet)") == 3
    assert "planned" not in out
    for name in ("img", "vid", "aud"):
        assert f"{name} {cli.addresses[name]}" in out
    assert cli.server.calls == {}  # never presigned: a presign reserves a slot

    assert cli.run("push", "-C", str(cli.root), "--dry-run", "--json") == 0
    report = json.loads(capsys.readouterr().out)
    assert [h["name"] for h in report["hotkeys"]] == ["img", "vid", "aud"]
    for hotkey in report["hotkeys"]:
        assert (hotkey["known"], hotkey["used"], hotkey["max"]) == (False, None, None)
        assert hotkey["needs_burn"] == []
    for model in report["models"]:
        assert (model["action"], model["needs_burn"], model["burn_reason"]) == (
            "upload",
            None,
            None,
        )
    assert cli.server.calls == {}


def test_dry_run_with_receipts_counts_used_of_max(
    cli: Cli, capsys: pytest.CaptureFixture[str]
) -> None:
    _old_receipt(cli, "img", days=3, used=0, most=3)
    assert cli.run("push", "-C", str(cli.root), "--dry-run") == 0
    out = _fits(capsys.readouterr().out)
    assert "used: 1 of max 3 (the service's max as of" in out and "3 days ago" in out
    assert "image: needs a burn, this hotkey's free submission is used" in out
    assert "none saved: --burn makes one" in out
    assert out.count("used: unknown (no push from here yet)") == 2  # vid, aud

    assert cli.run("push", "-C", str(cli.root), "--dry-run", "--json") == 0
    report = json.loads(capsys.readouterr().out)
    img = report["hotkeys"][0]
    assert (img["known"], img["used"], img["confirmed_here"], img["max"]) == (True, 1, 1, 3)
    assert img["service_used"] == 0 and img["needs_burn"] == ["image"]
    assert 3 * 86400 - 60 <= img["max_age_seconds"] <= 3 * 86400 + 3600
    image = report["models"][0]
    assert (image["needs_burn"], image["burn_reason"], image["burn_source"]) == (
        True,
        "used-up",
        None,
    )
    assert cli.server.calls == {}


def test_dry_run_after_a_real_push(cli: Cli, capsys: pytest.CaptureFixture[str]) -> None:
    """The presign's answer, as a push records it, is what the next dry run reports."""
    assert cli.run("push", "-C", str(cli.root), "--only", "image", "--yes", "--json") == 0
    capsys.readouterr()
    calls = dict(cli.server.calls)
    PAYLOADS["image"] = b"a retrained image model"
    assert cli.run("push", "-C", str(cli.root), "--only", "image", "--dry-run") == 0
    out = _fits(capsys.readouterr().out)
    assert "used: 1 of max 3 (the service's max as of" in out and "just now" in out
    assert "image: needs a burn" in out
    assert cli.server.calls == calls  # the dry run asked the service nothing

    PAYLOADS.clear()  # the pushed zip itself: nothing to spend
    assert cli.run("push", "-C", str(cli.root), "--only", "image", "--dry-run", "--json") == 0
    [model] = json.loads(capsys.readouterr().out)["models"]
    assert (model["action"], model["uses_submission"], model["needs_burn"]) == (
        "commit",
        False,
        False,
    )


def test_dry_run_shared_hotkey_names_the_model_that_needs_a_burn(
    cli: Cli, capsys: pytest.CaptureFixture[str]
) -> None:
    cli.write_manifest(video_hotkey="img")
    args = ("push", "-C", str(cli.root), "--dry-run", "--allow-shared-hotkey")
    assert cli.run(*args) == 0
    out = _fits(capsys.readouterr().out)
    assert "video: needs a burn, image uses this hotkey's free submission first" in out
    assert "image: uses the free submission, unless this hotkey pushed from" in out

    tx = "ab" * 32
    BurnStore(cli.root / ".gasbuild").save(BurnRecord(tx, cli.addresses["img"], 34, block=7))
    assert cli.run(*args, "--json") == 0
    report = json.loads(capsys.readouterr().out)
    assert [h["name"] for h in report["hotkeys"]] == ["img", "aud"]
    assert report["hotkeys"][0]["modalities"] == ["image", "video"]
    assert report["hotkeys"][0]["unspent_burns"] == 1
    assert report["hotkeys"][0]["used"] == 1  # a burn is made once the free one is used
    image, video = report["models"][:2]
    assert (image["needs_burn"], image["burn_reason"], image["burn_source"]) == (
        True,
        "used-up",
        "saved",  # the one saved burn pays for image ...
    )
    assert (video["needs_burn"], video["burn_reason"], video["burn_source"]) == (
        True,
        "shared-hotkey",
        None,  # ... and not for video too
    )


# -- 4: "n" at the push prompt --------------------------------------------------------


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(
    ("answer", "code", "said"),
    [("n\n", 1, "push declined; nothing was pushed"), ("", 130, "aborted: nothing was done")],
)
def test_no_at_the_prompt_exits_1_and_end_of_input_130(
    cli: Cli,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    answer: str,
    code: int,
    said: str,
) -> None:
    monkeypatch.setattr("sys.stdin", Terminal(answer))  # "" is Ctrl-D
    assert cli.run("push", "-C", str(cli.root), "--json") == code
    captured = capsys.readouterr()
    assert said in captured.err and "Push?" in captured.err
    _fits(captured.err.split("Push?")[0])  # the plan shown before the question
    assert json.loads(captured.out)["error"]["exit_code"] == code
    assert cli.server.calls == {}


def test_push_help_documents_the_prompt(cli: Cli, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.run("push", "--help") == 0
    text = " ".join(capsys.readouterr().out.split())
    assert 'answering "n" at the prompt exits 1' in text


# -- 2: status asks an unreachable chain once -----------------------------------------


class SilentChain:
    """A loopback endpoint that accepts TCP connections and never says a word (bounded)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.accepted: list[socket.socket] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.sock.getsockname()[1]}"

    def _serve(self) -> None:
        for _ in range(3000):  # at most ~10 minutes, whatever happens
            if self.stop.is_set():
                return
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            self.accepted.append(conn)

    def __enter__(self) -> SilentChain:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(5)
        for conn in self.accepted:
            conn.close()
        self.sock.close()


def _refusing_url() -> str:
    with socket.socket() as probe:  # bound then closed: nothing listens on that port
        probe.bind(("127.0.0.1", 0))
        return f"ws://127.0.0.1:{probe.getsockname()[1]}"


@pytest.fixture
def real_chain(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """The installed SDK, with short deadlines; returns the TCP connections it attempts."""
    pytest.importorskip("bittensor")
    from gasbuild.publish import chain

    monkeypatch.delenv("GASBUILD_CHAIN")
    short = chain.Deadlines(connect=1.0, read=1.0, commit=1.0)
    monkeypatch.setattr(chain, "Deadlines", lambda: short)
    attempts: list[tuple[str, int]] = []
    real = socket.create_connection

    def counting(address: Any, *args: Any, **kwargs: Any) -> socket.socket:
        attempts.append(tuple(address))  # type: ignore[arg-type]
        return real(address, *args, **kwargs)

    monkeypatch.setattr(socket, "create_connection", counting)
    return attempts


def _status_once(cli: Cli, url: str, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    code = cli.run("status", "-C", str(cli.root), "--json", "--chain-endpoint", url)
    captured = capsys.readouterr()
    assert code == 1, captured.err
    errors = [line for line in captured.err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and url in errors[0], captured.err
    report: dict[str, Any] = json.loads(captured.out)
    assert report["ok"] is False and report["error"]["kind"] == "ChainUnavailable"
    assert [m["modality"] for m in report["models"]] == ["image", "video", "audio"]
    assert {m["chain"] for m in report["models"]} == {"unknown (chain unreachable)"}
    return report


def test_status_with_a_silent_chain_connects_once(
    cli: Cli, real_chain: list[tuple[str, int]], capsys: pytest.CaptureFixture[str]
) -> None:
    with SilentChain() as silent:
        report = _status_once(cli, silent.url, capsys)
        assert "did not answer (connect) within 1 s" in report["error"]["message"]
        port = int(silent.url.rsplit(":", 1)[1])
        assert [a for a in real_chain if a[1] == port] == [("127.0.0.1", port)]
        assert len(silent.accepted) <= 1  # the one attempt (it may not be accepted yet)


def test_status_with_a_refusing_chain_connects_once(
    cli: Cli, real_chain: list[tuple[str, int]], capsys: pytest.CaptureFixture[str]
) -> None:
    url = _refusing_url()
    report = _status_once(cli, url, capsys)
    assert "connection refused" in report["error"]["message"]
    port = int(url.rsplit(":", 1)[1])
    assert [a for a in real_chain if a[1] == port] == [("127.0.0.1", port)]

    cli.run("status", "-C", str(cli.root), "--chain-endpoint", url)  # the table, at 80 columns
    captured = capsys.readouterr()
    _fits(captured.out)
    assert captured.out.count("chain: unreachable") == 3


@pytest.mark.parametrize("kind", ["refusing", "silent"])
def test_dry_run_with_an_unreachable_chain_connects_once(
    cli: Cli, real_chain: list[tuple[str, int]], capsys: pytest.CaptureFixture[str], kind: str
) -> None:
    with SilentChain() as silent:
        url = silent.url if kind == "silent" else _refusing_url()
        args = ("push", "-C", str(cli.root), "--dry-run", "--json", "--chain-endpoint", url)
        assert cli.run(*args) == 1
    captured = capsys.readouterr()
    assert json.loads(captured.out)["ok"] is False
    errors = [line for line in captured.err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in captured.err
    assert ("did not answer (connect)" if kind == "silent" else "connection refused") in errors[0]
    port = int(url.rsplit(":", 1)[1])
    assert len([a for a in real_chain if a[1] == port]) == 1  # three hotkeys, one attempt


# -- 3: upload progress ends at the zip's size ------------------------------------------


def _push_recording(tmp_path: Path, payload: bytes, *faults: str) -> tuple[list[int], int]:
    """Push one zip through the loopback service; the progress callbacks and the zip's size."""
    from fakes.publishing import RecordingEvents
    from gasbuild.publish.chain import MemoryChain
    from gasbuild.publish.gasapi import RetryPolicy
    from gasbuild.publish.push import PushSettings, push

    wallets = tmp_path / "wallets"
    addresses = make_wallet(wallets, "miner", ("img",))
    zip_path, digest, size = make_zip(tmp_path / "dist" / "image_detector.zip", "image", payload)
    events = RecordingEvents()
    with serve_gas_api() as server:
        server.fault("put", *faults)
        settings = PushSettings(
            wallet_name="miner",
            wallet_path=str(wallets),
            upload_url=server.base_url,
            chain=MemoryChain(registered=addresses.values()),
            state_dir=tmp_path / ".gasbuild",
            retry=RetryPolicy(base_delay=0.01, max_delay=0.02),
        )
        report = push(
            [PushItem("image", zip_path, digest, size, "img")],
            settings,
            checker=no_checks,
            events=events,
            sleep=lambda seconds: None,
        )
        assert report.ok, report.error
        assert server.calls["put"] == 1 + len(faults)
    return events.sent, size


@pytest.mark.parametrize("payload", [b"w", b"\x02" * 40_000], ids=["small", "3 chunks"])
def test_upload_progress_starts_at_zero_and_ends_at_the_size(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, payload: bytes
) -> None:
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.delenv("GASBUILD_UPLOAD_URL", raising=False)
    sent, size = _push_recording(tmp_path, payload)  # make_zip stores 64 copies
    assert sent[0] == 0 and sent[-1] == size  # a bar exists before the first byte goes out
    assert sent == sorted(sent) and len(sent) == 1 + -(-size // (1 << 20))
    shown = _bars_for(sent, size)
    assert [(b.total, sum(b.advanced), b.finished) for b in shown] == [(size, size, 1)]


def test_upload_progress_restarts_with_a_retried_put(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.delenv("GASBUILD_UPLOAD_URL", raising=False)
    sent, size = _push_recording(tmp_path, b"\x01" * 49_152, "reset")  # 3 MiB stored
    restarts = [i for i, n in enumerate(sent) if n == 0]
    assert len(restarts) == 2 and sent[-1] == size
    shown = _bars_for(sent, size)
    assert len(shown) == 2 and all(b.finished == 1 for b in shown)
    assert sum(shown[-1].advanced) == size  # the bar the user is left with is full


@dataclass
class RecordedBar:
    total: int | None
    advanced: list[int]
    finished: int = 0

    def advance(self, n: int) -> None:
        self.advanced.append(n)

    def finish(self) -> None:
        self.finished += 1


def _bars_for(sent: list[int], size: int) -> list[RecordedBar]:
    """Feed the callbacks to the CLI's events, as a push does, then the next message."""
    from gasbuild.cli.push import _cli_events

    bars: list[RecordedBar] = []

    def factory() -> Any:
        def start(label: str, total: int | None) -> RecordedBar:
            bars.append(RecordedBar(total, []))
            return bars[-1]

        return start

    original = ui.progress_factory
    ui.progress_factory = factory  # type: ignore[assignment]
    try:
        events = _cli_events()
        for count in sent:
            events.progress("image", count, size)
        assert all(b.finished == 0 for b in bars[-1:])  # full while the service answers
        events.info("image: upload confirmed")
    finally:
        ui.progress_factory = original  # type: ignore[assignment]
    return bars


# -- the same, as a user runs it ------------------------------------------------------


def test_dry_run_in_a_subprocess_at_80_columns(tmp_path: Path) -> None:
    """`init` two models, then `push --dry-run` (which builds) with and without receipts."""
    from conftest import run_cli

    wallets = tmp_path / "wallets"
    addresses = make_wallet(wallets, "default", ("image", "audio"))
    chain_file = tmp_path / "chain.json"
    chain_file.write_text(json.dumps({"registered": sorted(addresses.values())}))
    env = {"COLUMNS": "80", "GASBUILD_CHAIN": f"memory:{chain_file}", "HOME": str(tmp_path)}
    env["BT_WALLET_PATH"] = str(wallets)
    made = run_cli("init", "-C", "p", "--modality", "image", "--modality", "audio", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    root = tmp_path / "p"
    toml = (root / "gas.toml").read_text()
    (root / "gas.toml").write_text(
        toml.replace('name = "default"', f'name = "default"\npath = "{wallets}"', 1)
    )
    args = ("push", "--dry-run", "--no-smoke")
    absent = run_cli(*args, cwd=root, env=env)
    assert absent.returncode == 0, absent.stderr
    out = _fits(absent.stdout)
    assert out.count("used: unknown (no push from here yet)") == 2
    assert "would upload" in out and "…" in out  # short digests, marked short

    digest = json.loads(run_cli(*args, "--json", cwd=root, env=env).stdout)["models"][0]["sha256"]
    store = ReceiptStore(root / ".gasbuild")
    store.save(
        Receipt(digest, "image", addresses["image"], 34, 1, model_id=3, r2_key="k", uploaded=True)
    )
    (root / ".gasbuild" / "receipts" / ("f" * 64 + ".json")).write_text(
        json.dumps(
            Receipt(
                "f" * 64, "image", addresses["image"], 34, 1, confirmed=True,
                submissions_used=0, submissions_max=2, presigned_at="2026-01-02T03:04:05+00:00",
            ).to_json()
        )
    )  # fmt: skip
    present = run_cli(*args, cwd=root, env=env)
    assert present.returncode == 0, present.stderr
    out = _fits(present.stdout)
    assert "used: 1 of max 2 (the service's max as of 2026-01-02," in out
    assert "image: confirms its earlier upload" in out and "would confirm" in out
    assert out.count("used: unknown (no push from here yet)") == 1  # audio
    report = json.loads(run_cli(*args, "--json", cwd=root, env=env).stdout)
    image, audio = report["models"]
    assert (image["action"], image["needs_burn"], audio["needs_burn"]) == ("confirm", False, None)
    assert report["hotkeys"][0]["max_answered"] == "2026-01-02T03:04:05+00:00"


# -- the rule behind "needs a burn" ----------------------------------------------------


@st.composite
def _hotkey_push(draw: st.DrawFn) -> tuple[list[Any], Any]:
    """One hotkey's models in push order (each with a receipt state) and what is known of it."""
    from types import SimpleNamespace

    from gasbuild.publish.push import PlannedItem
    from gasbuild.publish.slots import HotkeyCount

    states = draw(
        st.lists(
            st.sampled_from(["none", "presigned", "uploaded", "confirmed"]), min_size=1, max_size=3
        )
    )
    planned = []
    for modality, state in zip(("image", "video", "audio"), states, strict=False):
        receipt = None
        if state != "none":
            receipt = Receipt("a" * 64, modality, "5H", 34, 1, model_id=1)
            receipt.uploaded = state in ("uploaded", "confirmed")
            receipt.confirmed = state == "confirmed"
        item = PushItem(modality, Path("z"), "a" * 64, 1, "hk")  # type: ignore[arg-type]
        planned.append(PlannedItem(item, SimpleNamespace(ss58_address="5H"), None, receipt))  # type: ignore[arg-type]
    receipts = draw(st.integers(0, 3))
    count = HotkeyCount(
        "5H",
        34,
        confirmed=draw(st.integers(0, receipts)),
        service_used=draw(st.none() | st.integers(0, 3)),
        service_max=draw(st.none() | st.integers(1, 3)),
        answered=None,
        receipts=receipts,
        unspent_burns=draw(st.integers(0, 2)),
        pending_burns=0,
    )
    return planned, count


@given(_hotkey_push())
def test_only_the_first_new_upload_on_a_hotkey_can_be_free(case: tuple[list[Any], Any]) -> None:
    from gasbuild.publish.slots import _models

    planned, count = case
    models = _models(planned, count, commit_only=False)
    uploads = [m for m in models if m.action == "upload"]
    assert all(m.needs_burn is False for m in models if m.action != "upload")
    for later in uploads[1:]:  # the first upload spends the free one (or needs a burn itself)
        assert later.needs_burn is True and later.burn_reason == "shared-hotkey"
        assert later.first_on_hotkey == uploads[0].modality
    if uploads:
        first = uploads[0]
        if count.used is None:
            assert first.needs_burn is None  # never "free" on what is not known
        else:
            assert first.needs_burn is (count.used >= 1)
            if count.unspent_burns:  # a saved burn: the service said the free one is used
                assert first.needs_burn and first.burn_source == "saved"
    paid = [m for m in models if m.burn_source == "saved"]
    assert len(paid) <= count.unspent_burns  # a saved burn pays for one model only
