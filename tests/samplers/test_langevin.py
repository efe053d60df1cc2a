from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from coopkit.samplers import LangevinSampler


def quadratic(precision: torch.Tensor):
    """``E(x) = ½ xᵀ P x`` for a batch ``(n, d)``."""
    return lambda x: 0.5 * ((x @ precision) * x).sum(dim=1)


@settings(max_examples=25, deadline=None)
@given(
    curvature=st.lists(st.floats(0.1, 5.0), min_size=1, max_size=4),
    step_size=st.floats(0.01, 0.5),
    n_steps=st.integers(1, 40),
    seed=st.integers(0, 2**16),
)
def test_noise_free_steps_contract_at_the_predicted_rate(
    curvature: list[float], step_size: float, n_steps: int, seed: int
) -> None:
    a = torch.tensor(curvature, dtype=torch.float64)
    x0 = torch.randn(
        6, len(curvature), dtype=torch.float64, generator=torch.Generator().manual_seed(seed)
    )
    sampler = LangevinSampler(step_size=step_size, n_steps=n_steps, max_change=None)
    result = sampler(quadratic(torch.diag(a)), x0)
    expected = x0 * (1 - 0.5 * step_size**2 * a) ** n_steps
    assert torch.allclose(result.x, expected, rtol=1e-10, atol=1e-12)


def test_noisy_langevin_reproduces_a_gaussian() -> None:
    """ULA on ``E = ½ xᵀ P x`` with ``h = s²/2`` is stationary at covariance
    ``(P (I - hP/2))⁻¹`` (exact for Gaussians); with 4000 independent chains run for
    ~10 relaxation times, each variance has standard error ``√(2/n)·var`` ≈ 2.2 % and
    each mean ``√(var/n)``; the tolerances are 5 of those standard errors."""
    cov = torch.tensor([[1.0, 0.6], [0.6, 0.5]], dtype=torch.float64)
    precision = torch.linalg.inv(cov)
    step = 0.1
    h = step**2 / 2
    stationary = torch.linalg.inv(
        precision @ (torch.eye(2, dtype=torch.float64) - h * precision / 2)
    )
    n = 4000
    relax = 1 / (h * torch.linalg.eigvalsh(precision).min().item())
    sampler = LangevinSampler(
        step_size=step, n_steps=math.ceil(10 * relax), noise_scale=1.0, max_change=None
    )
    x0 = torch.zeros(n, 2, dtype=torch.float64)
    x = sampler(quadratic(precision), x0, generator=torch.Generator().manual_seed(0)).x
    variances = stationary.diagonal()
    assert torch.all(x.mean(dim=0).abs() < 5 * (variances / n).sqrt())
    emp = torch.cov(x.T)
    assert torch.all((emp.diagonal() - variances).abs() < 5 * math.sqrt(2 / n) * variances)
    corr = emp[0, 1] / emp.diagonal().prod().sqrt()
    true_corr = stationary[0, 1] / variances.prod().sqrt()
    assert abs(corr - true_corr) < 5 * (1 - true_corr**2) / math.sqrt(n)


def test_no_graph_survives_unless_differentiable() -> None:
    x0 = torch.randn(5, 3, requires_grad=True)
    sampler = LangevinSampler(step_size=0.2, n_steps=3)
    energy = quadratic(torch.eye(3))
    result = sampler(energy, x0)
    assert not result.x.requires_grad
    assert result.x.grad_fn is None
    kept = sampler(energy, x0, differentiable=True)
    kept.x.sum().backward()
    expected = (1 - 0.5 * 0.2**2) ** 3
    assert torch.allclose(x0.grad, torch.full_like(x0, expected))


def test_step_change_and_bounds_are_clamped() -> None:
    sampler = LangevinSampler(step_size=1.0, n_steps=1, max_change=0.1, bounds=(-1.0, 1.0))
    x0 = torch.tensor([[0.0, 0.95], [5.0, -0.5]])
    x = sampler(lambda x: -100 * x.sum(dim=1), x0).x
    assert torch.equal(x, torch.tensor([[0.1, 1.0], [1.0, -0.4]]))


def test_same_generator_seed_gives_same_chains() -> None:
    sampler = LangevinSampler(step_size=0.3, n_steps=10, noise_scale=1.0)
    energy = quadratic(torch.eye(2))
    x0 = torch.zeros(8, 2)
    a = sampler(energy, x0, generator=torch.Generator().manual_seed(1)).x
    b = sampler(energy, x0, generator=torch.Generator().manual_seed(1)).x
    c = sampler(energy, x0, generator=torch.Generator().manual_seed(2)).x
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_stats_report_the_energy_drop() -> None:
    result = LangevinSampler(step_size=0.5, n_steps=5)(quadratic(torch.eye(2)), torch.ones(4, 2))
    assert result.stats["step_size"] == 0.5
    assert result.stats["energy_drop"] > 0
    assert result.stats["grad_norm"] > 0


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"step_size": -0.1}, "step_size must be positive"),
        ({"n_steps": 2.5}, "n_steps must be a non-negative integer"),
        ({"noise_scale": -1}, "noise_scale must be >= 0"),
        ({"max_change": 0}, "max_change must be positive"),
        ({"bounds": (1, -1)}, "bounds must be"),
    ],
)
def test_bad_parameters_are_rejected(params: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        LangevinSampler(**params)
