"""The push commands: ``gasbuild push``, ``gasbuild burn``, ``gasbuild status``, ``gascli d push``.

``register(cli, discriminator)`` adds them to the two click groups of ``gasbuild.cli``. Kept in
their own module so the CLI's import stays cheap (publishing pulls in httpx and, on first use,
the chain SDK) and so tests can register them on fresh groups with a builder and a checker of
their own; the real commands always build from the cache and run gasbuild's checks.

``gascli d push`` keeps the reference client's flags exactly, but runs gasbuild's push: checks
first, nothing uploaded until every modality passed preflight, resumable, and argument errors
exit 2 (the reference exits 0 on them). Like the reference client, it offers the burn a further
submission needs when it runs on a terminal, and takes a burn made elsewhere with
``--burn-receipt``.

``gasbuild burn --modality M`` is ``gasbuild push --only M --burn``: the push asks the service
first, and only if the hotkey's free submission is used does it show the burn's cost and the
paying coldkey, ask (``--yes`` skips the question), burn, record the receipt and push with it.
"""

from __future__ import annotations

import dataclasses
import functools
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from gasbuild.cli.options import checked_only, project_options, smoke_limit_options
from gasbuild.errors import UsageError, display_path
from gasbuild.resources import STATE_DIR
from gasbuild.submission import MODALITIES, VERTICALS, Modality

if TYPE_CHECKING:  # the publish modules (httpx, pydantic) load only when a command runs
    from datetime import datetime

    from gasbuild.manifest import Project
    from gasbuild.publish.burn import BurnQuote
    from gasbuild.publish.gasapi import BurnReceipt
    from gasbuild.publish.push import (
        ApproveBurn,
        Checker,
        Events,
        PushItem,
        PushPlan,
        PushReport,
        PushSettings,
    )
    from gasbuild.publish.slots import HotkeyCount, ModelOutlook

Builder = Callable[["Project", "frozenset[Modality] | None"], "list[PushItem]"]

GASCLI_RESUME = "the same `gascli d push` command (it resumes from the receipts)"
GASCLI_BURN_HINT = (
    "run this command on a terminal to be offered the burn (it shows the cost and the paying"
    " coldkey and asks first), or pass --burn-receipt TX_HASH:BLOCK for a burn already made"
)


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
    """Add ``push``, ``burn``, ``status`` to ``cli_group``; ``push`` to ``discriminator_group``."""
    hooks = Hooks(checker, builder)
    cli_group.add_command(_push_command(hooks), "push")
    cli_group.add_command(_burn_command(hooks), "burn")
    cli_group.add_command(_status_command(), "status")
    discriminator_group.add_command(_gascli_push_command(hooks), "push")


# -- gasbuild push ------------------------------------------------------------------------


_project_options = project_options


_BURN_RECEIPT_HELP = (
    "A burn already made for a further counted submission: [MODALITY=]TX_HASH:BLOCK (0x and"
    " upper case accepted); used only if the service says the free submission is used."
    " Repeatable."
)


