"""The reconstruction-cost benchmark (:mod:`benchmarks.reconstruction_cost`) on a tiny
budget: the table task's row is measured and lands in the page's table (the full rows
are run as a module)."""

from __future__ import annotations

from typing import Any

from benchmarks.reconstruction_cost import measure, reconstruction_section


def test_the_table_task_is_timed_and_tabulated(benchmark: Any) -> None:
    rows = benchmark.pedantic(measure, args=("table", "now", 0, 2), rounds=1, iterations=1)
    (row,) = rows
    assert row["task"] == "table inpaint"
    assert row["seconds"] > 0
    assert 0 <= row["c2st"] <= 1
    assert 0 < row["rmse_of_mean"] <= row["rmse"]
    assert "| table inpaint | now | 1 |" in "\n".join(reconstruction_section(rows))
