"""A project's push settings and status: the glue between a gas.toml and the publisher.

``gasbuild push``, ``burn``, ``status`` and ``eval``'s gate read gas.toml's [wallet], [network]
and [publish] tables through here; ``model_status`` is the table ``gasbuild status`` prints.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gasbuild.blobs import expand_user, sha256_file
from gasbuild.errors import GasbuildError, TransportError, display_path
from gasbuild.resources import STATE_DIR
from gasbuild.submission import Modality

if TYPE_CHECKING:
    from pathlib import Path

    from gasbuild.manifest import Project
    from gasbuild.publish.push import PushSettings
    from gasbuild.publish.receipts import Receipt


def hotkey_name(project: Project, modality: str) -> str:
    """``[models.X] hotkey``, else ``[wallet] hotkey``."""
    spec = getattr(project.manifest.models, modality)
    return (spec.hotkey if spec is not None else None) or project.manifest.wallet.hotkey


def project_settings(project: Project, **overrides: Any) -> PushSettings:
    """PushSettings from gas.toml's [wallet] and [network]; ``overrides`` win when not None."""
    from gasbuild.publish.push import PushSettings

    wallet, network = project.manifest.wallet, project.manifest.network
    values: dict[str, Any] = {
        "wallet_name": wallet.name,
        "wallet_path": _wallet_path(project, wallet.path),
        "netuid": network.netuid,
        "vertical": network.vertical,
        "upload_url": network.upload_url,
        "chain_endpoint": network.chain_endpoint,
        "state_dir": project.root / STATE_DIR,
        "mirror_url": _mirror_url(project),
    }
    values.update({k: v for k, v in overrides.items() if v is not None})
    return PushSettings(**values)


def _mirror_url(project: Project) -> str | None:
    """``[publish] mirror``: where pushed zips and receipts are also archived."""
    return project.manifest.publish.mirror


def _wallet_path(project: Project, path: str | None) -> str | None:
    if not path:
        return None
    resolved = expand_user(path)
    return str(resolved if resolved.is_absolute() else project.root / resolved)


@dataclass
class StatusReport:
    """``gasbuild status``: one row per declared model, and the chain's failure if it failed.

    ``chain_error`` is the first failure of the chain; once the chain failed, it is not asked
    again for the other rows (each attempt could cost a whole deadline), so a chain that cannot
    be reached costs one deadline, not one per model.
    """

    rows: list[dict[str, Any]]
    chain_error: GasbuildError | None = None


class _ChainOnce:
    """The chain, asked until its first failure, which then stands for every later question."""

    def __init__(self, open_chain: Callable[[], Any]) -> None:
        self._open = open_chain
        self._chain: Any = None
        self.failure: GasbuildError | None = None

    def commitment(self, ss58: str, netuid: int) -> str | None:
        if self.failure is not None:
            raise self.failure
        try:
            if self._chain is None:
                self._chain = self._open()
            result: str | None = self._chain.get_commitment(ss58, netuid)
            return result
        except GasbuildError as error:
            self.failure = error
            raise


def model_status(
    project: Project, only: frozenset[Modality] | None, *, chain_endpoint: str | None = None
) -> StatusReport:
    """One row per declared model: local zip, receipt state, and whether the chain agrees."""
    from gasbuild.publish.chain import CommitmentTooLong, chain_from_env, commitment_string
    from gasbuild.publish.receipts import ReceiptStore
    from gasbuild.publish.wallet import load_hotkey_address
    from gasbuild.submission import zip_name

    settings = project_settings(project, chain_endpoint=chain_endpoint)
    store = ReceiptStore(settings.state_dir)
    chain = _ChainOnce(lambda: chain_from_env(settings.netuid, settings.chain_endpoint))
    rows = []
    for target in project.targets(only):
        path = project.out_dir / zip_name(target.modality)
        digest = sha256_file(path) if path.is_file() else None
        receipt = store.load(digest) if digest else None
        name = hotkey_name(project, target.modality)
        ss58 = load_hotkey_address(settings.wallet_name, name, settings.wallet_path)
        ss58 = ss58 or (receipt.hotkey_ss58 if receipt else None)
        expected = None
        if receipt and receipt.r2_key and digest and ss58:
            try:
                expected = commitment_string(receipt.r2_key, digest, ss58)
            except CommitmentTooLong:
                expected = None  # cannot be committed; "other commitment" if any is there
        rows.append(
            {
                "modality": target.modality,
                "zip": display_path(path) if digest else f"{display_path(path)} (not built)",
                "sha256": digest,
                "hotkey": ss58,
                "receipt": receipt.state if receipt else None,
                "model": receipt.model_id if receipt else None,
                "chain": _chain_state(chain, ss58, settings.netuid, expected),
            }
        )
        rows[-1].update(_last_eval(settings.state_dir, digest, receipt))
    return StatusReport(rows, chain.failure)


def _last_eval(state_dir: Path, digest: str | None, receipt: Receipt | None) -> dict[str, Any]:
    """This zip's last `gasbuild eval` (or push gate): ``eval``, its sn34 score for the table,
    and ``last_eval``, its figures (for ``--json``). The local record is the newest; the
    receipt's copy stands in when that was deleted (or the receipt came from another machine).
    """
    from gasbuild.eval.gate import summary

    found = summary(state_dir, digest) if digest else None
    if found is None and receipt is not None:
        found = receipt.eval
    score = found.get("sn34_score") if found else None
    text = f"{score:.4f}" if isinstance(score, int | float) else None
    return {"eval": text, "last_eval": found}


def _chain_state(chain: _ChainOnce, ss58: str | None, netuid: int, expected: str | None) -> str:
    if ss58 is None:
        return "unknown (hotkey not found)"
    try:
        current = chain.commitment(ss58, netuid)
    except TransportError:
        return "unknown (chain unreachable)"
    except GasbuildError:
        return "unknown (chain error)"
    if current is None:
        return "no commitment"
    if expected is None:
        return "other commitment"
    return "matches" if current == expected else "differs"
