"""The eval bench row runs end to end at a tiny size (its ratio is not asserted)."""

from __future__ import annotations

import pytest

pytest.importorskip("cv2")
pytest.importorskip("PIL")
pytestmark = pytest.mark.slow


def test_eval_bench_runs_at_a_tiny_size() -> None:
    from bench.eval_bench import run

    row = run(8)
    assert row["images"] == 8 and row["ratio"] > 0
