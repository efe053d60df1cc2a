from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor

from coopkit.samplers.base import Energy, Metropolis, SampleResult, evaluate
from coopkit.samplers.langevin import LangevinSampler
from coopkit.samplers.mala import MALASampler, log_acceptance


def gaussian(x: Tensor) -> Tensor:
    return 0.5 * x.flatten(1).square().sum(dim=1)


def run(sampler: MALASampler, x0: Tensor, seed: int = 0, energy: Energy = gaussian) -> SampleResult:
    return sampler(energy, x0, generator=torch.Generator().manual_seed(seed))


def test_factory_builds_a_metropolis_corrected_sampler() -> None:
    sampler = MALASampler(step_size=0.2, n_steps=5)
    assert isinstance(sampler, MALASampler)
    assert sampler.metropolis_corrected
    assert (sampler.step_size, sampler.n_steps) == (0.2, 5)


def test_proposal_is_langevins_step_with_unit_noise() -> None:
    # On a flat energy every proposal is accepted (log alpha = 0), so one MALA step is one
    # Langevin step with noise_scale 1 driven by the same first normal draws (to float
    # tolerance: MALA's proposal is fused multiply-adds).
    x0 = torch.randn(5, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    flat = lambda x: x.sum(dim=1) * 0  # noqa: E731
    ours = run(MALASampler(step_size=0.3, n_steps=1), x0, energy=flat)
    theirs = run(LangevinSampler(0.3, n_steps=1, noise_scale=1.0, max_change=None), x0, energy=flat)
    torch.testing.assert_close(ours.x, theirs.x, rtol=1e-12, atol=1e-12)
    assert ours.stats["acceptance_rate"] == 1.0


def test_large_steps_stay_exact_where_unadjusted_langevin_is_biased() -> None:
    # At s = 1.5 unadjusted Langevin on N(0, 1) has variance 1 / (1 - s²/4) = 2.29.
    x0 = torch.zeros(4000, 1, dtype=torch.float64)
    result = run(MALASampler(step_size=1.5, n_steps=300), x0)
    assert result.x.var().item() == pytest.approx(1.0, abs=0.07)
    assert abs(result.x.mean().item()) < 0.05
    assert 0.2 < result.stats["acceptance_rate"] < 0.9


def test_acceptance_falls_as_the_step_grows() -> None:
    x0 = torch.randn(500, 10, generator=torch.Generator().manual_seed(2))
    rates = [
        run(MALASampler(step_size=s, n_steps=20), x0).stats["acceptance_rate"]
        for s in (0.1, 1.0, 3.0)
    ]
    assert rates[0] > 0.99
    assert rates[0] > rates[1] > rates[2]
    assert rates[2] < 0.05


@pytest.mark.parametrize("start", [0.02, 5.0])
def test_warmup_adapts_the_step_toward_the_target_acceptance(start: float) -> None:
    x0 = torch.randn(1000, 20, generator=torch.Generator().manual_seed(3))
    sampler = MALASampler(step_size=start, n_steps=50, n_warmup=300)
    result = run(sampler, x0)
    assert result.stats["acceptance_rate"] == pytest.approx(0.574, abs=0.05)
    assert 0.3 < result.stats["step_size"] < 1.5
    assert sampler.step_size == start


def test_without_warmup_the_step_size_is_fixed() -> None:
    result = run(MALASampler(step_size=0.7, n_steps=10), torch.zeros(10, 2))
    assert result.stats["step_size"] == 0.7


class NaNGradientAbove(torch.autograd.Function):
    """``½x²`` per chain, with a finite value but a NaN gradient where ``x > 0.5``."""

    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, x: Tensor) -> Tensor:
        ctx.save_for_backward(x)
        return gaussian(x)

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, upstream: Tensor) -> Tensor:
        (x,) = ctx.saved_tensors
        grad = upstream[:, None] * x
        return torch.where(x > 0.5, torch.nan, grad)


def wall(value: float) -> Energy:
    def energy(x: Tensor) -> Tensor:
        e = gaussian(x)
        return torch.where(x[:, 0] > 0.5, torch.full_like(e, value), e)

    return energy


@pytest.mark.parametrize(
    "energy",
    [wall(math.inf), wall(-math.inf), wall(math.nan), NaNGradientAbove.apply],
    ids=["inf", "-inf", "nan", "nan-grad"],
)
def test_proposals_with_non_finite_energy_or_gradient_are_rejected(energy: Energy) -> None:
    x0 = torch.zeros(2000, 1, dtype=torch.float64)
    result = run(MALASampler(step_size=1.0, n_steps=100), x0, energy=energy)
    assert torch.isfinite(result.x).all()
    assert result.x.max().item() <= 0.5
    assert 0 < result.stats["acceptance_rate"] < 1
    assert all(math.isfinite(v) for v in result.stats.values())