def _push_command(hooks: Hooks) -> click.Command:
    @click.command("push")
    @_project_options
    @click.option("--only", metavar="MODALITIES", help="Comma-separated subset: image,video,audio.")
    @click.option("--dry-run", is_flag=True, help="Preflight only: show what would be pushed.")
    @click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation (nor for a burn).")
    @click.option("--json", "as_json", is_flag=True, help="Print the report as JSON on stdout.")
    @click.option(
        "--commit-only", is_flag=True, help="Only (re)commit uploads the receipts say are done."
    )
    @click.option(
        "--burn",
        is_flag=True,
        help="If the service says a hotkey's free submission is used, burn 0.5 TAO worth of"
        " subnet alpha with the wallet's coldkey (after asking) and push with its receipt.",
    )
    @click.option("--wallet-name", metavar="NAME", help="Wallet name (default: [wallet] name).")
    @click.option(
        "--wallet-hotkey",
        metavar="NAME",
        help="Hotkey for every model pushed (default: each model's hotkey, else [wallet] hotkey).",
    )
    @click.option("--wallet-path", metavar="DIR", help="Wallets folder (default: [wallet] path).")
    @click.option(
        "--allow-shared-hotkey",
        is_flag=True,
        help="Push several models on one hotkey without burn receipts for the later ones"
        " (refused by default: the network counts one free submission per hotkey).",
    )
    @click.option(
        "--burn-receipt",
        "burn_receipts",
        multiple=True,
        metavar="[MODALITY=]TX_HASH:BLOCK",
        help=_BURN_RECEIPT_HELP,
    )
    @click.option("--chain-endpoint", metavar="URL", help="Subtensor endpoint (default by netuid).")
    @click.option(
        "--no-smoke", is_flag=True, help="Skip the smoke test (in the build and the checks)."
    )
    @click.option("--no-eval", is_flag=True, help="Skip the [eval] min_score gate.")
    @smoke_limit_options
    def push_command(
        directory: Path | None,
        manifest_file: Path | None,
        only: str | None,
        dry_run: bool,
        yes: bool,
        as_json: bool,
        commit_only: bool,
        burn: bool,
        wallet_name: str | None,
        wallet_hotkey: str | None,
        wallet_path: str | None,
        allow_shared_hotkey: bool,
        burn_receipts: Sequence[str],
        chain_endpoint: str | None,
        no_smoke: bool,
        no_eval: bool,
        smoke_memory: int | None,
        smoke_timeout: float | None,
    ) -> None:
        """Build (from the cache) and push the zips to GAS, then commit them on chain.

        Preflight first: wallets, registration and checks for every modality; nothing is
        uploaded unless all pass. Receipts in .gasbuild/receipts make a re-run resume.

        --dry-run stops after preflight and shows, per hotkey, the submissions this project's
        receipts know as used and which models would need a burn (the service is not asked).

        Without --yes it asks first: answering "n" at the prompt exits 1 with nothing pushed
        (Ctrl-C or Ctrl-D there exits 130).

        Exit status: 0 pushed, 1 push failed or declined, 2 usage or configuration error.
        """
        _run_project_push(
            hooks,
            directory,
            manifest_file,
            only=only,
            dry_run=dry_run,
            yes=yes,
            as_json=as_json,
            commit_only=commit_only,
            burn=burn,
            burn_receipts=burn_receipts,
            chain_endpoint=chain_endpoint,
            no_smoke=no_smoke,
            no_eval=no_eval,
            smoke_memory=smoke_memory,
            smoke_timeout=smoke_timeout,
            allow_shared_hotkey=allow_shared_hotkey,
            wallet=(wallet_name, wallet_hotkey, wallet_path),
        )

    return push_command


def _burn_command(hooks: Hooks) -> click.Command:
    @click.command("burn")
    @_project_options
    @click.option(
        "--modality",
        type=click.Choice(MODALITIES),
        required=True,
        help="The model that needs a further counted submission on its hotkey.",
    )
    @click.option("-y", "--yes", is_flag=True, help="Do not ask before pushing and burning.")
    @click.option("--json", "as_json", is_flag=True, help="Print the report as JSON on stdout.")
    @click.option("--chain-endpoint", metavar="URL", help="Subtensor endpoint (default by netuid).")
    @click.option(
        "--no-smoke", is_flag=True, help="Skip the smoke test (in the build and the checks)."
    )
    def burn_command(
        directory: Path | None,
        manifest_file: Path | None,
        modality: str,
        yes: bool,
        as_json: bool,
        chain_endpoint: str | None,
        no_smoke: bool,
    ) -> None:
        """Burn for a further counted submission on a hotkey, and push with the receipt.

        Same as `gasbuild push --only MODALITY --burn`. The service is asked first: a burn is
        made only if it says the hotkey's free submission is used, and no unspent burn is
        saved for that hotkey. Before burning it shows the cost (0.5 TAO worth of subnet-34
        alpha) and the paying coldkey, and asks (--yes skips the question). The receipt is kept
        in .gasbuild/receipts/burns, so a burn is never spent twice.
        """
        _run_project_push(
            hooks,
            directory,
            manifest_file,
            only=modality,
            dry_run=False,
            yes=yes,
            as_json=as_json,
            commit_only=False,
            burn=True,
            burn_receipts=(),
            chain_endpoint=chain_endpoint,
            no_smoke=no_smoke,
            no_eval=False,
        )

    return burn_command


