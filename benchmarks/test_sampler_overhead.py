"""Sampler overhead: a sampler's time over the time of its gradient evaluations alone.

The floor of any gradient-based sampler is one forward and one input-gradient backward
pass of the energy net per gradient evaluation. The ratio

    overhead = time(sampler call) / time(k plain forward + input-gradient passes)

with ``k`` the number of gradient evaluations the call makes (counted, not assumed)
says what the sampler's own bookkeeping costs; the target is at most 1.10. ``langevin``
makes T = 30 evaluations, ``mala`` with 29 transitions 30 (one at the start), ``hmc``
(plugin ``coopkit-hmc``, its defaults: 3 transitions of 10 leapfrog steps) 31.
Recorded in ``benchmark.extra_info``; nothing about timing is asserted.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest
import torch
from torch import Tensor, nn

from benchmarks.common import (
    LANGEVIN_STEPS,
    OVERHEAD_BATCH,
    ImageScale,
    measure,
    parameter_count,
    seconds,
)
from coopkit import registry
from coopkit.energies.conv import ConvEnergy
from coopkit.energies.mlp import MLPEnergy
from coopkit.samplers.base import Sampler

SAMPLER_PARAMS = {
    "langevin": {"n_steps": LANGEVIN_STEPS},
    "mala": {"n_steps": LANGEVIN_STEPS - 1},
    "hmc": {"n_leapfrog": 10, "n_steps": 3},
}
GRADIENT_EVALUATIONS = {"langevin": 30, "mala": 30, "hmc": 31}


@dataclass(frozen=True)
class Problem:
    """An energy net, a batch of chains and the sampler settings the estimator uses."""

    name: str
    energy: Callable[[], nn.Module]
    event_shape: tuple[int, ...]
    batch: int
    bounds: tuple[float, float]
    step_size: float


TABLE = Problem("mlp-2d", lambda: MLPEnergy((2,)), (2,), 256, (-3.0, 3.0), 0.3)
DIGITS = Problem("conv-8x8", lambda: ConvEnergy((1, 8, 8)), (1, 8, 8), 64, (-1.0, 1.0), 0.03)


def paper_problem(scale: ImageScale) -> Problem:
    """The paper's 32x32 net (``n_f=128``) at batch 64, or the scale's CPU stand-in."""
    c, h, w = scale.event_shape
    return Problem(
        f"conv-{h}x{w}x{c} n_f={scale.n_f} ({scale.name})",
        lambda: ConvEnergy(scale.event_shape, n_f=scale.n_f),
        scale.event_shape,
        OVERHEAD_BATCH,
        (-1.0, 1.0),
        0.03,
    )


class CountingEnergy:
    """Wraps an energy and counts its calls (one per gradient evaluation)."""

    def __init__(self, energy: nn.Module) -> None:
        self.energy = energy
        self.calls = 0

    def __call__(self, x: Tensor) -> Tensor:
        self.calls += 1
        return self.energy(x)


def build_sampler(name: str, problem: Problem) -> Sampler:
    try:
        factory = registry.resolve("sampler", name).factory
    except registry.UnknownPartError:
        pytest.skip(f"sampler {name!r} is not installed (pip install -e plugins/coopkit-{name})")
    params = {"step_size": problem.step_size, "bounds": problem.bounds, **SAMPLER_PARAMS[name]}
    return factory(**params)


def floor(energy: nn.Module, x0: Tensor, passes: int) -> None:
    """``passes`` plain forward and input-gradient backward passes of ``energy`` at ``x0``."""
    for _ in range(passes):
        x = x0.detach().requires_grad_(True)
        torch.autograd.grad(energy(x).sum(), x)


def sampler_and_floor(
    problem: Problem, sampler_name: str, device: torch.device
) -> tuple[nn.Module, Callable[[], None], Callable[[], None], int]:
    """``problem``'s energy net (seeded), one call of the sampler on a fixed batch, the
    call's floor, and the number of gradient evaluations the call makes (counted)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        energy = problem.energy().to(device)
    sampler = build_sampler(sampler_name, problem)
    generator = torch.Generator().manual_seed(0)
    low, high = problem.bounds
    x0 = low + (high - low) * torch.rand((problem.batch, *problem.event_shape), generator=generator)
    x0 = x0.to(device)
    counting = CountingEnergy(energy)
    sampler(counting, x0, generator=generator)
    passes = counting.calls

    def run_sampler() -> None:
        sampler(energy, x0, generator=generator)

    def run_floor() -> None:
        floor(energy, x0, passes)

    return energy, run_sampler, run_floor, passes


def measure_overhead(
    benchmark: object,
    problem: Problem,
    sampler_name: str,
    device: torch.device,
    rounds: int,
    warmup: int,
) -> int:
    """Record sampler and floor medians and their ratio in ``benchmark.extra_info``;
    return the number of gradient evaluations per sampler call."""
    energy, run_sampler, run_floor, passes = sampler_and_floor(problem, sampler_name, device)
    for _ in range(warmup):
        seconds(run_sampler, device)
        seconds(run_floor, device)
    sampler_s, floor_s = measure(benchmark, run_sampler, device, rounds, reference=run_floor)
    assert floor_s is not None
    benchmark.extra_info.update(
        {
            "kind": "overhead",
            "net": problem.name,
            "parameters": parameter_count(energy),
            "batch": problem.batch,
            "sampler": sampler_name,
            "gradient_evaluations": passes,
            "sampler_s": sampler_s,
            "floor_s": floor_s,
            "ratio": sampler_s / floor_s,
            "device": str(device),
            "rounds": rounds,
        }
    )
    return passes


@pytest.mark.parametrize("sampler_name", list(SAMPLER_PARAMS))
@pytest.mark.parametrize("problem", [TABLE, DIGITS], ids=lambda p: p.name)
def test_sampler_overhead(
    benchmark: object, problem: Problem, sampler_name: str, device: torch.device, smoke: bool
) -> None:
    passes = measure_overhead(
        benchmark,
        problem,
        sampler_name,
        device,
        rounds=1 if smoke else 15,
        warmup=0 if smoke else 2,
    )
    assert passes == GRADIENT_EVALUATIONS[sampler_name]


@pytest.mark.gpu
@pytest.mark.parametrize("sampler_name", list(SAMPLER_PARAMS))
def test_sampler_overhead_paper_net(
    benchmark: object, sampler_name: str, device: torch.device, scale: ImageScale, smoke: bool
) -> None:
    passes = measure_overhead(
        benchmark,
        paper_problem(scale),
        sampler_name,
        device,
        rounds=scale.rounds,
        warmup=0 if smoke else 1,
    )
    assert passes == GRADIENT_EVALUATIONS[sampler_name]
