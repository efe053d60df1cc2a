"""The scoring-cost benchmark (:mod:`benchmarks.scoring_cost`) on a tiny budget: both
precisions timed, and only float64 scores a row alone as in its batch (the full rows are
run as a module)."""

from __future__ import annotations

from typing import Any

import pytest

from benchmarks.scoring_cost import measure, scoring_cost_section


@pytest.mark.parametrize("kind", ["table", "image"])
def test_both_precisions_are_timed(kind: str, benchmark: Any) -> None:
    rows = benchmark.pedantic(measure, args=(kind, 1, 2), rounds=1, iterations=1)
    by = {row["precision"]: row for row in rows}
    assert by["float32"]["seconds"] > 0
    assert by["float64"]["seconds"] > 0
    assert by["float64"]["alone_vs_batch"] < 1e-9
    assert f"| {kind} defaults |" in "\n".join(scoring_cost_section(rows))
