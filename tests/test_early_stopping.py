from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from coopkit import CoopFlow
from coopkit.datasets import eight_gaussians
from coopkit.early_stopping import MIN_CHECK_EVERY, EarlyStopping, check_interval
from coopkit.flows import RealNVP

# A tol no gain reaches: the first check is kept and patience runs out after
# ``n_iter_no_change`` more, whatever the trajectory.
NEVER = 1e9
FAST = {
    "batch_size": 32,
    "random_state": 0,
    "flow_params": {"n_layers": 2},
    "lr_schedule": "constant",
}


@pytest.fixture(scope="module")
def table() -> np.ndarray:
    return eight_gaussians(200, 0)


def test_checks_come_once_an_epoch_and_at_least_ten_iterations_apart() -> None:
    assert check_interval(100, 128) == MIN_CHECK_EVERY
    assert check_interval(1024, 32) == 32
    assert check_interval(1025, 32) == 33


def test_the_best_check_is_kept_and_a_worse_flow_runs_out_of_patience() -> None:
    torch.manual_seed(0)
    flow, energy = RealNVP((2,)), torch.nn.Linear(2, 1)
    flow.initialize(torch.randn(512, 2))
    stopper = EarlyStopping(torch.randn(128, 2), n_iter_no_change=2, tol=0.0, check_every=5)
    assert not stopper.check(4, flow, energy)
    assert stopper.scores == []  # not a check
    assert not stopper.check(5, flow, energy)
    kept = {k: v.clone() for k, v in energy.state_dict().items()}
    with torch.no_grad():
        for parameter in [*flow.parameters(), *energy.parameters()]:
            parameter.add_(3.0)  # a far worse flow
    assert not stopper.check(10, flow, energy)
    assert stopper.scores[1] < stopper.scores[0]
    assert stopper.check(15, flow, energy)
    assert stopper.stopped
    stopper.restore_best(flow, energy)
    assert stopper.best_iteration == 5
    assert stopper.score(flow) == stopper.scores[0]
    assert all(torch.equal(v, energy.state_dict()[k]) for k, v in kept.items())


def test_fit_stops_when_patience_runs_out_and_says_so(table: np.ndarray) -> None:
    model = CoopFlow(**FAST, n_iter=200, early_stopping=True, n_iter_no_change=2, tol=NEVER)
    model.fit(table)
    every = check_interval(180, 32)
    assert model.n_iter_ == 3 * every < 200
    assert model.stop_reason_.startswith(f"stopped early at iteration {3 * every}")
    assert len(model.validation_scores_) == 3
    assert model.best_validation_score_ == max(model.validation_scores_)


def test_fit_keeps_the_weights_of_the_best_check(
    table: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Scores that fall after the first check stop the fit two checks later with the
    first check's weights: those of the model trained to that iteration (the same seed,
    the same training rows, as ``tilt="auto"`` holds out the same ones, and a constant
    rate so that the schedule does not depend on ``n_iter``)."""
    falling = iter([0.0, -1.0, -2.0])
    monkeypatch.setattr(EarlyStopping, "score", lambda self, flow: next(falling))
    stopped = CoopFlow(**FAST, n_iter=200, early_stopping=True, n_iter_no_change=2)
    stopped.fit(table)
    every = check_interval(180, 32)
    assert stopped.n_iter_ == 3 * every
    assert stopped.stop_reason_.endswith(f"the weights of iteration {every} were restored")
    reference = CoopFlow(**FAST, n_iter=every, tilt="auto").fit(table)
    for mine, theirs in [(stopped.flow_, reference.flow_), (stopped.energy_, reference.energy_)]:
        for name, value in theirs.state_dict().items():
            assert torch.equal(mine.state_dict()[name], value), name


def test_early_stopping_leaves_a_given_tilt_alone(table: np.ndarray) -> None:
    model = CoopFlow(**FAST, n_iter=10, early_stopping=True, tilt=0.5).fit(table)
    assert model.tilt_ == 0.5
    assert model.tilt_info_ is None
    assert model.stop_reason_ == "completed"
    assert len(model.validation_scores_) == 1
    assert math.isfinite(model.best_validation_score_)


def test_without_early_stopping_there_are_no_validation_scores(table: np.ndarray) -> None:
    model = CoopFlow(**FAST, n_iter=3).fit(table)
    assert model.validation_scores_ is None
    assert model.best_validation_score_ is None


def test_early_stopping_needs_validation_rows(table: np.ndarray) -> None:
    with pytest.raises(ValueError, match="validation_fraction above 0"):
        CoopFlow(**FAST, n_iter=3, early_stopping=True, validation_fraction=0.0).fit(table)


def test_a_saved_model_keeps_its_validation_scores(table: np.ndarray, tmp_path) -> None:
    model = CoopFlow(**FAST, n_iter=10, early_stopping=True).fit(table)
    loaded = CoopFlow.load(model.save(tmp_path / "model.coopkit"))
    assert loaded.validation_scores_ == model.validation_scores_
    assert loaded.best_validation_score_ == model.best_validation_score_
