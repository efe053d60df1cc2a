from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from coopkit_flowpp.mixture import (
    bisection_steps,
    inverse_logit_mixture_cdf,
    logit_mixture_cdf,
)

seeds = st.integers(0, 2**16)
components = st.sampled_from([1, 2, 5])


def mixture(
    seed: int, k: int, n: int = 200, spread: float = 2.0, log_scale: float = 2.0
) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """``n`` points and one random ``k``-component mixture per point, in float64."""
    generator = torch.Generator().manual_seed(seed)

    def draw(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=generator, dtype=torch.float64)

    log_scales = log_scale * (2 * torch.rand(n, k, generator=generator, dtype=torch.float64) - 1)
    return 5 * draw(n), (draw(n, k), spread * draw(n, k), log_scales)


def naive(x: torch.Tensor, logits: torch.Tensor, means: torch.Tensor, log_scales: torch.Tensor):
    weights = torch.softmax(logits, dim=-1)
    cdf = (weights * torch.sigmoid((x[:, None] - means) / log_scales.exp())).sum(dim=-1)
    return torch.logit(cdf)


@settings(max_examples=15, deadline=None)
@given(seed=seeds, k=components)
def test_value_and_slope_match_the_direct_formula_and_autograd(seed: int, k: int) -> None:
    x, params = mixture(seed, k)
    value, log_slope = logit_mixture_cdf(x, *params)
    direct = naive(x, *params)
    unsaturated = direct.abs() < 10  # the direct formula loses 1 - F to rounding beyond
    assert unsaturated.sum() > 50
    torch.testing.assert_close(value[unsaturated], direct[unsaturated], atol=1e-9, rtol=1e-9)
    assert torch.isfinite(value).all()
    x = x.clone().requires_grad_(True)
    (slope,) = torch.autograd.grad(logit_mixture_cdf(x, *params)[0].sum(), x)
    torch.testing.assert_close(log_slope, slope.log(), atol=1e-10, rtol=1e-10)


@settings(max_examples=15, deadline=None)
@given(seed=seeds, k=components)
def test_bisection_inverts_to_float64_accuracy(seed: int, k: int) -> None:
    """The error allowed is the conditioning of the round trip: ``y`` carries rounding of
    about eps (|y| + 1), which moves the root by that over ``ℓ'(x)``."""
    x, params = mixture(seed, k)
    y, log_slope = logit_mixture_cdf(x, *params)
    eps = torch.finfo(torch.float64).eps
    tolerance = 8 * eps * (x.abs() + (y.abs() + 1) * torch.exp(-log_slope))
    error = (inverse_logit_mixture_cdf(y, *params) - x).abs()
    assert (error <= tolerance).all(), (error / tolerance).max()


@settings(max_examples=15, deadline=None)
@given(seed=seeds, k=st.sampled_from([2, 5]))
def test_separated_sharp_components_and_far_latents_still_invert(seed: int, k: int) -> None:
    """Plateaus between sharp components make ``x`` ill-conditioned; ``ℓ(x)`` must still
    hit ``y``, and latents far out in the tails must invert to finite values."""
    _, params = mixture(seed, k, spread=20.0, log_scale=5.0)
    y = torch.linspace(-300, 300, 200, dtype=torch.float64)
    x = inverse_logit_mixture_cdf(y, *params)
    assert torch.isfinite(x).all()
    value, log_slope = logit_mixture_cdf(x, *params)
    assert torch.isfinite(log_slope).all()
    # one rounding unit of x moves ℓ by about eps |x| ℓ'(x): the error allowed at the root
    tolerance = 4 * torch.finfo(torch.float64).eps * (x.abs() + 1) * log_slope.exp() + 1e-12
    assert ((value - y).abs() <= tolerance * (1 + y.abs())).all()


def test_inverse_gradients_are_the_implicit_function_gradients() -> None:
    x, params = mixture(seed=3, k=3, n=6)
    y, _ = logit_mixture_cdf(x, *params)
    inputs = tuple(t.clone().requires_grad_(True) for t in (y, *params))
    assert torch.autograd.gradcheck(inverse_logit_mixture_cdf, inputs)


def test_float32_inverse_is_accurate_to_rounding() -> None:
    x, params = mixture(seed=1, k=4)
    x, params = x.float(), tuple(p.float() for p in params)
    y, _ = logit_mixture_cdf(x, *params)
    back = inverse_logit_mixture_cdf(y, *params)
    torch.testing.assert_close(back, x, atol=2e-5, rtol=1e-5)


@pytest.mark.parametrize(("dtype", "steps"), [(torch.float64, 64), (torch.float32, 35)])
def test_bisection_steps_follow_the_mantissa(dtype: torch.dtype, steps: int) -> None:
    assert bisection_steps(dtype) == steps
