"""Loading a bittensor hotkey to sign uploads and commitments, without ever exposing a secret.

The coldkey is touched only for a burn: its public address (for the question "burn with this
coldkey?") comes from ``coldkeypub.txt``, and the key itself is unlocked only to sign the burn.

A :class:`Hotkey` holds the unlocked keypair and the wallet it came from, and shows only public
facts (wallet name, hotkey name, ss58 address) in ``repr``/``str``. Nothing here prints, logs or
writes key material, and error messages from the wallet library are not passed on verbatim
(they are about files, but a message is not the place to find out).

bittensor-wallet is imported inside the functions: ``gasbuild build`` must work without it.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gasbuild.errors import UserError

DEFAULT_WALLET_PATH = "~/.bittensor/wallets"


@dataclass(frozen=True, eq=False, repr=False)
class Hotkey:
    """An unlocked hotkey: signs Epistula requests; ``wallet`` is what the chain SDK needs."""

    wallet_name: str
    hotkey_name: str
    wallet_path: str
    ss58_address: str
    _wallet: Any = field(compare=False)
    _keypair: Any = field(compare=False)

    def sign(self, data: bytes) -> bytes:
        """sr25519 signature of ``data`` (64 bytes)."""
        return bytes(self._keypair.sign(data))

    @property
    def wallet(self) -> Any:
        """The ``bittensor_wallet.Wallet`` (bittensor 10's ``set_commitment`` takes a wallet)."""
        return self._wallet

    @property
    def keypair(self) -> Any:
        """The hotkey ``Keypair`` (bittensor 11 signs raw calls with any keypair)."""
        return self._keypair

    def __repr__(self) -> str:
        return f"Hotkey({self.wallet_name}/{self.hotkey_name} {self.ss58_address})"

    __str__ = __repr__

    @classmethod
    def from_keypair(cls, keypair: Any, *, wallet: Any = None, name: str = "test") -> Hotkey:
        """Wrap a bare keypair (tests, and callers that load keys their own way)."""
        return cls(name, name, "", str(keypair.ss58_address), wallet, keypair)


def wallet_dir(path: str | None) -> str:
    """The wallets directory as the wallet library reads it (``~`` expanded for messages)."""
    return str(Path(path or DEFAULT_WALLET_PATH).expanduser())


def load_hotkey(name: str, hotkey: str, path: str | None = None) -> Hotkey:
    """Load (and, if encrypted, unlock) hotkey ``hotkey`` of wallet ``name``.

    Raises UserError (exit 2) naming the file when it is missing or cannot be unlocked. An
    encrypted hotkey prompts for its password only on a terminal; without one, the password must
    come from the environment variable the wallet library reads, which the message names.
    """
    try:
        from bittensor_wallet import Wallet
    except ImportError:
        raise UserError(
            "pushing needs bittensor-wallet", hint="pip install 'gasbuild[chain]'"
        ) from None
    base = wallet_dir(path)
    wallet = Wallet(name=name, hotkey=hotkey, path=base)
    keyfile = wallet.hotkey_file
    where = str(keyfile.path)
    if not keyfile.exists_on_device():
        raise UserError(
            f"hotkey {hotkey!r} of wallet {name!r} not found: {where} does not exist",
            hint=_missing_hint(name, hotkey, base),
        )
    _refuse_silent_prompt(keyfile, where)
    try:
        keypair = wallet.hotkey
    except Exception as exc:  # KeyFileError/PasswordError; their text is not repeated
        raise UserError(
            f"cannot unlock hotkey {where} ({type(exc).__name__})",
            hint="check the file's permissions, and its password if it is encrypted",
        ) from None
    return Hotkey(name, hotkey, base, str(keypair.ss58_address), wallet, keypair)


def coldkey_address(hotkey: Hotkey) -> str:
    """The ss58 address of the coldkey that would pay a burn, from its public file only."""
    wallet = _wallet_of(hotkey)
    pubfile = wallet.coldkeypub_file
    where = str(pubfile.path)
    if not pubfile.exists_on_device():
        raise UserError(
            f"the coldkey of wallet {hotkey.wallet_name!r} is not here: {where} does not exist",
            hint="a burn is paid by the wallet's coldkey; run it on the machine that holds it,"
            " or burn elsewhere and pass --burn-receipt",
        )
    try:
        return str(wallet.coldkeypub.ss58_address)
    except Exception as exc:  # unreadable public file; its text is not repeated
        raise UserError(f"cannot read {where} ({type(exc).__name__})") from None


def unlock_coldkey(hotkey: Hotkey) -> Any:
    """The wallet's coldkey keypair, for signing a burn (asks for its password on a terminal).

    Only the SDK that signs ever sees it; nothing here prints or stores it.
    """
    wallet = _wallet_of(hotkey)
    keyfile = wallet.coldkey_file
    where = str(keyfile.path)
    if not keyfile.exists_on_device():
        raise UserError(
            f"the coldkey of wallet {hotkey.wallet_name!r} is not here: {where} does not exist",
            hint="run the burn on the machine that holds the coldkey, or burn elsewhere and"
            " pass --burn-receipt",
        )
    _refuse_silent_prompt(keyfile, where)
    try:
        return wallet.coldkey
    except Exception as exc:  # KeyFileError/PasswordError; their text is not repeated
        raise UserError(
            f"cannot unlock coldkey {where} ({type(exc).__name__})",
            hint="check the file's permissions and its password",
        ) from None


def _wallet_of(hotkey: Hotkey) -> Any:
    if hotkey.wallet is None:
        raise UserError(f"{hotkey} was not loaded from a wallet, so it has no coldkey to burn with")
    return hotkey.wallet


def load_hotkey_address(name: str, hotkey: str, path: str | None = None) -> str | None:
    """The hotkey's ss58 address from its public file, never decrypting anything (for status)."""
    try:
        from bittensor_wallet import Wallet
    except ImportError:
        return None
    wallet = Wallet(name=name, hotkey=hotkey, path=wallet_dir(path))
    try:
        if wallet.hotkeypub_file.exists_on_device():
            return str(wallet.get_hotkeypub().ss58_address)
        keyfile = wallet.hotkey_file
        if keyfile.exists_on_device() and not keyfile.is_encrypted():
            return str(wallet.get_hotkey().ss58_address)
    except Exception:  # unreadable files: status shows the address as unknown
        return None
    return None


def _refuse_silent_prompt(keyfile: Any, where: str) -> None:
    """An encrypted key with no terminal and no password variable would hang on a prompt."""
    try:
        encrypted = bool(keyfile.is_encrypted())
    except Exception:
        return
    if not encrypted or sys.stdin.isatty():
        return
    variable = str(keyfile.env_var_name())
    if os.environ.get(variable):
        return
    raise UserError(
        f"hotkey {where} is encrypted and there is no terminal to ask for its password",
        hint=f"set {variable} in the environment, or run on a terminal",
    )


def _missing_hint(name: str, hotkey: str, base: str) -> str:
    return (
        f"create it with `btcli wallet new_hotkey --wallet.name {name} --wallet.hotkey {hotkey}`,"
        f" or point [wallet] path (gas.toml) at the directory holding {name}/ (looked in {base})"
    )