def _run_project_push(
    hooks: Hooks,
    directory: Path | None,
    manifest_file: Path | None,
    *,
    only: str | None,
    dry_run: bool,
    yes: bool,
    as_json: bool,
    commit_only: bool,
    burn: bool,
    burn_receipts: Sequence[str],
    chain_endpoint: str | None,
    no_smoke: bool,
    no_eval: bool,
    smoke_memory: int | None = None,
    smoke_timeout: float | None = None,
    allow_shared_hotkey: bool = False,
    wallet: tuple[str | None, str | None, str | None] = (None, None, None),
) -> None:
    """The body of ``push`` and ``burn``: build, preflight, ask, push, report.

    ``wallet`` is (name, hotkey, path) from the command line; each given value overrides
    gas.toml (a hotkey given there is used for every model pushed).
    """
    from gasbuild import manifest

    _require_consent(yes or dry_run)
    project = manifest.load(manifest.find_manifest(directory, manifest_file))
    chosen = checked_only(project, only)
    given = _parse_burns(burn_receipts)
    builder = hooks.builder or functools.partial(
        build_items,
        smoke=not no_smoke,
        smoke_memory_mb=smoke_memory,
        smoke_timeout=smoke_timeout,
    )
    items = builder(project, chosen)
    from gasbuild.blobs import expand_user

    wallet_name, wallet_hotkey, wallet_path = wallet
    if wallet_hotkey:
        items = [dataclasses.replace(item, hotkey_name=wallet_hotkey) for item in items]
    if not (no_eval or commit_only):  # before any upload: [eval] min_score (docs/eval.md)
        _eval_gate(project, [(item.modality, item.zip_path) for item in items])
    from gasbuild.publish.status import project_settings

    settings = project_settings(
        project,
        dry_run=dry_run,
        commit_only=commit_only,
        burn=burn,
        burn_receipts=_assign_burns(given, [i.modality for i in items]),
        chain_endpoint=chain_endpoint,
        allow_shared_hotkey=allow_shared_hotkey,
        wallet_name=wallet_name,
        wallet_path=str(expand_user(wallet_path)) if wallet_path else None,
    )
    section = project.manifest.build
    checker = hooks.checker or _real_checker(
        smoke=not no_smoke,
        memory_mb=smoke_memory or section.smoke_memory,
        timeout=smoke_timeout or section.smoke_timeout,
    )
    _push_and_report(
        items,
        settings,
        checker,
        as_json,
        confirm=not (yes or dry_run),
        approve_burn=_burn_approver(ask=not yes),
    )


def _eval_gate(project: Project, zips: list[tuple[str, Path]]) -> None:
    from gasbuild._api import open_cache
    from gasbuild.eval.gate import enforce

    if project.manifest.eval.min_score is not None:
        enforce(project, zips, cache=open_cache(project))


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


def _parse_burns(values: Sequence[str]) -> list[tuple[str | None, BurnReceipt]]:
    """``[MODALITY=]TX_HASH:BLOCK`` values, normalised to BitMind's form (exit 2 if malformed)."""
    from gasbuild.publish.gasapi import BurnReceipt

    burns: list[tuple[str | None, BurnReceipt]] = []
    for value in values:
        modality, sep, receipt = value.partition("=")
        modality = modality.strip()
        if not sep:
            modality, receipt = "", value
        elif modality not in MODALITIES:
            raise UsageError(
                f"--burn-receipt {value!r}: expected [MODALITY=]TX_HASH:BLOCK",
                hint=f"MODALITY is one of {', '.join(MODALITIES)}",
            )
        try:
            parsed = BurnReceipt.parse(receipt)
        except ValueError as exc:
            raise UsageError(
                f"--burn-receipt {modality + '=' if modality else ''}...: {exc}",
                hint="give the burn's extrinsic hash and the block it was included in",
            ) from None
        burns.append((modality or None, parsed))
    return burns


