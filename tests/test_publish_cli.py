"""End to end through the registered commands: gasbuild push/status and gascli d push."""

from __future__ import annotations

import io
import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import click
import pytest

pytest.importorskip("bittensor_wallet")

from fakes.gas_api import GasApiState, serve_gas_api
from fakes.publishing import make_wallet, make_zip
from gasbuild.cli import _run
from gasbuild.cli.push import register
from gasbuild.manifest import Project
from gasbuild.publish.chain import MemoryChain
from gasbuild.publish.push import PushItem, no_checks
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
hotkey = "vid"
architecture = {{ file = "model.py" }}
weights = {{ path = "w.safetensors" }}
"""


def built_zips(project: Project, only: frozenset[Modality] | None) -> list[PushItem]:
    """Stands in for plan.build: the zips were made by the test."""
    items = []
    for modality, _ in project.manifest.declared():
        if only is not None and modality not in only:
            continue
        path = project.out_dir / zip_name(modality)
        zip_path, digest, size = make_zip(path, modality, modality.encode())
        items.append(PushItem(modality, zip_path, digest, size, hotkey_name(project, modality)))
    return items


@dataclass
class Cli:
    root: Path
    server: GasApiState
    chain_file: Path
    addresses: dict[str, str]
    gasbuild: click.Group
    gascli: click.Group

    def run(self, group: click.Group, *args: str) -> int:
        return _run(group, list(args), "gasbuild")


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Cli]:
    home = tmp_path / "home"
    wallets = home / ".bittensor" / "wallets"
    addresses = make_wallet(wallets, "miner", ("img", "vid"))
    chain_file = tmp_path / "chain.json"
    chain_file.write_text(json.dumps({"registered": sorted(addresses.values())}))
    root = tmp_path / "project"
    root.mkdir()
    (root / "gas.toml").write_text(MANIFEST.format(wallets=wallets))
    gasbuild, discriminator = click.Group("gasbuild"), click.Group("discriminator")
    register(gasbuild, discriminator, checker=no_checks, builder=built_zips)
    gascli = click.Group("gascli")
    gascli.add_command(discriminator, "d")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GASBUILD_CHAIN", f"memory:{chain_file}")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    monkeypatch.chdir(tmp_path)
    with serve_gas_api() as server:
        monkeypatch.setenv("GASBUILD_UPLOAD_URL", server.base_url)
        yield Cli(root, server, chain_file, addresses, gasbuild, gascli)


def test_push_then_status(cli: Cli, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.run(cli.gasbuild, "push", "-C", str(cli.root), "--yes", "--json") == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] and [m["status"] for m in report["models"]] == ["pushed", "pushed"]
    assert [m["hotkey"] for m in report["models"]] == [cli.addresses["img"], cli.addresses["vid"]]
    assert cli.server.total_confirmations == 2
    chain = MemoryChain(cli.chain_file)
    for model in report["models"]:
        assert chain.get_commitment(model["hotkey"], 34) == model["commitment"]
    assert (cli.root / ".gasbuild" / "receipts" / f"{report['models'][0]['sha256']}.json").exists()

    assert cli.run(cli.gasbuild, "status", "-C", str(cli.root), "--json") == 0
    status = json.loads(capsys.readouterr().out)["models"]
    assert [(s["modality"], s["receipt"], s["chain"]) for s in status] == [
        ("image", "verified", "matches"),
        ("video", "verified", "matches"),
    ]

    # a second push resumes from the receipts and uploads nothing
    assert cli.run(cli.gasbuild, "push", "-C", str(cli.root), "--yes") == 0
    out = capsys.readouterr().out
    assert "already-pushed" in out
    assert cli.server.calls["put"] == 2


def test_status_before_any_push(cli: Cli, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.run(cli.gasbuild, "status", "-C", str(cli.root), "--only", "image") == 0
    out = capsys.readouterr().out
    assert "not built" in out and "no commitment" in out


def test_push_only_and_dry_run(cli: Cli, capsys: pytest.CaptureFixture[str]) -> None:
    args = ("push", "-C", str(cli.root), "--only", "video", "--dry-run", "--json")
    assert cli.run(cli.gasbuild, *args) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["dry_run"] and [m["modality"] for m in report["models"]] == ["video"]
    assert cli.server.calls == {}


def test_no_terminal_and_no_yes_is_refused(cli: Cli, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.run(cli.gasbuild, "push", "-C", str(cli.root)) == 2
    assert "pass --yes" in capsys.readouterr().err
    assert cli.server.calls == {}


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(("answer", "code", "confirmations"), [("y\n", 0, 2), ("n\n", 1, 0)])
def test_confirmation_prompt(
    cli: Cli,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    answer: str,
    code: int,
    confirmations: int,
) -> None:
    monkeypatch.setattr("sys.stdin", Terminal(answer))
    assert cli.run(cli.gasbuild, "push", "-C", str(cli.root)) == code
    assert cli.server.total_confirmations == confirmations
    captured = capsys.readouterr()
    assert "about to push" in captured.err and "Push?" in captured.err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--burn-receipt", "image=nothex:5"], "is not a transaction hash"),
        (["--burn-receipt", "image=" + "a" * 64 + ":0"], "is not a block number"),
        (["--burn-receipt", "sound=0x" + "a" * 64 + ":1"], "MODALITY"),
        (["--burn-receipt", "a" * 64 + ":1"], "say which one it is for"),
        (["--burn-receipt", "video=" + "a" * 64 + ":1", "--only", "image"], "not being pushed"),
        (["--only", "audio"], "not declared"),
        (["--only", "smell"], "unknown modality"),
    ],
)
def test_push_usage_errors(
    cli: Cli, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    assert cli.run(cli.gasbuild, "push", "-C", str(cli.root), "--yes", *args) == 2
    assert message in capsys.readouterr().err
    assert cli.server.calls == {}


def test_unregistered_hotkey_exit_1_and_nothing_uploaded(
    cli: Cli, capsys: pytest.CaptureFixture[str]
) -> None:
    cli.chain_file.write_text(json.dumps({"registered": [cli.addresses["img"]]}))
    assert cli.run(cli.gasbuild, "push", "-C", str(cli.root), "--yes") == 1
    assert "is not registered on subnet 34" in capsys.readouterr().err
    assert cli.server.calls == {}


# -- gascli d push ------------------------------------------------------------------------


def test_gascli_push(cli: Cli, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    zip_path, digest, _ = make_zip(tmp_path / "image_detector.zip", "image")
    args = ["d", "push", "--image-model", str(zip_path), "--wallet-name", "miner"]
    args += ["--wallet-hotkey", "img", "--retry-delay", "1"]
    assert cli.run(cli.gascli, *args) == 0
    assert "pushed" in capsys.readouterr().out
    assert (tmp_path / ".gasbuild" / "receipts" / f"{digest}.json").exists()
    chain = MemoryChain(cli.chain_file)
    assert chain.get_commitment(cli.addresses["img"], 34) is not None
    assert cli.run(cli.gascli, *args) == 0  # resumes: nothing uploaded twice
    assert cli.server.calls["put"] == 1 and cli.server.total_confirmations == 1


def test_wallet_overrides_on_push_and_gascli(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """--wallet-name/--wallet-hotkey/--wallet-path on push, --wallet-path on gascli: the
    wallets need not be under HOME, and gas.toml's [wallet] can be overridden."""
    wallets = tmp_path / "elsewhere"
    shutil.move(str(tmp_path / "home" / ".bittensor" / "wallets"), wallets)
    text = (cli.root / "gas.toml").read_text()
    (cli.root / "gas.toml").write_text(text.replace('name = "miner"', 'name = "nobody"'))
    base = ("push", "-C", str(cli.root), "--yes", "--json", "--only", "image")
    assert cli.run(cli.gasbuild, *base) == 2  # gas.toml's wallet does not exist
    capsys.readouterr()
    over = ("--wallet-name", "miner", "--wallet-path", str(wallets), "--wallet-hotkey", "vid")
    assert cli.run(cli.gasbuild, *base, *over) == 0
    report = json.loads(capsys.readouterr().out)
    assert [m["hotkey"] for m in report["models"]] == [cli.addresses["vid"]]

    zip_path, _, _ = make_zip(tmp_path / "video_detector.zip", "video")
    args = ["d", "push", "--video-model", str(zip_path), "--wallet-name", "miner"]
    args += ["--wallet-hotkey", "img", "--retry-delay", "1"]
    assert cli.run(cli.gascli, *args) == 2  # not under HOME any more
    assert cli.run(cli.gascli, *args, "--wallet-path", str(wallets)) == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "no model given"),
        (["--audio-model", "{zip}", "--vertical", "human"], "not offered for audio"),
        (["--image-model", "{zip}", "--vertical", "sports"], "Invalid value for '--vertical'"),
        (["--image-model", "missing.zip"], "does not exist"),
        (["--image-model", "{zip}", "--netuid", "x"], "is not a valid integer"),
    ],
)
def test_gascli_argument_errors_exit_2(
    cli: Cli, tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    zip_path, _, _ = make_zip(tmp_path / "audio_detector.zip", "audio")
    args = [a.replace("{zip}", str(zip_path)) for a in args]
    assert cli.run(cli.gascli, "d", "push", *args) == 2
    assert message in capsys.readouterr().err
    assert cli.server.calls == {}


def test_gascli_missing_wallet_exit_2(
    cli: Cli, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    zip_path, _, _ = make_zip(tmp_path / "image_detector.zip", "image")
    code = cli.run(cli.gascli, "d", "push", "--image-model", str(zip_path), "--wallet-name", "x")
    assert code == 2
    err = capsys.readouterr().err
    assert "hotkeys/default" in err and "does not exist" in err


def test_gascli_help_lists_the_reference_flags(
    cli: Cli, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.run(cli.gascli, "d", "push", "--help") == 0
    out = capsys.readouterr().out
    for flag in (
        "--image-model",
        "--video-model",
        "--audio-model",
        "--wallet-name",
        "--wallet-hotkey",
        "--netuid",
        "--chain-endpoint",
        "--retry-delay",
        "--vertical",
    ):
        assert flag in out


def test_build_items_uses_plan_build(
    cli: Cli, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from types import SimpleNamespace

    from gasbuild import manifest, plan
    from gasbuild.cli.push import build_items

    seen = {}

    def fake_build(project, cache, options, on_findings=None):  # type: ignore[no-untyped-def]
        seen["only"], seen["cache"] = options.only, cache
        path, digest, size = make_zip(tmp_path / "video_detector.zip", "video")
        result = SimpleNamespace(modality="video", zip_path=path, sha256=digest, size=size)
        return SimpleNamespace(results=[result])

    monkeypatch.setattr(plan, "build", fake_build)
    project = manifest.load(cli.root / "gas.toml")
    [built] = build_items(project, frozenset({"video"}))
    assert seen["only"] == frozenset({"video"})
    assert (built.modality, built.hotkey_name) == ("video", "vid")


# -- the burn ---------------------------------------------------------------------------------

UPPER_TX = "0x" + "AB12" * 16


def share_image_hotkey(cli: Cli) -> None:
    """Put video on the image hotkey, whose free submission the image push spends."""
    manifest = cli.root / "gas.toml"
    manifest.write_text(manifest.read_text().replace('hotkey = "vid"', 'hotkey = "img"'))


def chain_burns(cli: Cli) -> list[dict[str, object]]:
    return list(json.loads(cli.chain_file.read_text()).get("burns", []))


def test_gascli_refuses_then_accepts_a_typed_burn_receipt(
    cli: Cli, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    image, _, _ = make_zip(tmp_path / "image_detector.zip", "image")
    video, _, _ = make_zip(tmp_path / "video_detector.zip", "video", b"v")
    wallet = ["--wallet-name", "miner", "--wallet-hotkey", "img", "--retry-delay", "1"]
    assert cli.run(cli.gascli, "d", "push", "--image-model", str(image), *wallet) == 0
    capsys.readouterr()
    assert cli.run(cli.gascli, "d", "push", "--video-model", str(video), *wallet) == 1
    err = capsys.readouterr().err
    assert "This registration has already used its one submission" in err
    assert "0.5 TAO worth of subnet-34 alpha" in err and "--burn-receipt TX_HASH:BLOCK" in err
    assert cli.server.total_confirmations == 1
    receipt = ["--burn-receipt", f"{UPPER_TX}:123"]
    assert cli.run(cli.gascli, "d", "push", "--video-model", str(video), *wallet, *receipt) == 0
    assert cli.server.bodies[-1]["burn_tx_hash"] == "ab12" * 16
    assert cli.server.bodies[-1]["burn_block"] == 123
    assert cli.server.confirmations == {cli.addresses["img"]: 2}
    assert chain_burns(cli) == []  # nothing burned here


def test_gasbuild_burn_asks_burns_records_and_pushes(
    cli: Cli, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    share_image_hotkey(cli)
    assert cli.run(cli.gasbuild, "push", "-C", str(cli.root), "--only", "image", "--yes") == 0
    capsys.readouterr()
    monkeypatch.setattr("sys.stdin", Terminal("y\ny\n"))  # push? burn?
    assert cli.run(cli.gasbuild, "burn", "-C", str(cli.root), "--modality", "video") == 0
    err = capsys.readouterr().err
    [burn] = chain_burns(cli)
    assert burn["hotkey"] == cli.addresses["img"]
    assert f"paid by coldkey {burn['coldkey']}" in err and "0.5 TAO worth of subnet-34 alpha" in err
    assert f"Burn with coldkey {burn['coldkey']}?" in err
    tx = str(burn["tx_hash"]).removeprefix("0x")
    assert cli.server.bodies[-1]["burn_tx_hash"] == tx
    record = json.loads((cli.root / ".gasbuild" / "receipts" / "burns" / f"{tx}.json").read_text())
    assert record["status"] == "spent" and record["source"] == "burned"
    assert cli.server.confirmations == {cli.addresses["img"]: 2}


def test_burn_declined_at_the_prompt(
    cli: Cli, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    share_image_hotkey(cli)
    assert cli.run(cli.gasbuild, "push", "-C", str(cli.root), "--only", "image", "--yes") == 0
    monkeypatch.setattr("sys.stdin", Terminal("y\nn\n"))
    assert cli.run(cli.gasbuild, "push", "-C", str(cli.root), "--only", "video", "--burn") == 1
    assert "burn declined; nothing was burned" in capsys.readouterr().err
    assert chain_burns(cli) == [] and cli.server.total_confirmations == 1


def test_burn_with_yes_does_not_ask_but_shows_the_cost(
    cli: Cli, capsys: pytest.CaptureFixture[str]
) -> None:
    share_image_hotkey(cli)
    args = ("burn", "-C", str(cli.root), "--modality", "video", "--yes", "--json")
    assert cli.run(cli.gasbuild, "push", "-C", str(cli.root), "--only", "image", "--yes") == 0
    capsys.readouterr()
    assert cli.run(cli.gasbuild, *args) == 0
    captured = capsys.readouterr()
    assert "paid by coldkey" in captured.err and "Burn with coldkey" not in captured.err
    report = json.loads(captured.out)
    [model] = report["models"]
    assert model["status"] == "pushed" and type(model["model_id"]) is int
    [burn] = chain_burns(cli)
    assert model["burn_tx_hash"] == str(burn["tx_hash"]).removeprefix("0x")


def test_burn_on_a_fresh_hotkey_burns_nothing(cli: Cli, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.run(cli.gasbuild, "burn", "-C", str(cli.root), "--modality", "video", "--yes") == 0
    assert chain_burns(cli) == [] and cli.server.total_confirmations == 1


def test_burn_without_terminal_or_yes_is_refused(
    cli: Cli, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.run(cli.gasbuild, "burn", "-C", str(cli.root), "--modality", "video") == 2
    assert "pass --yes" in capsys.readouterr().err
    assert cli.server.calls == {} and chain_burns(cli) == []


def test_gascli_offers_the_burn_on_a_terminal(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    image, _, _ = make_zip(tmp_path / "image_detector.zip", "image")
    audio, _, _ = make_zip(tmp_path / "audio_detector.zip", "audio", b"a")
    wallet = ["--wallet-name", "miner", "--wallet-hotkey", "img"]
    assert cli.run(cli.gascli, "d", "push", "--image-model", str(image), *wallet) == 0
    monkeypatch.setattr("sys.stdin", Terminal("y\n"))
    assert cli.run(cli.gascli, "d", "push", "--audio-model", str(audio), *wallet) == 0
    assert "Burn with coldkey" in capsys.readouterr().err
    assert len(chain_burns(cli)) == 1 and cli.server.total_confirmations == 2


def test_gascli_help_lists_burn_receipt(cli: Cli, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.run(cli.gascli, "d", "push", "--help") == 0
    assert "--burn-receipt" in capsys.readouterr().out
