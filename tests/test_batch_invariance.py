"""Per-row outputs that do not depend on the batch (coopkit.batch_invariance), on the
table and the image defaults: scikit-learn's subset and order invariance as a property."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from coopkit import CoopFlow
from coopkit.batch_invariance import float64_copy, float64_device
from coopkit.datasets import eight_gaussians

METHODS = ("score_samples", "flow_score_samples", "transform", "inverse_transform")


def digits_like(n: int, seed: int) -> np.ndarray:
    """``(n, 4, 4)`` integer images in 0..16, the digits' levels at a tiny size."""
    return np.random.default_rng(seed).integers(0, 17, size=(n, 4, 4))


@pytest.fixture(scope="module")
def fitted() -> dict[str, tuple[CoopFlow, np.ndarray]]:
    """A model per data kind, with its default networks, and 60 rows to score."""
    table = CoopFlow(n_iter=3, batch_size=16, random_state=0).fit(eight_gaussians(200, 0))
    image = CoopFlow(n_iter=3, batch_size=16, data_range=(0, 16), random_state=0)
    image.fit(digits_like(200, 0))
    return {
        "table": (table, eight_gaussians(60, 1)),
        "image": (image, digits_like(60, 1).astype(np.float64)),
    }


def per_row(model: CoopFlow, method: str) -> Callable[[np.ndarray], np.ndarray]:
    """``method`` of ``model`` on rows of data (``inverse_transform`` on their codes)."""
    if method == "inverse_transform":
        return lambda X: model.inverse_transform(model.transform(X))
    return getattr(model, method)


@settings(max_examples=15, deadline=None)
@given(
    kind=st.sampled_from(["table", "image"]),
    method=st.sampled_from(METHODS),
    order=st.permutations(range(60)),
    size=st.integers(1, 60),
)
def test_a_rows_output_does_not_depend_on_the_rows_beside_it(
    fitted: dict[str, tuple[CoopFlow, np.ndarray]],
    kind: str,
    method: str,
    order: list[int],
    size: int,
) -> None:
    model, X = fitted[kind]
    run = per_row(model, method)
    rows = np.asarray(order[:size])
    full = run(X)
    # float32 arithmetic misses this by ~1e-7 (scikit-learn's tolerance); float64 by ~1e-15
    np.testing.assert_allclose(run(X[rows]), full[rows], rtol=1e-11, atol=1e-11)


@pytest.mark.parametrize("kind", ["table", "image"])
def test_one_row_alone_scores_as_in_its_batch(
    fitted: dict[str, tuple[CoopFlow, np.ndarray]], kind: str
) -> None:
    model, X = fitted[kind]
    alone = np.concatenate([model.score_samples(X[i : i + 1]) for i in range(20)])
    np.testing.assert_allclose(alone, model.score_samples(X)[:20], rtol=1e-11, atol=1e-11)


def test_outputs_are_float64(fitted: dict[str, tuple[CoopFlow, np.ndarray]]) -> None:
    model, X = fitted["image"]
    assert model.transform(X).dtype == np.float64
    assert model.flow_score_samples(X).dtype == np.float64
    assert next(model.flow_.parameters()).dtype == torch.float32  # the fitted parts stay


def test_a_float64_copy_leaves_the_module_alone() -> None:
    net = torch.nn.Linear(3, 2)
    weight = net.weight.detach().clone()
    exact = float64_copy(net, torch.device("cpu"))
    with torch.no_grad():
        exact.weight.add_(1.0)
    assert exact.weight.dtype == torch.float64
    assert torch.equal(net.weight, weight)


def test_float64_runs_on_the_cpu_where_the_device_has_none() -> None:
    assert float64_device(torch.device("mps")) == torch.device("cpu")
    assert float64_device(torch.device("cpu")) == torch.device("cpu")
