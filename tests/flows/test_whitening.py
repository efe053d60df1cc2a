"""The whitening layer: it starts at the data's Gaussian fit, its log-determinant is the
autograd Jacobian's, it survives degenerate batches, and NSF takes it as its first layer."""

from __future__ import annotations

import math

import pytest
import torch

from coopkit.flows.spline import NSF
from coopkit.flows.whitening import Whitening
from coopkit.testing import check_flow, jacobian_logdet


def correlated(n: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    mixing = torch.tensor([[2.0, 0.0, 0.0], [1.5, 0.5, 0.0], [-1.0, 0.3, 0.2]])
    return torch.randn(n, 3, generator=g) @ mixing.T + torch.tensor([3.0, -1.0, 0.5])


@pytest.mark.usefixtures("float64")
def test_it_starts_at_the_gaussian_fit_of_its_first_batch() -> None:
    x = correlated(500)
    layer = Whitening(3, shrinkage=0.0)
    y, logdet = layer(x)
    fit = torch.distributions.MultivariateNormal(x.mean(dim=0), torch.cov(x.T))
    log_q = -0.5 * y.square().sum(dim=1) - 1.5 * math.log(2 * math.pi) + logdet
    torch.testing.assert_close(log_q, fit.log_prob(x))
    torch.testing.assert_close(torch.cov(y.T), torch.eye(3))


@pytest.mark.usefixtures("float64")
def test_log_determinants_are_the_autograd_jacobians_both_ways() -> None:
    layer = Whitening(3)
    layer(correlated(200))
    with torch.no_grad():
        for p in layer.parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=torch.Generator().manual_seed(1)))
    x = correlated(4, seed=2)
    y, logdet = layer(x)
    torch.testing.assert_close(logdet, jacobian_logdet(layer, x))
    x_back, inverse_logdet = layer.inverse(y)
    torch.testing.assert_close(x_back, x)
    torch.testing.assert_close(inverse_logdet, jacobian_logdet(layer.inverse, y))


def test_a_constant_feature_and_fewer_rows_than_features_still_invert() -> None:
    x = torch.randn(3, 6, generator=torch.Generator().manual_seed(0))
    x[:, 2] = 7.0
    layer = Whitening(6)
    y, logdet = layer(x)
    assert torch.isfinite(y).all()
    assert torch.isfinite(logdet).all()
    torch.testing.assert_close(layer.inverse(y)[0], x, atol=1e-4, rtol=1e-4)


def test_shrinkage_outside_the_unit_interval_is_refused() -> None:
    with pytest.raises(ValueError, match="shrinkage must lie in"):
        Whitening(2, shrinkage=1.5)


@pytest.mark.parametrize("event_shape", [(3,), (1, 4, 4)])
def test_nsf_with_a_whitening_first_layer_conforms(event_shape: tuple[int, ...]) -> None:
    check_flow(NSF, event_shape, n_layers=2, hidden_features=16, n_bins=6, whiten=True)
