"""Digits at equal wall time (:mod:`benchmarks.wall_time`): the full comparison is run as
a module (its rows are rendered into ``docs/benchmarks.md``); under pytest every method
runs once on a budget of a few seconds, so that CI sees the code path."""

from __future__ import annotations

from typing import Any

import pytest

from benchmarks import budget
from benchmarks.wall_time import METHODS, run


@pytest.mark.parametrize("method", list(METHODS))
def test_wall_time_rows(method: str, benchmark: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(budget, "CALIBRATION_ITER", 2)
    if method == "zuko_nsf":
        pytest.importorskip(
            "zuko", reason="zuko is the benchmark-only peer: pip install -e '.[bench]'"
        )
    rows = benchmark.pedantic(run, args=(method, [2.0, 4.0], 0), rounds=1, iterations=1)
    assert [row["method"] for row in rows] == [method] * len(rows)
    for row in rows:
        assert 0.5 <= row["c2st"] <= 1.0
        assert row["frechet"] >= 0
        assert row["seconds"] <= 2 * max(row["budget"], 1.0) + 30
