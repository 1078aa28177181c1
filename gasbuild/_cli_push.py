"""The push commands: ``gasbuild push``, ``gasbuild status`` and ``gascli d push``.

``register(cli, discriminator)`` adds them to the two click groups of ``gasbuild.cli``. Kept in
their own module so the CLI's import stays cheap (publishing pulls in httpx and, on first use,
the chain SDK) and so tests can register them on fresh groups with a builder and a checker of
their own; the real commands always build from the cache and run gasbuild's checks.

``gascli d push`` keeps the reference client's flags exactly, but runs gasbuild's push: checks
first, nothing uploaded until every modality passed preflight, resumable, and argument errors
exit 2 (the reference exits 0 on them).
"""

from __future__ import annotations

import functools
import hashlib
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from gasbuild._cliopts import checked_only, project_options, smoke_limit_options
from gasbuild.errors import UsageError, display_path
from gasbuild.submission import MODALITIES, Modality

if TYPE_CHECKING:  # the publish modules (httpx, pydantic) load only when a command runs
    from gasbuild.manifest import Project
    from gasbuild.publish.gasapi import BurnReceipt
    from gasbuild.publish.push import Checker, Events, PushItem, PushPlan, PushReport, PushSettings

Builder = Callable[["Project", "frozenset[Modality] | None"], "list[PushItem]"]

STATE_DIR = ".gasbuild"
GASCLI_RESUME = "the same `gascli d push` command (it resumes from the receipts)"


@dataclass(frozen=True)
class Hooks:
    """Seams for tests: how zips are built and checked. None means the real thing."""

    checker: Checker | None = None
    builder: Builder | None = None


def register(
    cli_group: click.Group,
    discriminator_group: click.Group,
    *,
    checker: Checker | None = None,
    builder: Builder | None = None,
) -> None:
    """Add ``push`` and ``status`` to ``cli_group`` and ``push`` to ``discriminator_group``."""
    hooks = Hooks(checker, builder)
    cli_group.add_command(_push_command(hooks), "push")
    cli_group.add_command(_status_command(), "status")
    discriminator_group.add_command(_gascli_push_command(hooks), "push")


# -- gasbuild push ------------------------------------------------------------------------


_project_options = project_options


def _push_command(hooks: Hooks) -> click.Command:
    @click.command("push")
    @_project_options
    @click.option("--only", metavar="MODALITIES", help="Comma-separated subset: image,video,audio.")
    @click.option("--dry-run", is_flag=True, help="Preflight only: show what would be pushed.")
    @click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
    @click.option("--json", "as_json", is_flag=True, help="Print the report as JSON on stdout.")
    @click.option(
        "--commit-only", is_flag=True, help="Only (re)commit uploads the receipts say are done."
    )
    @click.option(
        "--burn-receipt",
        "burn_receipts",
        multiple=True,
        metavar="MODALITY=TX_HASH:BLOCK",
        help="Burn receipt for a further counted submission on a hotkey; repeatable.",
    )
    @click.option("--chain-endpoint", metavar="URL", help="Subtensor endpoint (default by netuid).")
    @click.option(
        "--no-smoke", is_flag=True, help="Skip the smoke test (in the build and the checks)."
    )
    @smoke_limit_options
    def push_command(
        directory: Path | None,
        manifest_file: Path | None,
        only: str | None,
        dry_run: bool,
        yes: bool,
        as_json: bool,
        commit_only: bool,
        burn_receipts: Sequence[str],
        chain_endpoint: str | None,
        no_smoke: bool,
        smoke_memory: int | None,
        smoke_timeout: float | None,
    ) -> None:
        """Build (from the cache) and push the zips to GAS, then commit them on chain.

        \b
        Preflight first: wallets, registration and checks for every modality; nothing is
        uploaded unless all pass. Receipts in .gasbuild/receipts make a re-run resume.
        Exit status: 0 pushed, 1 push failed, 2 usage or configuration error.
        """
        from gasbuild import manifest

        _require_consent(yes or dry_run)
        project = manifest.load(manifest.find_manifest(directory, manifest_file))
        chosen = checked_only(project, only)
        burns = _parse_burns(burn_receipts)
        builder = hooks.builder or functools.partial(
            build_items,
            smoke=not no_smoke,
            smoke_memory_mb=smoke_memory,
            smoke_timeout=smoke_timeout,
        )
        items = builder(project, chosen)
        settings = project_settings(
            project,
            dry_run=dry_run,
            commit_only=commit_only,
            burn_receipts=burns,
            chain_endpoint=chain_endpoint,
        )
        section = project.manifest.build
        checker = hooks.checker or _real_checker(
            smoke=not no_smoke,
            memory_mb=smoke_memory or section.smoke_memory,
            timeout=smoke_timeout or section.smoke_timeout,
        )
        _push_and_report(items, settings, checker, as_json, confirm=not (yes or dry_run))

    return push_command


