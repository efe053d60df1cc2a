"""Dequantisers are valid densities on the bin, and ``elbo`` is a bound on log P(bin)."""

from __future__ import annotations

import math

import pytest
import torch
from torch.autograd.functional import jacobian

from coopkit_flowpp import FlowPlusPlus, UniformDequantizer, VariationalDequantizer

WIDTH = 0.5  # four levels in [-1, 1]: wide bins, so q(u | x) has room to matter
X = torch.tensor([[[[-1.0, -0.5], [0.0, 0.5]]]], dtype=torch.float64)  # lower edges


def perturbed_dequantizer(shape: tuple[int, int, int], seed: int) -> VariationalDequantizer:
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        dequantizer = VariationalDequantizer(shape, WIDTH, hidden_channels=8, n_steps=3).double()
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in dequantizer.parameters():
            p.add_(0.2 * torch.randn(p.shape, generator=generator, dtype=p.dtype))
    return dequantizer


def tiny_flow(variational: bool) -> FlowPlusPlus:
    """A float64 Flow++ on (1, 2, 2) images whose density varies across a bin."""
    with torch.random.fork_rng():
        torch.manual_seed(0)
        flow = FlowPlusPlus(
            (1, 2, 2),
            n_scales=1,
            hidden_channels=8,
            n_components=3,
            dequantize_width=WIDTH,
            variational_dequantization=variational,
        ).double()
    generator = torch.Generator().manual_seed(0)
    flow.initialize(torch.rand(64, 1, 2, 2, generator=generator, dtype=torch.float64) * 1.6 - 0.8)
    with torch.no_grad():
        for name, p in flow.named_parameters():
            if not name.startswith("dequantizer"):
                p.add_(0.3 * torch.randn(p.shape, generator=generator, dtype=p.dtype))
    return flow


def log_bin_probability(flow: FlowPlusPlus, n: int = 20000) -> tuple[float, float]:
    """``log ∫_bin p`` by uniform importance sampling, and its standard error."""
    u = torch.rand(n, 1, 2, 2, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    with torch.no_grad():
        log_p = flow.log_prob(X + WIDTH * u)
    weights = (log_p - log_p.max()).exp()
    estimate = torch.logsumexp(log_p, dim=0) - math.log(n) + 4 * math.log(WIDTH)
    return estimate.item(), (weights.std() / weights.mean()).item() / math.sqrt(n)


def mean_elbo(flow: FlowPlusPlus, n: int = 20000) -> tuple[float, float]:
    with torch.no_grad():
        bound = flow.elbo(X.expand(n, 1, 2, 2), torch.Generator().manual_seed(6))
    return bound.mean().item(), bound.std().item() / math.sqrt(n)


def test_uniform_dequantizer_fills_the_bin_with_constant_density() -> None:
    x = torch.zeros(4, 1, 2, 2, dtype=torch.float64)
    y, log_q = UniformDequantizer(WIDTH).dequantize(x, torch.Generator().manual_seed(0))
    assert ((y >= 0) & (y < WIDTH)).all()
    assert y.std() > 0.05
    torch.testing.assert_close(log_q, torch.full((4,), -4 * math.log(WIDTH), dtype=torch.float64))
    with pytest.raises(ValueError, match="positive"):
        UniformDequantizer(0.0)


def test_uniform_elbo_is_the_dequantised_log_likelihood_plus_the_bin_volume() -> None:
    flow = tiny_flow(variational=False)
    x = X.expand(8, 1, 2, 2)
    elbo = flow.elbo(x, torch.Generator().manual_seed(1), n_samples=3)
    generator = torch.Generator().manual_seed(1)
    u = torch.stack([torch.rand(x.shape, generator=generator, dtype=x.dtype) for _ in range(3)])
    expected = flow.log_prob((x + WIDTH * u).flatten(0, 1)).view(3, 8).mean(dim=0)
    torch.testing.assert_close(elbo, expected + 4 * math.log(WIDTH))


@pytest.mark.parametrize("shape", [(1, 2, 2), (2, 2, 2)])
def test_variational_log_density_has_the_jacobian_of_its_map(shape: tuple[int, ...]) -> None:
    dequantizer = perturbed_dequantizer(shape, seed=1)
    generator = torch.Generator().manual_seed(2)
    x = torch.rand(1, *shape, generator=generator, dtype=torch.float64) * 2 - 1
    eps = torch.randn(1, *shape, generator=generator, dtype=torch.float64)
    u, logdet = dequantizer.transform(eps, x)
    assert ((u > 0) & (u < WIDTH)).all()
    matrix = jacobian(lambda e: dequantizer.transform(e.view(1, *shape), x)[0].flatten(), eps)
    matrix = matrix.reshape(u.numel(), eps.numel())
    assert (matrix - torch.diag(matrix.diagonal())).abs().max() > 1e-3
    torch.testing.assert_close(logdet[0], torch.slogdet(matrix)[1], atol=1e-9, rtol=1e-10)
    y, log_q = dequantizer.dequantize(x, torch.Generator().manual_seed(3))
    torch.testing.assert_close(dequantizer.log_prob(y - x, x), log_q, atol=1e-8, rtol=1e-10)


def test_variational_density_integrates_to_one_over_the_bin() -> None:
    dequantizer = perturbed_dequantizer((1, 2, 2), seed=4)
    n = 20000
    u = WIDTH * torch.rand(n, 1, 2, 2, generator=torch.Generator().manual_seed(0)).double()
    with torch.no_grad():
        volume_times_q = dequantizer.log_prob(u, X.expand(n, 1, 2, 2)).exp() * WIDTH**4
    error = volume_times_q.std().item() / math.sqrt(n)
    assert error < 0.02
    assert volume_times_q.mean().item() == pytest.approx(1.0, abs=4 * error)


def test_elbo_bounds_the_bin_probability_and_learning_q_tightens_it() -> None:
    flow = tiny_flow(variational=True)
    log_p, log_p_error = log_bin_probability(flow)
    uniform = tiny_flow(variational=False)
    uniform.load_state_dict(flow.state_dict(), strict=False)
    bound_uniform, error_uniform = mean_elbo(uniform)
    bound, error = mean_elbo(flow)
    assert bound_uniform + 4 * error_uniform < log_p - 1.0  # loose on these wide bins
    assert bound < log_p + 4 * (error + log_p_error)

    optimizer = torch.optim.Adam(flow.dequantizer.parameters(), lr=1e-2)
    generator = torch.Generator().manual_seed(7)
    for _ in range(80):
        loss = -flow.elbo(X.expand(256, 1, 2, 2), generator).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    trained, trained_error = mean_elbo(flow)
    assert trained > bound_uniform + 1.0
    assert trained < log_p + 4 * (trained_error + log_p_error)
    assert trained > log_p - 0.3
