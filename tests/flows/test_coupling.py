from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from coopkit.flows import ActNorm, AffineCoupling, RealNVP
from coopkit.testing import jacobian_logdet


def perturbed_realnvp(features: int, seed: int) -> RealNVP:
    """A float64 RealNVP, initialised on data and with every parameter moved off zero."""
    gen = torch.Generator().manual_seed(seed)
    flow = RealNVP((features,), n_layers=4, hidden_features=16).double()
    flow.initialize(torch.randn(64, features, generator=gen, dtype=torch.float64) * 2 + 1)
    with torch.no_grad():
        for p in flow.parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=gen, dtype=p.dtype))
    return flow


flows = st.builds(perturbed_realnvp, st.integers(1, 5), st.integers(0, 2**16))
settings_ = settings(max_examples=15, deadline=None)


@settings_
@given(flow=flows, seed=st.integers(0, 2**16))
def test_inverse_undoes_forward(flow: RealNVP, seed: int) -> None:
    x = torch.randn(
        8, *flow.event_shape, dtype=torch.float64, generator=torch.Generator().manual_seed(seed)
    )
    z, _ = flow(x)
    assert torch.allclose(flow.inverse(z)[0], x, atol=1e-10)
    assert torch.allclose(flow(flow.inverse(z)[0])[0], z, atol=1e-10)


@settings_
@given(flow=flows, seed=st.integers(0, 2**16))
def test_logdet_matches_autograd_jacobian(flow: RealNVP, seed: int) -> None:
    x = 3 * torch.randn(
        4, *flow.event_shape, dtype=torch.float64, generator=torch.Generator().manual_seed(seed)
    )
    _, logdet = flow(x)
    assert torch.allclose(logdet, jacobian_logdet(flow, x), atol=1e-9)
    z, _ = flow(x)
    _, inverse_logdet = flow.inverse(z)
    assert torch.allclose(inverse_logdet, jacobian_logdet(flow.inverse, z), atol=1e-9)
    assert torch.allclose(logdet + inverse_logdet, torch.zeros_like(logdet), atol=1e-10)


def test_log_prob_integrates_to_one_in_1d() -> None:
    flow = perturbed_realnvp(1, 0)
    grid = torch.linspace(-40, 40, 200_001, dtype=torch.float64).unsqueeze(1)
    with torch.no_grad():
        density = flow.log_prob(grid).exp()
    assert torch.trapezoid(density, grid.squeeze(1)).item() == pytest.approx(1.0, abs=1e-4)


def test_actnorm_initialisation_standardises_the_first_batch() -> None:
    x = torch.randn(500, 3, dtype=torch.float64) * torch.tensor([0.5, 2.0, 10.0]) + 4.0
    norm = ActNorm(3).double()
    y, logdet = norm(x)
    assert torch.allclose(y.mean(dim=0), torch.zeros(3, dtype=torch.float64), atol=1e-12)
    assert torch.allclose(y.std(dim=0), torch.ones(3, dtype=torch.float64), atol=1e-12)
    assert torch.allclose(logdet, -x.std(dim=0).log().sum().expand(500))
    y2, _ = norm(x + 100)
    assert torch.allclose(y2, y + 100 / x.std(dim=0))


def test_actnorm_keeps_scale_one_for_a_feature_without_spread_in_the_first_batch() -> None:
    """A pixel blank in the first batch must not be divided by a near-zero spread."""
    first = torch.column_stack([torch.randn(64, dtype=torch.float64), torch.zeros(64)])
    norm = ActNorm(2).double()
    norm(first)
    assert norm.log_scale[1] == 0.0
    assert torch.isclose(norm.log_scale[0], first[:, 0].std().log(), rtol=1e-12)
    y, _ = norm(torch.tensor([[0.0, 5.0]], dtype=torch.float64))
    assert y[0, 1] == 5.0


def test_coupling_scale_is_bounded() -> None:
    layer = AffineCoupling(torch.tensor([1, 0]), hidden_features=8, n_hidden=1, scale_bound=2.0)
    with torch.no_grad():
        for p in layer.parameters():
            p.fill_(50.0)
    _, logdet = layer(torch.randn(10, 2))
    assert logdet.abs().max().item() <= 2.0


def test_realnvp_rejects_images() -> None:
    with pytest.raises(ValueError, match="realnvp takes tables"):
        RealNVP((1, 8, 8))