def _assign_burns(
    given: list[tuple[str | None, BurnReceipt]], pushed: Sequence[str], *, in_order: bool = False
) -> dict[str, BurnReceipt]:
    """Burns by modality. A receipt without a modality fits when one modality is pushed, or
    (``in_order``: one hotkey for all, as in ``gascli``) goes to the next one without a burn."""
    burns: dict[str, BurnReceipt] = {}
    for modality, receipt in given:
        if modality is not None:
            if modality in burns:
                raise UsageError(f"--burn-receipt: {modality} given twice")
            burns[modality] = receipt
    free = [m for m in pushed if m not in burns]
    for modality, receipt in given:
        if modality is not None:
            continue
        shown = f"--burn-receipt {receipt.tx_hash[:12]}...:{receipt.block}"
        if len(pushed) > 1 and not in_order:
            raise UsageError(
                f"{shown}: several models are pushed, from their own hotkeys",
                hint="say which one it is for: MODALITY=TX_HASH:BLOCK",
            )
        if not free:
            raise UsageError(f"{shown}: more burn receipts than models pushed")
        burns[free.pop(0)] = receipt
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
    from gasbuild._api import open_cache
    from gasbuild.publish.push import PushItem
    from gasbuild.publish.status import hotkey_name
    from gasbuild.stages.fetch import FetchOptions

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
                fetch=FetchOptions(progress=ui.progress_factory()),  # bars on a terminal
                step=ui.step,
            ),
            on_findings=ui.print_findings,
        )
    finally:
        ui.stop_progress()
    return [
        PushItem(r.modality, r.zip_path, r.sha256, r.size, hotkey_name(project, r.modality))
        for r in report.results
    ]


def _push_and_report(
    items: list[PushItem],
    settings: PushSettings,
    checker: Checker,
    as_json: bool,
    *,
    confirm: bool,
    approve_burn: ApproveBurn | None = None,
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
            approve_burn=approve_burn,
        )
    finally:
        ui.stop_progress()
    if as_json:
        ui.print_json(report.to_json())
    elif report.dry_run:
        _print_dry_run(report)
    else:
        _print_report(report)
    report.raise_for_error()


def _burn_approver(*, ask: bool) -> ApproveBurn:
    """Show the burn (cost, paying coldkey) on stderr and ask; ``ask=False`` (--yes) only shows.

    A burn cannot be undone, so with no terminal to ask on it is refused, never assumed.
    """

    def approve(modality: str, quote: BurnQuote) -> None:
        from gasbuild import ui
        from gasbuild.publish.push import BurnDeclined

        ui.stop_progress()
        ui.err.print(
            f"{modality}: the service says hotkey {quote.hotkey_ss58} has used its free"
            f" submission on subnet {quote.netuid}; another needs {quote.describe()}",
            markup=False,
            highlight=False,
        )
        if not ask:
            return
        if not sys.stdin.isatty():
            raise BurnDeclined(
                f"{modality}: a burn is needed and there is no terminal to ask before making it",
                hint="run on a terminal, or pass --yes to burn without asking",
            )
        if not click.confirm(
            f"Burn with coldkey {quote.coldkey_ss58}? This cannot be undone.",
            default=False,
            err=True,
        ):
            raise BurnDeclined(
                f"{modality}: burn declined; nothing was burned",
                hint="without a burn this hotkey cannot count another model; push it from its"
                " own registered hotkey instead",
            )

    return approve


