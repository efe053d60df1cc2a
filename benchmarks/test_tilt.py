"""The tilt benchmark (:mod:`benchmarks.tilt`): every method once on a tiny budget (the
full rows are run as a module)."""

from __future__ import annotations

from typing import Any

import pytest

from benchmarks.tilt import METHODS, run
from coopkit.tilt import TILTS

EXPECTED_TILT = {"trained": {1.0}, "trained_l2": {1.0}, "flow_alone": {0.0}}


@pytest.mark.parametrize("method", [*METHODS, "gaussian"])
def test_every_method_scores(method: str, benchmark: Any) -> None:
    row = benchmark.pedantic(run, args=("iris", method, 0, 2), rounds=1, iterations=1)
    assert 0.5 <= row["c2st"] <= 1.0
    assert row["distance"] > 0
    if method != "gaussian":
        assert row["tilt"] in EXPECTED_TILT.get(method, set(TILTS))
        assert (method in ("auto", "auto_l2")) == ("tilt_curve" in row)
