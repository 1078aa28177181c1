"""Issue 15: the push confirmation never prints the credentials of GASBUILD_UPLOAD_URL."""

from __future__ import annotations

import io
import json
from pathlib import Path

import click
import pytest

pytest.importorskip("bittensor_wallet")

from fakes.gas_api import serve_gas_api
from fakes.publishing import make_wallet, make_zip
from gasbuild.cli import _run
from gasbuild.cli.push import register
from gasbuild.manifest import Project
from gasbuild.publish.push import PushItem, no_checks
from gasbuild.publish.status import hotkey_name
from gasbuild.submission import Modality, zip_name

SECRET = "pl4ntedUPLOADsecret"
MANIFEST = """\
[wallet]
name = "miner"
hotkey = "img"
path = "{wallets}"

[models.image]
architecture = {{ file = "model.py" }}
weights = {{ path = "w.safetensors" }}
"""


def built_zips(project: Project, only: frozenset[Modality] | None) -> list[PushItem]:
    path = project.out_dir / zip_name("image")
    zip_path, digest, size = make_zip(path, "image", b"image")
    return [PushItem("image", zip_path, digest, size, hotkey_name(project, "image"))]


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_confirmation_prompt_redacts_the_upload_urls_credentials(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "home"
    wallets = home / ".bittensor" / "wallets"
    addresses = make_wallet(wallets, "miner", ("img",))
    chain_file = tmp_path / "chain.json"
    chain_file.write_text(json.dumps({"registered": sorted(addresses.values())}))
    root = tmp_path / "project"
    root.mkdir()
    (root / "gas.toml").write_text(MANIFEST.format(wallets=wallets))
    gasbuild, discriminator = click.Group("gasbuild"), click.Group("discriminator")
    register(gasbuild, discriminator, checker=no_checks, builder=built_zips)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GASBUILD_CHAIN", f"memory:{chain_file}")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setattr("sys.stdin", Terminal("n\n"))
    with serve_gas_api() as server:
        url = server.base_url.replace("http://", f"http://miner:{SECRET}@")
        monkeypatch.setenv("GASBUILD_UPLOAD_URL", f"{url}?api_key={SECRET}")
        code = _run(gasbuild, ["push", "-C", str(root)], "gasbuild")
    captured = capsys.readouterr()
    assert code == 1  # declined ("n"): nothing pushed
    assert "about to push to http://***@127.0.0.1" in captured.err
    assert "api_key=***" in captured.err
    assert SECRET not in captured.out + captured.err
    assert server.calls == {}