def _require_consent(given: bool) -> None:
    """A push spends a submission slot: ask on a terminal, and refuse silently-unattended."""
    if given or sys.stdin.isatty():
        return
    raise UsageError(
        "refusing to push without confirmation: there is no terminal to ask",
        hint="pass --yes to push non-interactively (or --dry-run to only preview)",
    )


def _real_checker(
    *, smoke: bool, memory_mb: int | None = None, timeout: float | None = None
) -> Checker:
    from gasbuild.publish.push import make_checker

    return make_checker(smoke=smoke, smoke_memory_mb=memory_mb, smoke_timeout=timeout)


def _parse_burns(values: Sequence[str]) -> dict[str, BurnReceipt]:
    from gasbuild.publish.gasapi import BurnReceipt

    burns: dict[str, BurnReceipt] = {}
    for value in values:
        modality, sep, receipt = value.partition("=")
        modality = modality.strip()
        if not sep or modality not in MODALITIES:
            raise UsageError(
                f"--burn-receipt {value!r}: expected MODALITY=TX_HASH:BLOCK",
                hint=f"MODALITY is one of {', '.join(MODALITIES)}",
            )
        if modality in burns:
            raise UsageError(f"--burn-receipt: {modality} given twice")
        try:
            burns[modality] = BurnReceipt.parse(receipt)
        except ValueError as exc:
            raise UsageError(f"--burn-receipt {modality}: {exc}") from None
    return burns


def build_items(
    project: Project,
    only: frozenset[Modality] | None,
    *,
    smoke: bool = True,
    smoke_memory_mb: int | None = None,
    smoke_timeout: float | None = None,
) -> list[PushItem]:
    """Build the declared zips (cache hits make this cheap) and describe them for the push.

    ``smoke=False`` (``push --no-smoke``) skips the smoke test in this build as well as in the
    pre-push checks: one flag, one meaning.
    """
    from gasbuild import plan, ui
    from gasbuild._cliopts import open_cache
    from gasbuild.publish.push import PushItem

    cache = open_cache(project)  # with the [cache] remote, as `gasbuild build` uses it
    try:
        report = plan.build(
            project,
            cache,
            plan.BuildOptions(
                only=only,
                smoke=smoke,
                smoke_memory_mb=smoke_memory_mb,
                smoke_timeout=smoke_timeout,
            ),
            on_findings=ui.print_findings,
        )
    finally:
        ui.stop_progress()
    return [
        PushItem(r.modality, r.zip_path, r.sha256, r.size, hotkey_name(project, r.modality))
        for r in report.results
    ]


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
    resolved = Path(path).expanduser()
    return str(resolved if resolved.is_absolute() else project.root / resolved)


def _push_and_report(
    items: list[PushItem],
    settings: PushSettings,
    checker: Checker,
    as_json: bool,
    *,
    confirm: bool,
) -> None:
    from gasbuild import ui
    from gasbuild.publish.push import push

    events = _cli_events()
    try:
        report = push(
            items,
            settings,
            checker=checker,
            events=events,
            confirm=_confirm_plan if confirm else None,
        )
    finally:
        ui.stop_progress()
    if as_json:
        ui.print_json(report.to_json())
    else:
        _print_report(report)
    report.raise_for_error()


