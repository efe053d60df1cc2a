from __future__ import annotations

import pytest
import torch

from coopkit.inversion import PATIENCE, fixed_point_fit, gradient_fit
from coopkit.samplers import LangevinSampler


def quadratic(x: torch.Tensor) -> torch.Tensor:
    return 0.5 * (x**2).sum(dim=1)


@pytest.mark.parametrize("fit", [fixed_point_fit, gradient_fit])
def test_both_solvers_find_the_input_of_a_contracting_langevin_flow(fit, float64) -> None:
    """One noise-free step of size 0.5 on ‖x‖²/2 maps x0 to (1 - 1/8) x0: the input that
    reaches the target is target / (7/8), and the error falls from its start."""
    sampler = LangevinSampler(step_size=0.5, n_steps=1, max_change=None)
    target = torch.tensor([[1.0, -2.0]])
    options = {"lr": 0.05} if fit is gradient_fit else {}
    result = fit(quadratic, sampler, target, target, n_iter=500, tol=0, **options)
    assert torch.allclose(result.x0, target / (1 - 0.125), atol=1e-3)
    assert result.error.item() < 1e-5 < result.initial_error.item()


def test_fixed_point_stops_once_the_error_stops_falling(float64) -> None:
    sampler = LangevinSampler(step_size=0.5, n_steps=4, max_change=None)
    target = torch.randn(8, 3, generator=torch.Generator().manual_seed(0))
    stopped = fixed_point_fit(quadratic, sampler, target, target, n_iter=500, tol=1e-3)
    everything = fixed_point_fit(quadratic, sampler, target, target, n_iter=500, tol=0)
    assert everything.n_iter == 500
    assert PATIENCE < stopped.n_iter < 100
    assert stopped.error.max() < 1e-6 * stopped.initial_error.max()


@pytest.mark.parametrize("fit", [fixed_point_fit, gradient_fit])
def test_a_fit_that_cannot_improve_returns_its_best_input(fit, float64) -> None:
    """A step of s²/2 = 1.5 maps x0 to -x0/2: the fixed-point step points the wrong way
    and Adam at a huge rate overshoots, but neither may return a worse input than its
    start, nor a non-finite one."""
    sampler = LangevinSampler(step_size=3**0.5, n_steps=1, max_change=None)
    target = torch.tensor([[1.0, 2.0], [-1.0, 0.5]])
    options = {"lr": 50.0} if fit is gradient_fit else {}
    result = fit(quadratic, sampler, target, torch.zeros(2, 2), n_iter=30, **options)
    assert torch.isfinite(result.x0).all()
    assert (result.error <= result.initial_error).all()
    assert torch.allclose(sampler(quadratic, result.x0).x, result.x)


def test_fixed_point_keeps_inputs_in_the_box_and_fits_only_the_mask(float64) -> None:
    sampler = LangevinSampler(step_size=0.5, n_steps=2, max_change=None)
    target = torch.tensor([[0.6, 5.0], [0.95, 5.0]])  # 0.95 needs x0 = 1.24, out of the box
    mask = torch.tensor([1.0, 0.0])
    x0 = torch.tensor([[0.0, 0.3], [0.0, 0.3]])
    result = fixed_point_fit(
        quadratic, sampler, target, x0, mask=mask, bounds=(-1.0, 1.0), n_iter=200
    )
    assert torch.equal(result.x0[:, 1], x0[:, 1])
    assert abs(result.x[0, 0].item() - 0.6) < 1e-6
    assert result.x0[1, 0] == 1.0
