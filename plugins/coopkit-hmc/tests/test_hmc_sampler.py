from __future__ import annotations

import math

import pytest
import torch
from coopkit.samplers.base import Energy, SampleResult, evaluate
from coopkit.samplers.mala import MALASampler
from coopkit.testing import check_sampler
from torch import Tensor

from coopkit_hmc import DualAveraging, HMCSampler, hmc


def gaussian(x: Tensor) -> Tensor:
    return 0.5 * x.flatten(1).square().sum(dim=1)


def run(sampler: HMCSampler, x0: Tensor, seed: int = 0, energy: Energy = gaussian) -> SampleResult:
    return sampler(energy, x0, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("n_leapfrog", [1, 5])
def test_hmc_conforms(n_leapfrog: int) -> None:
    check_sampler(hmc, n_leapfrog=n_leapfrog)


def test_one_leapfrog_step_is_a_mala_step() -> None:
    x0 = torch.randn(200, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    quartic = lambda x: (x**4).sum(dim=1) / 4 + gaussian(x)  # noqa: E731
    ours = run(HMCSampler(step_size=0.8, n_leapfrog=1, n_steps=10), x0, energy=quartic)
    theirs = run(MALASampler(step_size=0.8, n_steps=10), x0, energy=quartic)
    torch.testing.assert_close(ours.x, theirs.x)
    assert ours.stats["acceptance_rate"] == theirs.stats["acceptance_rate"] < 1


def test_small_steps_conserve_the_hamiltonian_and_large_ones_do_not() -> None:
    x0 = torch.randn(500, 10, generator=torch.Generator().manual_seed(2))
    rates = [
        run(HMCSampler(step_size=eps, n_leapfrog=10, n_steps=5), x0).stats["acceptance_rate"]
        for eps in (0.01, 1.0, 2.5)
    ]
    assert rates[0] > 0.999
    assert rates[0] > rates[1] > rates[2]
    assert rates[2] < 0.05


def test_samples_a_standard_normal() -> None:
    x0 = torch.full((4000, 2), 3.0, dtype=torch.float64)
    result = run(HMCSampler(step_size=0.4, n_leapfrog=5, n_steps=60), x0)
    torch.testing.assert_close(
        result.x.mean(0), torch.zeros(2, dtype=torch.float64), atol=0.05, rtol=0
    )
    torch.testing.assert_close(
        result.x.var(0), torch.ones(2, dtype=torch.float64), atol=0.07, rtol=0
    )


@pytest.mark.parametrize("start", [0.01, 2.0])
def test_dual_averaging_reaches_the_target_acceptance(start: float) -> None:
    x0 = torch.randn(1000, 20, generator=torch.Generator().manual_seed(3))
    sampler = HMCSampler(step_size=start, n_leapfrog=5, n_steps=30, n_warmup=150)
    result = run(sampler, x0)
    assert result.stats["acceptance_rate"] == pytest.approx(0.65, abs=0.06)
    assert 0.3 < result.stats["step_size"] < 1.5
    assert sampler.step_size == start


def test_dual_averaging_converges_on_a_known_curve() -> None:
    adapt = DualAveraging(step_size=3.0, target_accept=0.8)
    for _ in range(1000):
        adapt.update(1 / (1 + adapt.step_size**2))  # acceptance 0.8 at step 0.5
    assert adapt.final_step_size == pytest.approx(0.5, rel=0.05)
    assert adapt.iteration == 1000


def wall(value: float) -> Energy:
    def energy(x: Tensor) -> Tensor:
        e = gaussian(x)
        return torch.where(x[:, 0] > 0.5, torch.full_like(e, value), e)

    return energy


@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan])
def test_non_finite_end_points_are_rejected(value: float) -> None:
    x0 = torch.zeros(2000, 1, dtype=torch.float64)
    result = run(HMCSampler(step_size=0.5, n_leapfrog=3, n_steps=50), x0, energy=wall(value))
    assert torch.isfinite(result.x).all()
    assert result.x.max().item() <= 0.5
    assert 0 < result.stats["acceptance_rate"] < 1
    assert all(math.isfinite(v) for v in result.stats.values())


def test_bounds_sample_the_truncated_target() -> None:
    # N(0, 1) restricted to [-1, 1] has variance 1 - 2 phi(1) / (2 Phi(1) - 1) = 0.2911.
    x0 = torch.full((4000, 1), 3.0, dtype=torch.float64)
    result = run(HMCSampler(step_size=0.5, n_leapfrog=3, n_steps=100, bounds=(-1.0, 1.0)), x0)
    assert result.x.min().item() >= -1.0
    assert result.x.max().item() <= 1.0
    phi = math.exp(-0.5) / math.sqrt(2 * math.pi)
    expected = 1 - 2 * phi / math.erf(1 / math.sqrt(2))
    assert result.x.var().item() == pytest.approx(expected, abs=0.015)