def _confirm_plan(plan: PushPlan) -> None:
    """Show the plan on stderr (stdout may be --json) and ask; declining aborts (exit 130)."""
    from gasbuild import ui

    settings = plan.settings
    lines = [
        f"about to push to {plan.upload_url} (subnet {settings.netuid},"
        f" vertical {settings.vertical}):"
    ]
    for p in plan.items:
        state = p.receipt.state if p.receipt else "new"
        lines.append(
            f"  {p.item.modality:<6} {display_path(p.item.zip_path)}  sha256 {p.item.sha256[:16]}"
            f"  {ui.human_size(p.item.size)}  hotkey {p.hotkey.hotkey_name}"
            f" ({p.hotkey.ss58_address})  receipt: {state}"
        )
    ui.err.print("\n".join(lines), markup=False, highlight=False)
    click.confirm(
        "Each new upload uses this hotkey's submission. Push?", default=False, abort=True, err=True
    )


def _print_report(report: PushReport) -> None:
    from gasbuild import ui

    rows = []
    for item in report.items:
        receipt = item.receipt
        chain = "-"
        if receipt is not None:
            chain = "verified" if receipt.verified else "sent" if receipt.committed else "no"
        rows.append(
            [
                item.modality,
                display_path(item.zip_path),
                item.sha256[:16],
                item.hotkey_ss58,
                item.status,
                (receipt.model_id or "-") if receipt else "-",
                chain,
            ]
        )
    title = "gasbuild push --dry-run (nothing uploaded)" if report.dry_run else "gasbuild push"
    ui.table(title, ["modality", "zip", "sha256", "hotkey", "status", "model", "chain"], rows)


def _cli_events() -> Events:
    """Events on stderr (stdout is the report); built here so push loads only when it runs."""
    from gasbuild import ui
    from gasbuild.publish.push import Events

    class CliEvents(Events):
        def __init__(self) -> None:
            self._bars: dict[str, tuple[Callable[[int], None], int]] = {}
            self._last_countdown: dict[str, int] = {}

        def info(self, message: str) -> None:
            ui.err.print(message, markup=False, highlight=False)

        def warning(self, message: str) -> None:
            ui.print_warning(message)

        def findings(self, origin: str, findings: list[Any]) -> None:
            ui.print_findings(origin, findings)

        def progress(self, label: str, sent: int, total: int) -> None:
            bar = self._bars.get(label)
            if bar is None or sent < bar[1]:
                if bar is not None:
                    bar[0](-1)
                bar = (ui.progress_factory()(f"upload {label}", total), 0)
            advance, before = bar
            advance(sent - before)
            if sent >= total:
                advance(-1)
                self._bars.pop(label, None)
            else:
                self._bars[label] = (advance, sent)

        def countdown(self, label: str, seconds_left: float) -> None:
            whole = int(seconds_left + 0.999)
            last = self._last_countdown.get(label)
            if last is None or whole == 0 or (whole % 30 == 0 and whole != last):
                self.info(f"{label}: {whole} s left" if whole else f"{label}: waited")
            self._last_countdown[label] = whole
            if whole == 0:
                self._last_countdown.pop(label, None)

    return CliEvents()


# -- gasbuild status ------------------------------------------------------------------------


def _status_command() -> click.Command:
    @click.command("status")
    @_project_options
    @click.option("--only", metavar="MODALITIES", help="Comma-separated subset: image,video,audio.")
    @click.option("--json", "as_json", is_flag=True, help="Print the status as JSON on stdout.")
    def status_command(
        directory: Path | None, manifest_file: Path | None, only: str | None, as_json: bool
    ) -> None:
        """Per modality: the local zip's digest, its push receipt, and the chain's commitment."""
        from gasbuild import manifest, ui

        project = manifest.load(manifest.find_manifest(directory, manifest_file))
        rows = model_status(project, checked_only(project, only))
        if as_json:
            ui.print_json({"models": rows})
            return
        columns = ["modality", "zip", "sha256", "receipt", "model", "chain"]
        ui.table(
            "gasbuild status",
            columns,
            [[str(row[c] if row[c] is not None else "-") for c in columns] for row in rows],
        )

    return status_command