def _confirm_plan(plan: PushPlan) -> None:
    """Show the plan on stderr (stdout may be --json) and ask.

    "n" is a decision, not an interruption: exit 1 "nothing was pushed", as a declined burn.
    Ctrl-C or Ctrl-D at the prompt stays an interruption (exit 130).
    """
    from gasbuild import ui
    from gasbuild.publish.push import PushDeclined
    from gasbuild.publish.slots import outlook
    from gasbuild.urls import redact_url  # GASBUILD_UPLOAD_URL may carry user:password@

    settings = plan.settings
    lines = [
        f"about to push to {redact_url(plan.upload_url)} (subnet {settings.netuid},"
        f" vertical {settings.vertical}):"
    ]
    spends = {m.modality: m for h in outlook(plan) for m in h.models}
    for p in plan.items:
        state = p.receipt.state if p.receipt else "new"
        lines.append(
            f"  {p.item.modality:<5}  {display_path(p.item.zip_path)}"
            f"  {ui.short_digest(p.item.sha256)}  {ui.human_size(p.item.size)}  receipt: {state}"
        )
        lines.append(f"         hotkey {p.hotkey.hotkey_name} {p.hotkey.ss58_address}")
        model = spends.get(p.item.modality)
        if model is not None:
            lines += _wrapped(_model_text(model), "         ", ui.err.width)
    ui.err.print("\n".join(lines), markup=False, highlight=False, soft_wrap=True)
    if not click.confirm(
        "Each new upload uses this hotkey's submission. Push?", default=False, err=True
    ):
        raise PushDeclined(
            "push declined; nothing was pushed",
            hint="run it again and answer y, or pass --yes; --dry-run only shows the plan",
        )


def _print_report(report: PushReport) -> None:
    """The push's results: a table when there is room for full digests and addresses;
    narrower, two lines per model (short digest marked so), so 80 columns fit."""
    from gasbuild import ui

    columns = ["modality", "zip", "sha256", "hotkey", "status", "model", "chain"]
    rows = []
    for item in report.items:
        receipt = item.receipt
        chain = "-"
        if receipt is not None:
            chain = "verified" if receipt.verified else "sent" if receipt.committed else "no"
        model = "-" if receipt is None or receipt.model_id is None else str(receipt.model_id)
        zip_shown = display_path(item.zip_path)
        rows.append(
            [item.modality, zip_shown, item.sha256, item.hotkey_ss58, item.status, model, chain]
        )
    if ui.wide():
        ui.table("gasbuild push", columns, rows)
        return
    lines = ["gasbuild push"]
    for modality, zip_shown, digest, hotkey, status, model, chain in rows:
        lines.append(f"{modality:<5}  {zip_shown}  {ui.short_digest(digest)}")
        lines.append(f"       {status}  model: {model}  chain: {chain}")
        lines.append(f"       hotkey: {hotkey}")
    ui.out.print("\n".join(lines), markup=False, highlight=False, soft_wrap=True)


def _print_dry_run(report: PushReport) -> None:
    """The plan, narrow enough for 80 columns: a line per model, then per hotkey how many
    submissions this project knows it used and what this push would spend. The service is not
    asked (only a presign returns its count, and a presign reserves an upload slot)."""
    from datetime import datetime, timezone

    from gasbuild import ui
    from gasbuild.publish.slots import describe_age

    lines = ["gasbuild push --dry-run: nothing uploaded, no upload slot reserved"]
    for item in report.items:
        action = item.outlook.action if item.outlook else "upload"
        line = (
            f"{item.modality:<5}  {display_path(item.zip_path)}  {ui.short_digest(item.sha256)}"
            f"  {ui.human_size(item.size)}  {_DRY_ACTIONS.get(action, action)}"
        )
        lines += _wrapped(line, "  ", ui.out.width)
    if report.hotkeys:
        lines.append("submissions per hotkey (from this project's receipts):")
    now = datetime.now(timezone.utc)
    for hotkey in report.hotkeys:
        lines.append(f"  {hotkey.name}  {hotkey.count.hotkey_ss58}")
        texts = [_count_text(hotkey.count, now, describe_age)]
        if hotkey.count.pending_burns:
            texts.append(
                "a burn sent earlier has an unknown outcome: no new burn is made for this"
                " hotkey until it is resolved: if it landed, push --burn-receipt TX_HASH:BLOCK"
            )
        texts += [_model_text(m) for m in hotkey.models]
        for text in texts:
            lines += _wrapped(text, "    ", ui.out.width)
    ui.out.print("\n".join(lines), markup=False, highlight=False, soft_wrap=True)