def test_bounds_sample_the_truncated_target() -> None:
    # N(0, 1) restricted to [-1, 1] has variance 1 - 2 phi(1) / (2 Phi(1) - 1) = 0.2911.
    x0 = torch.full((4000, 1), 3.0, dtype=torch.float64)
    result = run(MALASampler(step_size=1.0, n_steps=200, bounds=(-1.0, 1.0)), x0)
    assert result.x.min().item() >= -1.0
    assert result.x.max().item() <= 1.0
    phi = math.exp(-0.5) / math.sqrt(2 * math.pi)
    expected = 1 - 2 * phi / math.erf(1 / math.sqrt(2))
    assert result.x.var().item() == pytest.approx(expected, abs=0.015)


def test_stats_report_progress_from_a_poor_start() -> None:
    x0 = torch.full((100, 2), 4.0)
    result = run(MALASampler(step_size=0.3, n_steps=50), x0)
    assert set(result.stats) == {"step_size", "acceptance_rate", "grad_norm", "energy_drop"}
    assert result.stats["energy_drop"] > 10
    assert result.stats["grad_norm"] > 1


def test_images_keep_their_shape() -> None:
    x0 = torch.randn(3, 2, 4, 4, generator=torch.Generator().manual_seed(4))
    result = run(MALASampler(step_size=0.3, n_steps=5), x0)
    assert result.x.shape == x0.shape
    assert not torch.equal(result.x, x0)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_differentiable_chains_have_the_finite_difference_gradient(seed: int) -> None:
    # With the generator fixed, the accept decisions are locally constant in x0, so the
    # chain is a smooth map of x0 and gradcheck applies.
    def chain(x0: Tensor) -> Tensor:
        sampler = MALASampler(step_size=0.5, n_steps=5)
        quartic = lambda x: (x**4).sum(dim=1) / 4 + gaussian(x)  # noqa: E731
        generator = torch.Generator().manual_seed(seed)
        return sampler(quartic, x0, generator=generator, differentiable=True).x

    x0 = torch.randn(3, 2, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    assert torch.autograd.gradcheck(chain, (x0.requires_grad_(True),))


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"step_size": 0.0}, "step_size"),
        ({"step_size": math.inf}, "step_size"),
        ({"n_steps": 0}, "n_steps"),
        ({"n_steps": 2.5}, "n_steps"),
        ({"n_warmup": -1}, "n_warmup"),
        ({"target_accept": 1.0}, "target_accept"),
        ({"bounds": (1.0, -1.0)}, "bounds"),
    ],
)
def test_bad_parameters_are_named(params: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        MALASampler(**params)  # type: ignore[arg-type]


def quartic(x: Tensor) -> Tensor:
    """``Σ x⁴/4 + x²/2`` per chain from products and sums only, so that one chain's energy
    and gradient are the same bits alone as within a batch."""
    x = x.flatten(1)
    return (x * x * x * x).sum(dim=1) / 4 + (x * x).sum(dim=1) / 2


def walled_quartic(x: Tensor) -> Tensor:
    """``quartic`` with energy ``-inf`` where the first coordinate exceeds 1: proposals
    there must be rejected, not accepted with probability one."""
    e = quartic(x)
    return torch.where(x.flatten(1)[:, 0] > 1, torch.full_like(e, -math.inf), e)


def reference_mala(
    sampler: MALASampler, energy: Energy, x0: Tensor, seed: int
) -> tuple[Tensor, float, float]:
    """MALA written one chain at a time: final states, acceptance rate and step size.

    Per transition the sampler draws, from its generator, float32 normal noise shaped like
    the batch and then one float32 uniform per chain, both cast to the chains' dtype; the
    warm-up uses the mean over the chains of ``min(1, α)``.
    """
    generator = torch.Generator().manual_seed(seed)
    low, high = sampler.bounds or (-math.inf, math.inf)
    rows = [row[None].clamp(low, high) for row in x0]
    chains = [(row, *evaluate(energy, row, False)[1:]) for row in rows]
    log_s, accepted = math.log(sampler.step_size), 0
    for t in range(sampler.n_warmup + sampler.n_steps):
        s = math.exp(log_s)
        noise = torch.randn(x0.shape, generator=generator).to(x0.dtype)
        log_u = torch.rand(len(x0), generator=generator).to(x0.dtype).log()
        log_alphas = []
        for i, (x, e, grad) in enumerate(chains):
            y = x - 0.5 * s**2 * grad + s * noise[i : i + 1]
            e_y, grad_y = evaluate(energy, y, False)[1:]
            back = (x - y + 0.5 * s**2 * grad_y) / s
            log_alpha = e - e_y + 0.5 * (noise[i].square().sum() - back.square().sum())
            log_alpha = log_alpha.nan_to_num(nan=-math.inf)
            finite = bool(e_y.isfinite().all() and grad_y.isfinite().all())
            if not (finite and bool(((y >= low) & (y <= high)).all())):
                log_alpha = torch.full_like(e, -math.inf)
            log_alphas.append(log_alpha)
            if log_u[i] < log_alpha:
                chains[i] = (y, e_y, grad_y)
                accepted += t >= sampler.n_warmup
        if t < sampler.n_warmup:
            mean_prob = torch.cat(log_alphas).clamp(max=0).exp().mean().item()
            log_s += (t + 1) ** -0.6 * (mean_prob - sampler.target_accept)
    x = torch.cat([x for x, _, _ in chains])
    return x, accepted / (len(x0) * sampler.n_steps), math.exp(log_s)


@pytest.mark.parametrize(
    ("dtype", "event", "bounds", "n_warmup", "energy", "differentiable"),
    [
        (torch.float64, (2,), None, 0, quartic, False),
        (torch.float32, (2,), (-1.0, 1.0), 5, quartic, False),
        (torch.float32, (1, 2, 2), None, 3, walled_quartic, False),
        (torch.float64, (1, 2, 2), (-1.2, 1.2), 0, walled_quartic, True),
        (torch.float32, (2,), (-1.5, 1.5), 4, quartic, True),
    ],
)
def test_chains_match_a_one_chain_at_a_time_reference_to_float_tolerance(
    dtype: torch.dtype,
    event: tuple[int, ...],
    bounds: tuple[float, float] | None,
    n_warmup: int,
    energy: Energy,
    differentiable: bool,
) -> None:
    # The batched, fused step must not change a chain beyond rounding: same draws, same
    # decisions, the textbook formulas' states to float tolerance.
    x0 = 1.5 * torch.randn(16, *event, generator=torch.Generator().manual_seed(5), dtype=dtype)
    sampler = MALASampler(step_size=0.9, n_steps=6, n_warmup=n_warmup, bounds=bounds)
    generator = torch.Generator().manual_seed(7)
    result = sampler(energy, x0, generator=generator, differentiable=differentiable)
    x, rate, step_size = reference_mala(sampler, energy, x0, seed=7)
    torch.testing.assert_close(result.x.detach(), x)
    assert result.stats["acceptance_rate"] == rate
    assert result.stats["step_size"] == pytest.approx(step_size, rel=1e-5)
    assert 0 < rate < 1


def test_the_fused_log_acceptance_is_the_textbook_ratio_and_rejects_invalid_proposals() -> None:
    # log α = E(x) - E(y) + (‖ε‖² - ‖(x - y + (s²/2) ∇E(y)) / s‖²) / 2, computed as written.
    g = torch.Generator().manual_seed(3)
    n, s = 12, 0.7
    x, grad, grad_y, noise = (
        torch.randn(n, 1, 2, 2, generator=g, dtype=torch.float64) for _ in "abcd"
    )
    e, e_y = (
        torch.randn(n, generator=g, dtype=torch.float64),
        torch.randn(n, generator=g, dtype=torch.float64),
    )
    y = x - 0.5 * s**2 * grad + s * noise
    back = (x - y + 0.5 * s**2 * grad_y) / s
    textbook = e - e_y + 0.5 * (noise.square().sum((1, 2, 3)) - back.square().sum((1, 2, 3)))
    y[0, 0, 0, 0] = 9.0  # outside the box
    grad_y[1, 0, 1, 0], grad_y[2, 0, 0, 1] = math.nan, math.inf
    e_y[3], e_y[4], e_y[5] = math.nan, -math.inf, math.inf
    e[6] = math.inf  # a chain at an infinite energy accepts any valid proposal
    metropolis = Metropolis(x, (-8.0, 8.0), None)
    fused = log_acceptance((x, e, grad), (y, e_y, grad_y), noise, s, metropolis)
    assert fused[:6].tolist() == [-math.inf] * 6
    assert fused[6] == math.inf
    torch.testing.assert_close(fused[7:], textbook[7:], rtol=1e-12, atol=1e-12)
