from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from coopkit import CoopFlow
from coopkit.datasets import eight_gaussians
from coopkit.scoring import UnreliableLogPartitionWarning

FAST = {"n_iter": 3, "batch_size": 32, "random_state": 0, "flow_params": {"n_layers": 2}}


@pytest.fixture(scope="module")
def table() -> np.ndarray:
    return eight_gaussians(128, 0)


def test_fit_estimates_no_log_z_until_one_is_needed(table: np.ndarray) -> None:
    model = CoopFlow(**FAST).fit(table)
    assert model._log_partition_info is None
    scores = model.score_samples(table[:4])
    info = model._log_partition_info
    assert info is not None
    assert model.log_partition_info_ is info  # kept, not estimated again
    np.testing.assert_allclose(scores, model.score_samples(table[:4]))


def test_a_new_fit_forgets_the_estimate_and_the_next_need_makes_it_anew(
    table: np.ndarray,
) -> None:
    model = CoopFlow(**FAST).fit(table)
    assert model.log_partition_info_["method"] == "importance"
    model.set_params(warm_start=True, log_partition="ais", n_partition_samples=32)
    model.set_params(partition_temperatures=5).fit(table)
    assert model._log_partition_info is None
    assert model.log_partition_info_["method"] == "ais"


def test_without_log_partition_the_scores_say_how_to_get_one(table: np.ndarray) -> None:
    model = CoopFlow(**FAST, log_partition=None).fit(table)
    assert model.flow_score_samples(table[:2]).shape == (2,)
    with pytest.raises(ValueError, match=r"log_partition=None.*set log_partition='importance'"):
        model.score_samples(table[:2])
    model.set_params(log_partition="importance")
    assert np.isfinite(model.score_samples(table[:2])).all()


@pytest.mark.parametrize("estimated", [True, False])
def test_a_saved_model_keeps_an_estimate_it_has_and_makes_none_it_lacks(
    table: np.ndarray, tmp_path: Path, estimated: bool
) -> None:
    model = CoopFlow(**FAST).fit(table)
    if estimated:
        log_z = model.log_partition_
    loaded = CoopFlow.load(model.save(tmp_path / "model.coopkit"))
    if estimated:
        assert loaded._log_partition_info is not None
        assert loaded.log_partition_ == log_z
    else:
        assert loaded._log_partition_info is None
        assert np.isfinite(loaded.log_partition_)


def test_a_log_z_carried_by_a_few_draws_is_flagged_and_warned_of(table: np.ndarray) -> None:
    # A tilt 10,000 times what was trained: the flow's draws almost never reach where the
    # tilted model puts its mass.
    model = CoopFlow(**FAST, tilt=1e4).fit(table)
    with pytest.warns(UnreliableLogPartitionWarning, match="effective sample size"):
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


def test_an_estimate_saved_before_the_flag_is_not_checked(table: np.ndarray) -> None:
    model = CoopFlow(**FAST, tilt=1e4).fit(table)
    with pytest.warns(UnreliableLogPartitionWarning):
        del model.log_partition_info_["reliable"]
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnreliableLogPartitionWarning)
        scores = model.score_samples(table[:3])  # raises if it warns
    assert scores.shape == (3,)
