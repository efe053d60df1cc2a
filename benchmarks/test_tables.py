"""Tables at equal CPU time (:mod:`benchmarks.tables`): the full comparison is run as a
module; under pytest every method runs once on a budget of a few seconds, so that CI
sees the code path."""

from __future__ import annotations

from typing import Any

import pytest

from benchmarks import budget, tables


@pytest.mark.parametrize("method", list(tables.METHODS))
def test_tables_rows(method: str, benchmark: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(budget, "CALIBRATION_ITER", 2)
    if method == "zuko_nsf":
        pytest.importorskip(
            "zuko", reason="zuko is the benchmark-only peer: pip install -e '.[bench]'"
        )
    row = benchmark.pedantic(tables.run, args=("iris", method, 2.0, 0), rounds=1, iterations=1)
    assert row["method"] == method
    assert 0.5 <= row["c2st"] <= 1.0
    assert row["distance"] >= 0
    assert row["seconds"] <= 2 * 2.0 + 30
    section = tables.tables_section([row])
    assert any(f"**{row['dataset']}**" in line for line in section)


def test_the_wide_synthetic_tables_have_their_columns() -> None:
    for dataset, d in (("classification20", 20), ("mixture50", 50)):
        train, test = tables.load(dataset)
        assert train.shape == (420, d)
        assert test.shape == (180, d)