def _wrapped(text: str, indent: str, columns: int) -> list[str]:
    """``text`` folded at the terminal's ``columns`` (at most 100, for reading), its later
    lines indented two more."""
    import textwrap

    width = max(40, min(columns, 100))
    return textwrap.wrap(text, width, initial_indent=indent, subsequent_indent=indent + "  ")


_DRY_ACTIONS = {"upload": "would upload", "confirm": "would confirm", "commit": "would commit"}


def _count_text(count: HotkeyCount, now: datetime, describe_age: Callable[[float], str]) -> str:
    """``used: 1 of max 3 (...)``, or ``used: unknown (no push from here yet)``."""
    if count.used is None:
        return "used: unknown (no push from here yet)"
    burns = f"; {count.unspent_burns} unspent burn(s) saved" if count.unspent_burns else ""
    if count.service_max is None:
        return f"used: {count.used} (max: unknown, the service has not said){burns}"
    age = count.age_seconds(now)
    when = (count.answered or "")[:10]
    said = f"{when}, {describe_age(age)}" if age is not None else "date unknown"
    return f"used: {count.used} of max {count.service_max} (the service's max as of {said}){burns}"


def _model_text(model: ModelOutlook) -> str:
    """What pushing this model would spend of its hotkey's submissions, in a miner's words."""
    name = model.modality
    if model.action == "commit":
        return f"{name}: nothing to spend (its upload was confirmed earlier)"
    if model.action == "confirm":
        return f"{name}: confirms its earlier upload (its slot was granted then)"
    if model.needs_burn is None:
        return f"{name}: uses the free submission, unless this hotkey pushed from elsewhere"
    if not model.needs_burn:
        return f"{name}: uses this hotkey's free submission"
    if model.burn_reason == "shared-hotkey":
        why = f"{model.first_on_hotkey} uses this hotkey's free submission first"
    else:
        why = "this hotkey's free submission is used"
    paid = {
        "given": "the --burn-receipt given pays",
        "saved": "a saved unspent burn pays",
    }.get(model.burn_source or "", "none saved: --burn makes one, --burn-receipt passes one")
    return f"{name}: needs a burn, {why} ({paid})"


def _cli_events() -> Events:
    """Events on stderr (stdout is the report); built here so push loads only when it runs."""
    from gasbuild import ui
    from gasbuild.publish.push import Events

    class CliEvents(Events):
        """Upload bars start at the PUT's first callback (0 bytes) and stay, full, while the
        service answers the PUT; the next message (or a retry's restart) removes them. A bar
        finished the moment its last byte went out was never drawn full: a small zip, sent in
        one chunk, only ever showed the frame rich draws when a bar is added, at 0 bytes."""

        def __init__(self) -> None:
            self._bars: dict[str, tuple[ui.Bar, int]] = {}
            self._last_countdown: dict[str, int] = {}

        def info(self, message: str) -> None:
            self._finish_bars()
            ui.err.print(message, markup=False, highlight=False)

        def warning(self, message: str) -> None:
            self._finish_bars()
            ui.print_warning(message)

        def findings(self, origin: str, findings: list[Any]) -> None:
            ui.print_findings(origin, findings)

        def progress(self, label: str, sent: int, total: int) -> None:
            bar = self._bars.get(label)
            if bar is None or sent < bar[1]:  # the first callback, or a retry starting over
                if bar is not None:
                    bar[0].finish()
                bar = (ui.progress_factory()(f"upload {label}", total), 0)
            shown, before = bar
            shown.advance(sent - before)
            self._bars[label] = (shown, max(sent, before))

        def _finish_bars(self) -> None:
            for shown, _ in self._bars.values():
                shown.finish()
            self._bars.clear()

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
    @click.option("--chain-endpoint", metavar="URL", help="Subtensor endpoint (default by netuid).")
    def status_command(
        directory: Path | None,
        manifest_file: Path | None,
        only: str | None,
        as_json: bool,
        chain_endpoint: str | None,
    ) -> None:
        """Per modality: the local zip's digest, its push receipt, and the chain's commitment.

        The chain is asked once per hotkey until it fails; a chain that cannot be reached
        fails the command once (exit 1), after the table of what is known locally.
        """
        from gasbuild import manifest, ui

        project = manifest.load(manifest.find_manifest(directory, manifest_file))
        from gasbuild.publish.status import model_status

        report = model_status(project, checked_only(project, only), chain_endpoint=chain_endpoint)
        error = report.chain_error
        if as_json:
            if error is None:
                ui.print_json({"ok": True, "models": report.rows})
            else:
                ui.print_json(ui.error_json(error, error.exit_code, models=report.rows))
        else:
            _print_status(report.rows)
        if error is not None:
            raise error

    return status_command


