"""Helpers for the push tests: throwaway wallets, tiny zips, a fake clock, recorded events."""

from __future__ import annotations

import hashlib
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from gasbuild.check.findings import Finding
from gasbuild.publish.push import Events, PushItem


def make_wallet(path: Path, name: str, hotkeys: tuple[str, ...] = ("default",)) -> dict[str, str]:
    """Create an unencrypted wallet under ``path``; return hotkey name -> ss58 address."""
    from bittensor_wallet import Wallet

    addresses = {}
    for index, hotkey in enumerate(hotkeys):
        wallet = Wallet(name=name, hotkey=hotkey, path=str(path))
        if index == 0:
            wallet.create_new_coldkey(use_password=False, overwrite=True, suppress=True)
        wallet.create_new_hotkey(use_password=False, overwrite=True, suppress=True)
        addresses[hotkey] = wallet.hotkey.ss58_address
    return addresses


def make_zip(path: Path, modality: str, payload: bytes = b"weights") -> tuple[Path, str, int]:
    """A small zip standing in for a submission (byte-identical for the same input, as a real
    build is); returns (path, sha256, size)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    entries = {
        "model_config.yaml": f'name: "t"\nmodality: "{modality}"\n'.encode(),
        "model.py": b"def load_model(weights_path):\n    return None\n",
        "model.safetensors": payload * 64,
    }
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in entries.items():
            archive.writestr(zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0)), data)
    data = path.read_bytes()
    return path, hashlib.sha256(data).hexdigest(), len(data)


def item(path: Path, modality: str, hotkey: str = "default", payload: bytes = b"w") -> PushItem:
    zip_path, digest, size = make_zip(path / f"{modality}_detector.zip", modality, payload)
    return PushItem(modality, zip_path, digest, size, hotkey)  # type: ignore[arg-type]


@dataclass
class FakeClock:
    """Wall clock and monotonic clock in one; ``sleep`` advances both and is recorded."""

    now: float = 1_000_000.0
    sleeps: list[float] = field(default_factory=list)

    def time(self) -> float:
        return self.now

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@dataclass
class RecordingEvents(Events):
    infos: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    countdowns: list[tuple[str, float]] = field(default_factory=list)
    checked: list[str] = field(default_factory=list)
    sent: list[int] = field(default_factory=list)

    def info(self, message: str) -> None:
        self.infos.append(message)

    def warning(self, message: str) -> None:
        self.warnings.append(message)

    def findings(self, origin: str, findings: list[Finding]) -> None:
        self.checked.append(origin)

    def progress(self, label: str, sent: int, total: int) -> None:
        self.sent.append(sent)

    def countdown(self, label: str, seconds_left: float) -> None:
        self.countdowns.append((label, seconds_left))