@pytest.mark.parametrize("seed", [0, 1])
def test_differentiable_chains_have_the_finite_difference_gradient(seed: int) -> None:
    def chain(x0: Tensor) -> Tensor:
        sampler = HMCSampler(step_size=0.3, n_leapfrog=3, n_steps=3)
        quartic = lambda x: (x**4).sum(dim=1) / 4 + gaussian(x)  # noqa: E731
        generator = torch.Generator().manual_seed(seed)
        return sampler(quartic, x0, generator=generator, differentiable=True).x

    x0 = torch.randn(3, 2, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    assert torch.autograd.gradcheck(chain, (x0.requires_grad_(True),))


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"step_size": -1.0}, "step_size"),
        ({"n_leapfrog": 0}, "n_leapfrog"),
        ({"n_steps": 1.5}, "n_steps"),
        ({"n_warmup": -2}, "n_warmup"),
        ({"target_accept": 0.0}, "target_accept"),
        ({"bounds": (0.0, 0.0)}, "bounds"),
    ],
)
def test_bad_parameters_are_named(params: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        HMCSampler(**params)  # type: ignore[arg-type]


def quartic(x: Tensor) -> Tensor:
    """``Σ x⁴/4 + x²/2`` per chain from products and sums only, so that one chain's energy
    and gradient are the same bits alone as within a batch."""
    x = x.flatten(1)
    return (x * x * x * x).sum(dim=1) / 4 + (x * x).sum(dim=1) / 2


def walled_quartic(x: Tensor) -> Tensor:
    """``quartic`` with energy ``+inf`` where the first coordinate exceeds 1: trajectories
    that pass there must be rejected even if they end elsewhere."""
    e = quartic(x)
    return torch.where(x.flatten(1)[:, 0] > 1, torch.full_like(e, math.inf), e)


def reference_trajectory(
    sampler: HMCSampler, energy: Energy, x: Tensor, grad: Tensor, p: Tensor, eps: float
) -> tuple[Tensor, Tensor, Tensor, Tensor, bool]:
    """One chain's leapfrog end point ``(x, E, ∇E, p)`` and whether all along it was finite."""
    finite = True
    p = p - 0.5 * eps * grad
    for step in range(sampler.n_leapfrog):
        x = x + eps * p
        e, grad = evaluate(energy, x, False)[1:]
        finite = finite and bool(e.isfinite().all() and grad.isfinite().all())
        p = p - (eps if step < sampler.n_leapfrog - 1 else 0.5 * eps) * grad
    return x, e, grad, p, finite and bool(p.isfinite().all())


def reference_hmc(
    sampler: HMCSampler, energy: Energy, x0: Tensor, seed: int
) -> tuple[Tensor, float, float]:
    """HMC written one chain at a time: final states, acceptance rate and step size.

    Per transition the sampler draws, from its generator, float32 normal momenta shaped
    like the batch and then one float32 uniform per chain, both cast to the chains' dtype;
    the warm-up uses the mean over the chains of ``min(1, α)``.
    """
    generator = torch.Generator().manual_seed(seed)
    low, high = sampler.bounds or (-math.inf, math.inf)
    rows = [row[None].clamp(low, high) for row in x0]
    chains = [(row, *evaluate(energy, row, False)[1:]) for row in rows]
    adaptation = DualAveraging(sampler.step_size, sampler.target_accept)
    eps, accepted = sampler.step_size, 0
    for t in range(sampler.n_warmup + sampler.n_steps):
        momenta = torch.randn(x0.shape, generator=generator).to(x0.dtype)
        log_u = torch.rand(len(x0), generator=generator).to(x0.dtype).log()
        log_alphas = []
        for i, (x, e, grad) in enumerate(chains):
            p = momenta[i : i + 1]
            y, e_y, grad_y, p_y, valid = reference_trajectory(sampler, energy, x, grad, p, eps)
            kinetic = 0.5 * (p.square().sum() - p_y.square().sum())
            log_alpha = (e - e_y + kinetic).nan_to_num(nan=-math.inf)
            if not (valid and bool(((y >= low) & (y <= high)).all())):
                log_alpha = torch.full_like(e, -math.inf)
            log_alphas.append(log_alpha)
            if log_u[i] < log_alpha:
                chains[i] = (y, e_y, grad_y)
                accepted += t >= sampler.n_warmup
        if t < sampler.n_warmup:
            adaptation.update(torch.cat(log_alphas).clamp(max=0).exp().mean().item())
            last = t == sampler.n_warmup - 1
            eps = adaptation.final_step_size if last else adaptation.step_size
    x = torch.cat([x for x, _, _ in chains])
    return x, accepted / (len(x0) * sampler.n_steps), eps


@pytest.mark.parametrize(
    ("dtype", "event", "params", "energy", "differentiable"),
    [
        (torch.float64, (2,), {}, quartic, False),
        (torch.float32, (2,), {"bounds": (-1.0, 1.0), "n_warmup": 4}, quartic, False),
        (torch.float32, (1, 2, 2), {"n_leapfrog": 3, "n_warmup": 3}, walled_quartic, False),
        (torch.float64, (1, 2, 2), {"bounds": (-1.2, 1.2)}, walled_quartic, True),
        (torch.float32, (2,), {"n_leapfrog": 1, "n_steps": 8}, quartic, True),
    ],
)
def test_chains_match_a_one_chain_at_a_time_reference_to_float_tolerance(
    dtype: torch.dtype,
    event: tuple[int, ...],
    params: dict[str, object],
    energy: Energy,
    differentiable: bool,
) -> None:
    # The batched bookkeeping and fused leapfrog updates must not change a chain beyond
    # rounding: same draws, same decisions, the textbook updates' states to float tolerance.
    x0 = 1.5 * torch.randn(16, *event, generator=torch.Generator().manual_seed(5), dtype=dtype)
    sampler = HMCSampler(**{"step_size": 0.4, "n_leapfrog": 5, "n_steps": 4, **params})
    generator = torch.Generator().manual_seed(7)
    result = sampler(energy, x0, generator=generator, differentiable=differentiable)
    x, rate, step_size = reference_hmc(sampler, energy, x0, seed=7)
    torch.testing.assert_close(result.x.detach(), x)
    assert result.stats["acceptance_rate"] == rate
    assert result.stats["step_size"] == pytest.approx(step_size, rel=1e-5)
    assert 0 < rate < 1
