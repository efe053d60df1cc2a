from __future__ import annotations

import math

import coopkit.testing
import pytest
import torch
from coopkit.flows.base import ActNorm
from coopkit.flows.glow import InvertibleConv1x1, Logit
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.autograd.functional import jacobian

from coopkit_flowpp import FlowPlusPlus
from coopkit_flowpp.coupling import MixtureCoupling

SMALL_SHAPES = [(1, 4, 4), (3, 4, 4), (2, 8, 8)]
shapes = st.sampled_from(SMALL_SHAPES)
seeds = st.integers(0, 2**16)


def make_flow(
    shape: tuple[int, int, int], seed: int, **params: object
) -> tuple[FlowPlusPlus, torch.Tensor]:
    """A float64 Flow++, initialised on a batch in [-1, 1], then all weights perturbed."""
    generator = torch.Generator().manual_seed(seed)
    params = {"n_steps": 2, "hidden_channels": 8, "n_components": 3, **params}
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        flow = FlowPlusPlus(shape, **params).double()
    x = torch.rand(16, *shape, generator=generator, dtype=torch.float64) * 2 - 1
    flow.initialize(x)
    with torch.no_grad():
        for p in flow.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=generator, dtype=p.dtype))
    return flow, x


@settings(max_examples=8, deadline=None)
@given(shape=shapes, seed=seeds)
def test_round_trip_both_ways(shape: tuple[int, int, int], seed: int) -> None:
    flow, x = make_flow(shape, seed)
    z, logdet = flow(x)
    x_back, logdet_back = flow.inverse(z)
    torch.testing.assert_close(x_back, x, atol=1e-10, rtol=0)
    torch.testing.assert_close(logdet_back, -logdet, atol=1e-8, rtol=0)
    latent = torch.randn(z.shape, generator=torch.Generator().manual_seed(seed), dtype=z.dtype)
    x_new, logdet_inv = flow.inverse(latent)
    z_back, logdet_fwd = flow(x_new)
    torch.testing.assert_close(z_back, latent, atol=1e-9, rtol=0)
    torch.testing.assert_close(logdet_fwd, -logdet_inv, atol=1e-8, rtol=0)


@pytest.mark.parametrize(
    ("shape", "params"),
    [((1, 4, 4), {}), ((3, 4, 4), {}), ((1, 4, 4), {"n_scales": 1, "attention": True})],
    ids=["1x4x4", "3x4x4", "1x4x4-one-scale-attention"],
)
def test_logdet_matches_autograd_jacobian(
    shape: tuple[int, int, int], params: dict[str, object]
) -> None:
    flow, x = make_flow(shape, seed=7, attention_heads=2, **params)
    point = x[:1]
    z, logdet = flow(point)

    def forward(flat: torch.Tensor) -> torch.Tensor:
        return flow(flat.view(1, *shape))[0].flatten()

    def inverse(flat: torch.Tensor) -> torch.Tensor:
        return flow.inverse(flat.view(1, *shape))[0].flatten()

    matrix = jacobian(forward, point.flatten(), vectorize=True)
    assert (matrix - torch.diag(matrix.diagonal())).abs().max() > 1e-2
    sign, expected = torch.slogdet(matrix)
    assert sign != 0
    torch.testing.assert_close(logdet[0], expected, atol=1e-8, rtol=1e-10)
    _, expected_inv = torch.slogdet(jacobian(inverse, z.flatten(), vectorize=True))
    torch.testing.assert_close(flow.inverse(z)[1][0], expected_inv, atol=1e-8, rtol=1e-10)
    torch.testing.assert_close(expected_inv, -expected, atol=1e-8, rtol=1e-10)


def test_it_is_glow_with_mixture_couplings() -> None:
    flow = FlowPlusPlus((1, 8, 8), n_scales=2, n_steps=3, hidden_channels=8)
    assert isinstance(flow.logit, Logit)
    kinds = [type(t) for t in flow.scales[0].transforms[:3]]
    assert kinds == [ActNorm, InvertibleConv1x1, MixtureCoupling]
    couplings = [m for m in flow.modules() if isinstance(m, MixtureCoupling)]
    assert len(couplings) == 6
    assert [tuple(c.mask.shape) for c in couplings[:2]] == [(1, 4, 1, 1), (1, 1, 4, 4)]
    assert flow.factored == [2, 0]
    assert flow.dequantizer is None


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_log_prob_is_finite_at_the_pixel_bounds_and_samples_lie_inside(dtype: torch.dtype) -> None:
    flow = FlowPlusPlus((3, 8, 8), hidden_channels=8).to(dtype)
    signs = torch.randint(0, 2, (8, 3, 8, 8), generator=torch.Generator().manual_seed(0))
    flow.initialize(torch.rand(32, 3, 8, 8, dtype=dtype) * 2 - 1)
    log_prob = flow.log_prob((2 * signs - 1).to(dtype))
    assert log_prob.shape == (8,)
    assert torch.isfinite(log_prob).all()
    samples = flow.sample(4, generator=torch.Generator().manual_seed(0), temperature=3.0)
    assert samples.shape == (4, 3, 8, 8)
    assert samples.dtype == dtype
    assert samples.abs().max() < 1 / 0.9


def test_float32_round_trip_on_a_digits_sized_batch() -> None:
    flow = FlowPlusPlus((1, 8, 8))
    x = torch.rand(64, 1, 8, 8, generator=torch.Generator().manual_seed(0)) * 2 - 1
    flow.initialize(x)
    z, logdet = flow(x)
    x_back, logdet_back = flow.inverse(z)
    torch.testing.assert_close(x_back, x, atol=1e-4, rtol=0)
    torch.testing.assert_close(logdet_back, -logdet, atol=1e-3, rtol=1e-5)


def test_bad_shapes_and_parameters_raise() -> None:
    with pytest.raises(ValueError, match=r"n_scales=2.*\(3, 6, 6\).*use n_scales <= 1"):
        FlowPlusPlus((3, 6, 6))
    with pytest.raises(ValueError, match="channels, height, width"):
        FlowPlusPlus((8, 8))
    for name in ["n_scales", "n_steps", "hidden_channels", "n_components"]:
        with pytest.raises(ValueError, match=f"{name} must be >= 1"):
            FlowPlusPlus((1, 8, 8), **{name: 0})
    with pytest.raises(
        ValueError, match="attention_heads=3 must be >= 1 and divide hidden_channels=8"
    ):
        FlowPlusPlus((1, 8, 8), hidden_channels=8, attention=True, attention_heads=3)
    with pytest.raises(ValueError, match="needs dequantize_width"):
        FlowPlusPlus((1, 8, 8), variational_dequantization=True)
    with pytest.raises(ValueError, match=r"dequantize_width must lie in \(0, 2\]"):
        FlowPlusPlus((1, 8, 8), dequantize_width=0.0)
    flow = FlowPlusPlus((1, 8, 8), hidden_channels=4)
    with pytest.raises(ValueError, match=r"event_shape=\(1, 16, 16\)"):
        flow(torch.zeros(2, 1, 16, 16))
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        flow(torch.full((2, 1, 8, 8), 1.2))
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        flow(torch.full((2, 1, 8, 8), math.nan))
    with pytest.raises(ValueError, match="dequantize_width=2 / levels"):
        flow.elbo(torch.zeros(2, 1, 8, 8))


def test_passes_coopkits_conformance_kit() -> None:
    coopkit.testing.check_flow(FlowPlusPlus, (1, 8, 8), hidden_channels=8, n_components=3)
