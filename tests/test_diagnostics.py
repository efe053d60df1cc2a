from __future__ import annotations

import numpy as np
import pytest
import torch

from coopkit.diagnostics import effective_sample_size, split_rhat


def ar1(phi: float, n_chains: int, n_draws: int, seed: int) -> np.ndarray:
    """Stationary AR(1) chains ``x_t = phi x_{t-1} + sqrt(1 - phi^2) e_t`` (unit variance)."""
    rng = np.random.default_rng(seed)
    noise = rng.normal(size=(n_chains, n_draws))
    x = np.empty_like(noise)
    x[:, 0] = noise[:, 0]
    scale = np.sqrt(1 - phi**2)
    for t in range(1, n_draws):
        x[:, t] = phi * x[:, t - 1] + scale * noise[:, t]
    return x


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ess_of_independent_draws_is_close_to_their_number(seed: int) -> None:
    draws = np.random.default_rng(seed).normal(size=(4, 2500))
    assert effective_sample_size(draws) == pytest.approx(draws.size, rel=0.1)


@pytest.mark.parametrize("seed", [0, 1])
def test_ess_of_ar1_matches_theory(seed: int) -> None:
    phi = 0.9
    draws = ar1(phi, n_chains=8, n_draws=4000, seed=seed)
    expected = draws.size * (1 - phi) / (1 + phi)
    assert effective_sample_size(draws) == pytest.approx(expected, rel=0.15)


def test_ess_is_small_when_chains_sit_apart() -> None:
    rng = np.random.default_rng(3)
    draws = rng.normal(size=(4, 1000)) + 5 * np.arange(4)[:, None]
    assert effective_sample_size(draws) < 0.01 * draws.size


def test_per_dimension_results_match_scalar_calls() -> None:
    rng = np.random.default_rng(4)
    draws = np.stack([rng.normal(size=(3, 500)), ar1(0.8, 3, 500, seed=5)], axis=2)
    ess = effective_sample_size(draws)
    rhat = split_rhat(draws)
    assert ess.shape == rhat.shape == (2,)
    for k in range(2):
        assert ess[k] == pytest.approx(effective_sample_size(draws[:, :, k]))
        assert rhat[k] == pytest.approx(split_rhat(draws[:, :, k]))
    assert ess[1] < 0.3 * ess[0]


def test_tensors_are_accepted() -> None:
    draws = np.random.default_rng(6).normal(size=(2, 200))
    tensor = torch.from_numpy(draws).requires_grad_(True)
    assert effective_sample_size(tensor) == pytest.approx(effective_sample_size(draws))
    assert split_rhat(tensor) == pytest.approx(split_rhat(draws))


@pytest.mark.parametrize("seed", [0, 1])
def test_rhat_is_one_for_mixed_chains(seed: int) -> None:
    draws = ar1(0.5, n_chains=4, n_draws=2000, seed=seed)
    assert abs(split_rhat(draws) - 1) < 0.01


def test_rhat_flags_chains_with_different_means() -> None:
    draws = ar1(0.5, n_chains=4, n_draws=1000, seed=7) + np.array([0, 0, 0, 1.0])[:, None]
    assert split_rhat(draws) > 1.1


def test_split_rhat_flags_a_trend_within_one_chain() -> None:
    rng = np.random.default_rng(8)
    draws = rng.normal(size=(1, 1000)) + np.linspace(0, 3, 1000)
    assert split_rhat(draws) > 1.1


def test_constant_draws_give_nan() -> None:
    draws = np.ones((3, 10))
    assert np.isnan(effective_sample_size(draws))
    assert np.isnan(split_rhat(draws))


@pytest.mark.parametrize(
    ("draws", "message"),
    [
        (np.zeros(10), "shaped"),
        (np.zeros((2, 3)), "at least 4 draws"),
        (np.array([[0.0, 1.0, np.nan, 2.0]]), "NaN"),
        ([["a", "b", "c", "d"]], "numeric"),
    ],
)
def test_bad_input_is_named(draws: object, message: str) -> None:
    with pytest.raises((ValueError, TypeError), match=message):
        effective_sample_size(draws)
    with pytest.raises((ValueError, TypeError), match=message):
        split_rhat(draws)
