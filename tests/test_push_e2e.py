"""End to end, as a miner runs it: build, check and push the bundled example through the real
CLI (subprocesses), against the fake GAS upload API on 127.0.0.1 and the in-memory chain file,
then `gasbuild status`; and the same zips through `gascli d push`."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import EXAMPLES
from fakes.gas_api import serve_gas_api
from fakes.publishing import make_wallet
from gasbuild.publish.chain import MemoryChain

pytestmark = pytest.mark.slow


def _setup(tmp_path: Path) -> tuple[Path, dict[str, str], dict[str, str]]:
    wallets = tmp_path / "home" / ".bittensor" / "wallets"  # where gascli (no path flag) looks
    addresses = make_wallet(wallets, "miner", ("image", "video", "audio"))
    project = tmp_path / "project"
    shutil.copytree(
        EXAMPLES / "quickstart", project, ignore=shutil.ignore_patterns("dist", "gas.lock")
    )
    manifest = project / "gas.toml"
    text = re.sub(
        r'(\[wallet\]\n)name = "default"',
        f'\\1name = "miner"\npath = "{wallets}"',
        manifest.read_text(),
        count=1,
    )
    manifest.write_text(text)
    chain_file = tmp_path / "chain.json"
    chain_file.write_text(json.dumps({"registered": sorted(addresses.values())}))
    env = {
        **os.environ,
        "GASBUILD_CHAIN": f"memory:{chain_file}",
        "GASBUILD_CACHE_DIR": str(tmp_path / "cache"),
        "NO_PROXY": "127.0.0.1,localhost",
        "HOME": str(tmp_path / "home"),
    }
    return project, addresses, env


def _run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args,
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=600,
    )


def test_push_the_example_then_status_then_gascli(tmp_path: Path) -> None:
    project, addresses, env = _setup(tmp_path)
    gasbuild = [sys.executable, "-m", "gasbuild"]
    with serve_gas_api() as server:
        env["GASBUILD_UPLOAD_URL"] = server.base_url
        pushed = _run([*gasbuild, "push", "-C", str(project), "--yes", "--json"], env, tmp_path)
        assert pushed.returncode == 0, pushed.stderr
        report = json.loads(pushed.stdout)
        assert [m["modality"] for m in report["models"]] == ["image", "video", "audio"]
        assert [m["hotkey"] for m in report["models"]] == [
            addresses["image"],
            addresses["video"],
            addresses["audio"],
        ]
        assert server.total_confirmations == 3
        chain = MemoryChain(tmp_path / "chain.json")
        for model in report["models"]:
            assert chain.get_commitment(model["hotkey"], 34) == model["commitment"]
            zip_path = project / "dist" / f"{model['modality']}_detector.zip"
            assert model["sha256"] == hashlib.sha256(zip_path.read_bytes()).hexdigest()

        status = _run([*gasbuild, "status", "-C", str(project), "--json"], env, tmp_path)
        assert status.returncode == 0, status.stderr
        rows = json.loads(status.stdout)["models"]
        assert [(r["receipt"], r["chain"]) for r in rows] == [("verified", "matches")] * 3

        again = _run([*gasbuild, "push", "-C", str(project), "--yes"], env, tmp_path)
        assert again.returncode == 0, again.stderr
        assert server.calls["put"] == 3, "a re-run uploads nothing"

    with serve_gas_api() as fresh:  # the reference flags, on the zips just built
        env["GASBUILD_UPLOAD_URL"] = fresh.base_url
        elsewhere = tmp_path / "elsewhere"
        elsewhere.mkdir()
        gascli = [sys.executable, "-c", "from gasbuild.cli import gascli_main; gascli_main()"]
        hotkey = ["--wallet-name", "miner", "--wallet-hotkey", "image", "--retry-delay", "1"]
        image = str(project / "dist" / "image_detector.zip")
        legacy = _run([*gascli, "d", "push", "--image-model", image, *hotkey], env, elsewhere)
        assert legacy.returncode == 0, legacy.stderr
        assert fresh.total_confirmations == 1
        # one free submission per hotkey: a second modality on it needs a burn receipt
        audio = str(project / "dist" / "audio_detector.zip")
        second = _run([*gascli, "d", "push", "--audio-model", audio, *hotkey], env, elsewhere)
        assert second.returncode == 1
        assert "This registration has already used its one submission" in second.stderr
        assert "--burn-receipt" in second.stderr and "0.5 TAO" in second.stderr
        assert "Traceback" not in second.stderr
        assert fresh.total_confirmations == 1
        # a burn made elsewhere, pasted as 0x + upper case, is sent in BitMind's form
        receipt = ["--burn-receipt", "0x" + "C0FFEE00" * 8 + ":4242"]
        third = _run(
            [*gascli, "d", "push", "--audio-model", audio, *hotkey, *receipt], env, elsewhere
        )
        assert third.returncode == 0, third.stderr
        assert fresh.bodies[-1]["burn_tx_hash"] == "c0ffee00" * 8
        assert fresh.bodies[-1]["burn_block"] == 4242
        assert fresh.confirmations == {addresses["image"]: 2}
        assert [type(body["model_id"]) for body in fresh.confirm_bodies] == [int, int]


def test_push_the_example_through_faults(tmp_path: Path) -> None:
    """Lost answers, a reset upload and 5xx: every modality is confirmed exactly once."""
    project, addresses, env = _setup(tmp_path)
    with serve_gas_api() as server:
        server.reservation_seconds = 3.0
        server.reservation_retry_after = "1"
        server.fault("presigned", "lost")  # reserved, then the answer is lost
        server.fault("put", "reset")
        # applied, then the answer is lost: the retry must not count twice
        server.fault("confirm", "lost", "503")
        env["GASBUILD_UPLOAD_URL"] = server.base_url
        gasbuild = [sys.executable, "-m", "gasbuild", "push", "-C", str(project), "--yes", "--json"]
        pushed = _run(gasbuild, env, tmp_path)
        assert pushed.returncode == 0, pushed.stderr
        report = json.loads(pushed.stdout)
        assert [m["status"] for m in report["models"]] == ["pushed"] * 3
        assert server.confirmations == {a: 1 for a in addresses.values()}
        assert sum(u.confirmed for u in server.uploads.values()) == 3
        assert "already in progress" in pushed.stderr, pushed.stderr  # waited the reservation out
        for model in report["models"]:
            assert type(model["model_id"]) is int and model["verified"]


def test_push_refuses_a_failing_zip_before_uploading_anything(tmp_path: Path) -> None:
    project, _, env = _setup(tmp_path)
    audio = project / "models" / "audio_model.py"
    audio.write_text("import os\n" + audio.read_text())
    with serve_gas_api() as server:
        env["GASBUILD_UPLOAD_URL"] = server.base_url
        result = _run(
            [sys.executable, "-m", "gasbuild", "push", "-C", str(project), "--yes"], env, tmp_path
        )
        assert result.returncode == 1, result.stderr
        assert "GAS303" in result.stderr
        assert server.calls.get("presigned", 0) == 0 and server.calls.get("put", 0) == 0
