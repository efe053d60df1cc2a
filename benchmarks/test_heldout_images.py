"""The held-out image sets of :mod:`benchmarks.heldout_images`: their shapes and levels,
and every method once on a tiny budget (the full rows are run as a module)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from benchmarks.heldout_images import DATASETS, run


@pytest.mark.parametrize("dataset", list(DATASETS))
def test_sets_are_integer_images_within_their_range(dataset: str) -> None:
    train, held_out, (low, high) = DATASETS[dataset](0)
    for images in (train, held_out):
        assert images.ndim == 3
        assert np.array_equal(images, np.rint(images))
        assert low <= images.min()
        assert images.max() <= high
    assert not np.array_equal(train[: len(held_out)], held_out)


@pytest.mark.parametrize("method", ["coopflow", "flow_alone", "short_run_ebm", "gaussian"])
def test_every_method_scores(method: str, benchmark: Any) -> None:
    row = benchmark.pedantic(run, args=("patches", method, 0, 2, 16), rounds=1, iterations=1)
    assert 0.5 <= row["c2st"] <= 1.0
    assert row["swd"] > 0
