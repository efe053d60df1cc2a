"""RealNVP: what is particular to it; round trips and log-determinants are the kit's."""

from __future__ import annotations

import pytest
import torch

from coopkit.flows import ActNorm, AffineCoupling, RealNVP
from coopkit.testing import check_flow


@pytest.mark.parametrize("features", [2, 3, 5])
def test_realnvp_conforms_at_several_widths(features: int) -> None:
    """Round trips and log-determinants (against the autograd Jacobian) of a perturbed
    RealNVP, through the conformance kit, at widths the registry-wide run does not use."""
    check_flow(RealNVP, (features,), n_layers=4, hidden_features=16)


@pytest.mark.usefixtures("float64")
def test_log_prob_integrates_to_one_in_1d() -> None:
    generator = torch.Generator().manual_seed(0)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        flow = RealNVP((1,), n_layers=4, hidden_features=16)
    flow.initialize(torch.randn(64, 1, generator=generator) * 2 + 1)
    with torch.no_grad():
        for p in flow.parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=generator))
    grid = torch.linspace(-40, 40, 200_001).unsqueeze(1)
    with torch.no_grad():
        density = flow.log_prob(grid).exp()
    assert torch.trapezoid(density, grid.squeeze(1)).item() == pytest.approx(1.0, abs=1e-4)


@pytest.mark.usefixtures("float64")
def test_actnorm_initialisation_standardises_the_first_batch() -> None:
    x = torch.randn(500, 3) * torch.tensor([0.5, 2.0, 10.0]) + 4.0
    norm = ActNorm(3)
    y, logdet = norm(x)
    assert torch.allclose(y.mean(dim=0), torch.zeros(3), atol=1e-12)
    assert torch.allclose(y.std(dim=0), torch.ones(3), atol=1e-12)
    assert torch.allclose(logdet, -x.std(dim=0).log().sum().expand(500))
    y2, _ = norm(x + 100)
    assert torch.allclose(y2, y + 100 / x.std(dim=0))


@pytest.mark.usefixtures("float64")
def test_actnorm_keeps_scale_one_for_a_feature_without_spread_in_the_first_batch() -> None:
    """A pixel blank in the first batch must not be divided by a near-zero spread."""
    first = torch.column_stack([torch.randn(64), torch.zeros(64)])
    norm = ActNorm(2)
    norm(first)
    assert norm.log_scale[1] == 0.0
    assert torch.isclose(norm.log_scale[0], first[:, 0].std().log(), rtol=1e-12)
    y, _ = norm(torch.tensor([[0.0, 5.0]]))
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
