"""The corpus: every bad submission raises its code; every valid one passes (docs/checks.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from corpus.make_corpus import CASES, Case
from gasbuild.check import CheckOptions, check_zip_path


@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("corpus")


def test_corpus_is_large_enough() -> None:
    bad = [c for c in CASES if c.code not in (None, "GAS500")]
    assert len(bad) >= 60
    assert {c.code[:4] for c in bad if c.code} >= {"GAS1", "GAS2", "GAS3", "GAS4", "GAS5", "GAS6"}


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_case(case: Case, corpus_dir: Path) -> None:
    path = corpus_dir / f"{case.name}.zip"
    path.write_bytes(case.build())
    opts = CheckOptions(
        modality=case.modality,  # type: ignore[arg-type]
        format=case.format,  # type: ignore[arg-type]
        smoke=case.smoke,
        deep=case.deep,
        smoke_timeout=120,
    )
    findings = check_zip_path(path, opts, case.name)
    rendered = "\n".join(f.format(case.name) for f in findings)
    if case.code is None:
        assert findings == [], rendered
    elif "warning-only" in case.tags:
        assert [f.code for f in findings] == [case.code], rendered
    else:
        assert case.code in {f.code for f in findings if f.severity == "error"}, rendered
