from __future__ import annotations

import warnings

import numpy as np
import pytest

from coopkit import CoopFlow
from coopkit.datasets import eight_gaussians
from coopkit.scoring import UnreliableLogPartitionWarning

FAST = {"n_iter": 3, "batch_size": 32, "random_state": 0, "flow_params": {"n_layers": 2}}


@pytest.fixture(scope="module")
def table() -> np.ndarray:
    return eight_gaussians(128, 0)


def test_a_log_z_carried_by_a_few_draws_is_flagged_and_warned_of(table: np.ndarray) -> None:
    # A tilt 10,000 times what was trained: the flow's draws almost never reach where the
    # tilted model puts its mass.
    with pytest.warns(UnreliableLogPartitionWarning, match="effective sample size"):
        model = CoopFlow(**FAST, tilt=1e4).fit(table)
    info = model.log_partition_info_
    assert info["reliable"] is False
    assert info["ess"] < 30
    for score in (model.score_samples, model.score):
        with pytest.warns(UnreliableLogPartitionWarning, match="log_partition='ais'"):
            score(table[:3])


def test_a_well_matched_log_z_is_reliable_and_silent(table: np.ndarray) -> None:
    # Without a tilt the model is its flow, the importance proposal itself.
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnreliableLogPartitionWarning)
        model = CoopFlow(**FAST, tilt=0.0).fit(table)
        model.score(table)
    assert model.log_partition_info_["reliable"] is True
    assert model.log_partition_info_["ess"] > 0.9 * 4096


def test_a_model_saved_before_the_flag_is_not_checked(table: np.ndarray) -> None:
    with pytest.warns(UnreliableLogPartitionWarning):
        model = CoopFlow(**FAST, tilt=1e4).fit(table)
    del model.log_partition_info_["reliable"]
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnreliableLogPartitionWarning)
        scores = model.score_samples(table[:3])  # raises if it warns
    assert scores.shape == (3,)
