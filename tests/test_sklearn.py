"""scikit-learn compliance: the common estimator checks, clone, grid search, pipelines."""

from __future__ import annotations

import numpy as np
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from coopkit import CoopFlow
from coopkit.datasets import eight_gaussians

TINY = {
    "n_iter": 2,
    "batch_size": 4,
    "random_state": 0,
    "flow_params": {"n_layers": 1, "hidden_features": 8},
    "energy_params": {"hidden_features": 8, "n_hidden": 1},
    "sampler_params": {"n_steps": 2},
    "n_partition_samples": 64,
}

# Every check passes, with the default networks: none is expected to fail. The
# sparse-input checks pass because CoopFlow rejects sparse matrices with a message naming
# them; the subset- and order-invariance checks because per-row outputs are computed in
# float64 (coopkit.batch_invariance). scikit-learn's checks feed tables only, so the image
# defaults get the same invariances in tests/test_batch_invariance.py.
EXPECTED_FAILURES: dict[str, str] = {}


@parametrize_with_checks(
    [CoopFlow(n_iter=2, batch_size=4, random_state=0)],
    expected_failed_checks=lambda _: EXPECTED_FAILURES,
)
def test_scikit_learn_checks(estimator, check) -> None:
    check(estimator)


def test_clone_then_refit_gives_the_same_model() -> None:
    X = eight_gaussians(64, 0)
    model = CoopFlow(**TINY).fit(X)
    refit = clone(model).fit(X)
    assert not hasattr(clone(model), "flow_")
    assert np.array_equal(model.sample(5, random_state=0), refit.sample(5, random_state=0))


def test_grid_search_over_a_sampler_parameter_uses_score() -> None:
    X = eight_gaussians(200, 0)
    grid = {"sampler_params": [{"n_steps": 2, "step_size": 0.1}, {"n_steps": 2, "step_size": 0.3}]}
    search = GridSearchCV(CoopFlow(**{**TINY, "n_iter": 5, "batch_size": 32}), grid, cv=2)
    search.fit(X)
    scores = search.cv_results_["mean_test_score"]
    assert np.isfinite(scores).all()
    best = search.best_params_["sampler_params"]
    assert best == grid["sampler_params"][int(np.argmax(scores))]
    assert search.best_estimator_.sampler_.step_size == best["step_size"]


def test_last_step_of_a_pipeline_after_a_scaler() -> None:
    X = eight_gaussians(64, 0) * 100 + 5
    pipeline = make_pipeline(StandardScaler(), CoopFlow(**TINY)).fit(X)
    scores = pipeline.score_samples(X[:4])
    assert scores.shape == (4,)
    assert np.isfinite(scores).all()
    assert np.isfinite(pipeline.score(X[:4]))
    assert pipeline.transform(X[:3]).shape == (3, 2)