def _print_status(rows: list[dict[str, Any]]) -> None:
    """The status table when there is room for full digests; narrower, two lines per model
    (the digest short and marked so, the states labelled), so 80 columns fit."""
    from gasbuild import ui

    columns = ["modality", "zip", "sha256", "receipt", "model", "chain", "eval"]
    if ui.wide():
        cells = [[str(row[c] if row[c] is not None else "-") for c in columns] for row in rows]
        ui.table("gasbuild status", columns, cells)
        return
    lines = ["gasbuild status"]
    for row in rows:
        digest = ui.short_digest(row["sha256"]) if row["sha256"] else ""
        lines.append(f"{row['modality']:<5}  {row['zip']}  {digest}".rstrip())
        chain = str(row["chain"]).replace("unknown (chain unreachable)", "unreachable")
        states = [f"{c}: {row[c]}" for c in ("receipt", "model") if row[c] is not None]
        states.append(f"chain: {chain}")
        states += [] if row["eval"] is None else [f"eval: {row['eval']}"]
        lines += _wrapped("  ".join(states), "       ", ui.out.width)
    ui.out.print("\n".join(lines), markup=False, highlight=False, soft_wrap=True)


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
        type=click.Choice(VERTICALS),
        default="general",
        show_default=True,
        help="Competition vertical (human is not offered for audio).",
    )
    @click.option(
        "--burn-receipt",
        "burn_receipts",
        multiple=True,
        metavar="[MODALITY=]TX_HASH:BLOCK",
        help=_BURN_RECEIPT_HELP,
    )
    @click.option(
        "--wallet-path",
        metavar="DIR",
        help="Wallets folder (default: ~/.bittensor/wallets).",
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
        burn_receipts: Sequence[str],
        wallet_path: str | None,
    ) -> None:
        """Push detector zips (BitMind's flags), with gasbuild's checks and resumable receipts.

        One free counted submission per hotkey: on a terminal, a further one is offered a burn
        (cost and paying coldkey shown, then asked); elsewhere pass --burn-receipt.
        """
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
        given = _parse_burns(burn_receipts)
        from gasbuild.blobs import sha256_file
        from gasbuild.publish.push import PushItem, PushSettings

        items = [
            PushItem(m, p, sha256_file(p), p.stat().st_size, wallet_hotkey)
            for m, p in chosen.items()
        ]
        interactive = sys.stdin.isatty()
        settings = PushSettings(
            wallet_name=wallet_name,
            wallet_path=wallet_path,
            netuid=netuid,
            vertical=vertical,
            chain_endpoint=chain_endpoint,
            chain_retry_delay=retry_delay,
            state_dir=Path.cwd() / STATE_DIR,
            resume_hint=GASCLI_RESUME,
            burn_receipts=_assign_burns(given, list(chosen), in_order=True),
            burn=interactive,  # the reference client offers the burn on a terminal only
            burn_hint=GASCLI_BURN_HINT,
            # The reference flags put every model on one hotkey: warn, as its client proceeds.
            allow_shared_hotkey=True,
        )
        checker = hooks.checker or _real_checker(smoke=True)
        _push_and_report(
            items,
            settings,
            checker,
            as_json=False,
            confirm=False,
            approve_burn=_burn_approver(ask=True),
        )

    return gascli_push
