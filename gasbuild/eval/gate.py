"""The push gate: ``[eval] min_score`` refuses, before any upload, a model that scores lower.

``enforce(project, zips)`` evaluates each zip on the project's ``[eval] data`` (a cache hit
when ``gasbuild eval`` already ran on this build) and raises ``ScoreTooLow`` naming both
figures when one falls short. ``gasbuild push --no-eval`` skips the gate. Every eval's figures
are also recorded per zip digest in ``.gasbuild/eval/<sha256>.json``, beside the push receipts:
``gasbuild status`` shows the last score, and a push copies the record's ``summary`` into the
zip's receipt when it reserves the upload.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gasbuild.blobs import atomic_write
from gasbuild.errors import UserError, display_path
from gasbuild.resources import STATE_DIR

if TYPE_CHECKING:
    from gasbuild.cache import Cache
    from gasbuild.manifest import Project

RECORD_DIR = "eval"
NO_EVAL_HINT = "improve the model, lower [eval] min_score, or push with --no-eval"

Evaluate = Callable[[Path, Path], dict[str, Any]]  # (zip, data dir) -> eval result


class ScoreTooLow(UserError):
    """A model scored below ``[eval] min_score``: nothing was uploaded."""


@dataclass(frozen=True)
class GateResult:
    """One zip's verdict, with both figures."""

    modality: str
    zip_path: Path
    score: float
    min_score: float

    @property
    def passed(self) -> bool:
        return self.score >= self.min_score

    def text(self) -> str:
        verdict = "passes" if self.passed else "is below"
        return (
            f"{display_path(self.zip_path)}: sn34 score {self.score:.4f} {verdict} "
            f"[eval] min_score {self.min_score:g}"
        )


# What a push receipt keeps of an eval (``summary``): the figures, what they were measured on,
# and when.
SUMMARY_KEYS = (
    "sn34_score", "mcc", "brier", "accuracy", "samples", "errors", "data_sha256", "when",
)  # fmt: skip


def record_path(project: Project, sha256: str) -> Path:
    return _record_file(project.root / STATE_DIR, sha256)


def _record_file(state_dir: Path, sha256: str) -> Path:
    return state_dir / RECORD_DIR / f"{sha256}.json"


def record(project: Project, result: dict[str, Any]) -> None:
    """Keep an eval's figures for ``gasbuild status`` and the push receipts (by zip digest)."""
    digest = result.get("zip_sha256")
    if not isinstance(digest, str):
        return
    keep = {
        k: result.get(k)
        for k in ("modality", "samples", "errors", "accuracy", "mcc", "brier", "sn34_score")
    }
    keep.update({"zip_sha256": digest, "data_sha256": result.get("data_sha256")})
    keep["when"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    path = record_path(project, digest)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, json.dumps(keep, indent=2).encode() + b"\n", durable=False)


def _load(state_dir: Path, sha256: str) -> dict[str, Any] | None:
    try:
        value = json.loads(_record_file(state_dir, sha256).read_text())
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def summary(state_dir: Path, sha256: str) -> dict[str, Any] | None:
    """The last eval of the zip with this digest, as a push receipt records it; None if none.

    By ``state_dir`` (``<project>/.gasbuild``), not by project: the publisher knows only that.
    A record without a score (torn, or from elsewhere) counts as none.
    """
    value = _load(state_dir, sha256)
    if value is None or not isinstance(value.get("sn34_score"), int | float):
        return None
    return {k: value.get(k) for k in SUMMARY_KEYS}


def check(
    project: Project,
    zips: Sequence[tuple[str, Path]],
    evaluate: Evaluate,
    data_dir: Path,
) -> list[GateResult]:
    """Every zip's score against ``[eval] min_score`` (empty when none is set)."""
    minimum = project.manifest.eval.min_score
    if minimum is None:
        return []
    results = []
    for modality, zip_path in zips:
        result = evaluate(zip_path, data_dir)
        record(project, result)
        results.append(GateResult(modality, zip_path, float(result["sn34_score"]), minimum))
    return results


def enforce(
    project: Project,
    zips: Sequence[tuple[str, Path]],
    *,
    cache: Cache | None = None,
    evaluate: Evaluate | None = None,
) -> list[GateResult]:
    """Raise ScoreTooLow (every failing zip named) unless all pass; the verdicts otherwise."""
    if project.manifest.eval.min_score is None:
        return []
    from gasbuild.eval.source import project_data_dir

    data_dir = project_data_dir(project, None, cache)
    if evaluate is None:
        evaluate = _real_evaluate(cache)
    results = check(project, zips, evaluate, data_dir)
    failed = [r for r in results if not r.passed]
    if failed:
        error = ScoreTooLow(f"push refused: {failed[0].text()}", hint=NO_EVAL_HINT)
        error.more = [ScoreTooLow(r.text(), hint=NO_EVAL_HINT) for r in failed[1:]]
        raise error
    return results


def _real_evaluate(cache: Cache | None) -> Evaluate:
    from gasbuild.eval.engine import EvalRequest, evaluate

    def run(zip_path: Path, data_dir: Path) -> dict[str, Any]:
        return evaluate(EvalRequest(zip_path, data_dir), cache)

    return run
