from __future__ import annotations

import torch

from coopkit.conditional import ConditionalEnergy, sample_conditional
from coopkit.flows import RealNVP
from coopkit.samplers import MALASampler

RHO = 0.8


def correlated_gaussian(x: torch.Tensor) -> torch.Tensor:
    """Energy of N(0, [[1, ρ], [ρ, 1]]): given x₁, x₂ ~ N(ρ x₁, 1 - ρ²)."""
    a, b = x[:, 0], x[:, 1]
    return 0.5 * (a**2 - 2 * RHO * a * b + b**2) / (1 - RHO**2)


def standard_flow() -> RealNVP:
    flow = RealNVP((2,), n_layers=1)
    flow.initialize(torch.randn(4096, 2, generator=torch.Generator().manual_seed(0)))
    return flow


def test_completions_follow_the_conditional_and_keep_the_observed_entry() -> None:
    n = 4000
    observed = torch.tensor([[1.0, 123.0]]).repeat(n, 1)
    mask = torch.tensor([1.0, 0.0])
    sampler = MALASampler(step_size=0.5, n_steps=200, n_warmup=50)
    generator = torch.Generator().manual_seed(0)
    x = sample_conditional(
        correlated_gaussian,
        standard_flow(),
        sampler,
        observed,
        mask,
        n_candidates=4,
        bounds=None,
        generator=generator,
    )
    assert torch.equal(x[:, 0], observed[:, 0])
    assert abs(x[:, 1].mean().item() - RHO) < 0.04
    assert abs(x[:, 1].std().item() - (1 - RHO**2) ** 0.5) < 0.04


def test_the_energy_is_never_called_outside_the_box() -> None:
    def energy(x: torch.Tensor) -> torch.Tensor:
        assert x.abs().max() <= 1.0, "called outside the box"
        return 0.5 * (x**2).sum(dim=1) / 4.0

    observed = torch.tensor([[0.5, 0.0]]).repeat(500, 1)
    mask = torch.tensor([1.0, 0.0])
    conditional = ConditionalEnergy(energy, observed[:2], mask, bounds=(-1.0, 1.0))
    assert conditional(torch.tensor([[9.0, 1.5], [9.0, 0.2]])).isinf().tolist() == [True, False]
    x = sample_conditional(
        energy,
        standard_flow(),
        MALASampler(step_size=1.0, n_steps=50),
        observed,
        mask,
        n_candidates=2,
        bounds=(-1.0, 1.0),
        generator=torch.Generator().manual_seed(1),
    )
    assert x[:, 1].abs().max() <= 1.0
    assert x[:, 1].std() > 0.3