def model_status(project: Project, only: frozenset[Modality] | None) -> list[dict[str, Any]]:
    """One row per declared model: local zip, receipt state, and whether the chain agrees."""
    from gasbuild.publish.chain import chain_from_env, commitment_string
    from gasbuild.publish.receipts import ReceiptStore
    from gasbuild.publish.wallet import load_hotkey_address
    from gasbuild.submission import zip_name

    settings = project_settings(project)
    store = ReceiptStore(settings.state_dir)
    chain = None
    rows = []
    for target in project.targets(only):
        path = project.out_dir / zip_name(target.modality)
        digest = _sha256(path) if path.is_file() else None
        receipt = store.load(digest) if digest else None
        name = hotkey_name(project, target.modality)
        ss58 = load_hotkey_address(settings.wallet_name, name, settings.wallet_path)
        ss58 = ss58 or (receipt.hotkey_ss58 if receipt else None)
        expected = None
        if receipt and receipt.r2_key and digest and ss58:
            expected = commitment_string(receipt.r2_key, digest, ss58)
        if chain is None:
            chain = chain_from_env(settings.netuid, settings.chain_endpoint)
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
    return rows


def _chain_state(chain: Any, ss58: str | None, netuid: int, expected: str | None) -> str:
    from gasbuild.errors import GasbuildError

    if ss58 is None:
        return "unknown (hotkey not found)"
    try:
        current = chain.get_commitment(ss58, netuid)
    except GasbuildError as error:
        return f"unknown ({error.message})"
    if current is None:
        return "no commitment"
    if expected is None:
        return "other commitment"
    return "matches" if current == expected else "differs"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


# -- gascli d push --------------------------------------------------------------------------


def _gascli_push_command(hooks: Hooks) -> click.Command:
    path = click.Path(path_type=Path, dir_okay=False, exists=True)

    @click.command("push")
    @click.option("--image-model", type=path, help="Image detector zip.")
    @click.option("--video-model", type=path, help="Video detector zip.")
    @click.option("--audio-model", type=path, help="Audio detector zip.")
    @click.option("--wallet-name", default="default", show_default=True, help="Wallet name.")
    @click.option("--wallet-hotkey", default="default", show_default=True, help="Hotkey name.")
    @click.option("--netuid", type=int, default=34, show_default=True, help="Subnet UID.")
    @click.option(
        "--chain-endpoint", default=None, help="Subtensor endpoint (default: finney for 34)."
    )
    @click.option(
        "--retry-delay",
        type=click.FloatRange(min=0),
        default=60,
        show_default=True,
        help="Seconds between chain commitment retries.",
    )
    @click.option(
        "--vertical",
        type=click.Choice(["general", "human"]),
        default="general",
        show_default=True,
        help="Competition vertical (human is not offered for audio).",
    )
    def gascli_push(
        image_model: Path | None,
        video_model: Path | None,
        audio_model: Path | None,
        wallet_name: str,
        wallet_hotkey: str,
        netuid: int,
        chain_endpoint: str | None,
        retry_delay: float,
        vertical: str,
    ) -> None:
        """Push detector zips (BitMind's flags), with gasbuild's checks and resumable receipts."""
        models: dict[Modality, Path | None] = {
            "image": image_model,
            "video": video_model,
            "audio": audio_model,
        }
        chosen = {m: p for m, p in models.items() if p is not None}
        if not chosen:
            raise UsageError(
                "no model given",
                hint="pass at least one of --image-model, --video-model, --audio-model",
            )
        if vertical == "human" and "audio" in chosen:
            raise UsageError(
                "--vertical human is not offered for audio",
                hint="push audio with --vertical general in a separate command",
            )
        from gasbuild.publish.push import PushItem, PushSettings

        items = [
            PushItem(m, p, _sha256(p), p.stat().st_size, wallet_hotkey) for m, p in chosen.items()
        ]
        settings = PushSettings(
            wallet_name=wallet_name,
            netuid=netuid,
            vertical=vertical,
            chain_endpoint=chain_endpoint,
            chain_retry_delay=retry_delay,
            state_dir=Path.cwd() / STATE_DIR,
            resume_hint=GASCLI_RESUME,
        )
        checker = hooks.checker or _real_checker(smoke=True)
        _push_and_report(items, settings, checker, as_json=False, confirm=False)

    return gascli_push
