"""Training-iteration overhead: one cooperative iteration over the time of its parts.

The floor of a cooperative iteration (``CoopTrainer.coop_step``) at batch ``m`` is what
no implementation of the algorithm can skip, each part run alone on the same nets:

1. the flow's inverse on ``m`` latent codes, without gradient (the proposals);
2. ``k`` forward and input-gradient backward passes of the energy net at the
   proposals, ``k`` the number of energy calls one sampler call makes (counted, not
   assumed: ``T = 30`` for ``langevin``);
3. one forward and backward pass of the energy net on data and samples together
   (``2m`` rows), and its Adam step;
4. one forward (``log_prob``) and backward pass of the flow on the batch it learns
   from, and its Adam step.

The two Adam steps are in the floor: the algorithm cannot train without them. What
is not in it is overhead the iteration pays: drawing the latent codes and the
dequantisation noise, the sampler's own bookkeeping (clamps, its statistics), the
flow's gradient clipping, the finiteness checks of the losses and gradients, the
learning-rate schedules and the recording of the history. The ratio

    overhead = time(CoopTrainer.coop_step on a fixed batch) / time(floor)

has a target of at most 1.10. The floor runs on copies of the trainer's nets (same
weights, new Adam optimisers with the same settings), so that timing it changes
nothing the iteration sees. The two are timed back to back in every round, after
warm-up, and the ratio is the median over rounds of the ratio within a round: on a
machine shared with other jobs the speed of a core drifts from round to round, which
the ratio of the two medians (also recorded) feels and the paired ratio does not.

Two problems: the 2-D table with the paper's algorithm (``mlp`` energy, ``realnvp``
flow, ``langevin`` in data space, the flow learning from the revised samples, see
:mod:`coopkit.defaults`) at batch 256, and the 8x8 digits with the demo's settings
(:data:`coopkit.demo.DEMOS`: ``conv`` energy ``n_f=16``, ``glow`` flow, batch 64).
The estimator's ``auto`` default on tables (a flow-tilted energy revised by
gradient-free pCN moves in latent space) has no input-gradient passes, so the floor
above does not describe it. Recorded in ``benchmark.extra_info``; nothing about
timing is asserted.
"""

from __future__ import annotations

import copy
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
import torch
from torch import Tensor, nn

from benchmarks.common import measure_rounds, parameter_count, seconds
from benchmarks.test_sampler_overhead import CountingEnergy
from coopkit import CoopFlow
from coopkit.datasets import moons
from coopkit.demo import DEMOS
from coopkit.metrics import digits_split
from coopkit.training import CoopTrainer, EnergyRunner


@dataclass(frozen=True)
class Problem:
    """A data set, the estimator parameters of the trainer timed on it, and the timed
    rounds (more for the cheaper problem: its medians are steadier for them)."""

    name: str
    data: Callable[[], np.ndarray]
    params: dict[str, Any]
    rounds: int


TABLE = Problem(
    "mlp-2d, realnvp",
    lambda: moons(2000, random_state=0),
    {
        "flow": "realnvp",
        "energy": "mlp",
        "sampler": "langevin",
        "energy_base": "uniform",
        "flow_learns_from": "revised",
        "lr_schedule": "constant",
        "batch_size": DEMOS["moons"]["batch_size"],
    },
    rounds=60,
)
DIGITS = Problem(
    "conv-8x8, glow",
    lambda: digits_split()[0],
    {**DEMOS["digits"], "flow": "glow", "energy": "conv", "sampler": "langevin"},
    rounds=20,
)


def fitted_trainer(problem: Problem, device: torch.device) -> tuple[CoopTrainer, Tensor]:
    """The trainer of a CoopFlow fitted for one iteration, and its data ``(n, *event)``
    in model units on ``device``."""
    X = problem.data()
    params = {**problem.params, "n_iter": 1, "random_state": 0, "device": str(device)}
    params["n_partition_samples"] = params["batch_size"]
    model = CoopFlow(**params).fit(X)
    data = torch.as_tensor(model.scaler_.to_model(X), dtype=torch.float32, device=device)
    return model._trainer, data


def adam_like(optimizer: torch.optim.Optimizer, module: nn.Module) -> torch.optim.Optimizer:
    """A new optimiser of ``optimizer``'s class and settings over ``module``'s parameters."""
    return type(optimizer)(module.parameters(), **optimizer.defaults)


class Floor:
    """The floor of one iteration of ``trainer`` on ``batch`` (parts 1-4 of the module
    docstring), on copies of its nets.

    Args:
        trainer: the trainer whose iteration is timed (left unchanged).
        batch: ``(m, *event)`` data in model units.
        generator: draws the latent codes of the proposals.
    """

    def __init__(self, trainer: CoopTrainer, batch: Tensor, generator: torch.Generator) -> None:
        config = trainer.config
        self.flow = copy.deepcopy(trainer.flow)
        energy = copy.deepcopy(trainer.energy)
        self.energy = EnergyRunner(energy, config.precision, config.compile)
        self.flow_optimizer = adam_like(trainer.flow_optimizer, self.flow)
        self.energy_optimizer = adam_like(trainer.energy_optimizer, energy)
        z = torch.randn((len(batch), *self.flow.event_shape), generator=generator)
        self.z = z.to(batch.device)
        with torch.no_grad():
            self.proposals = self.flow.inverse(self.z)[0]
        counting = CountingEnergy(self.energy)
        self.samples = trainer.sampler(counting, self.proposals, generator=generator).x
        self.energy_calls = counting.calls
        self.batch = batch
        learns_from = {
            "revised": self.samples,
            "data": batch,
            "both": torch.cat([batch, self.samples]),
        }
        self.flow_target = learns_from[config.flow_learns_from]

    def __call__(self) -> None:
        with torch.no_grad():
            self.flow.inverse(self.z)
        for _ in range(self.energy_calls):
            x = self.proposals.detach().requires_grad_(True)
            torch.autograd.grad(self.energy(x).sum(), x)
        self.energy_optimizer.zero_grad(set_to_none=True)
        energies = self.energy(torch.cat([self.batch, self.samples]))
        m = len(self.batch)
        (energies[:m].mean() - energies[m:].mean()).backward()
        self.energy_optimizer.step()
        self.flow_optimizer.zero_grad(set_to_none=True)
        (-self.flow.log_prob(self.flow_target).mean()).backward()
        self.flow_optimizer.step()


def measure_iteration(
    benchmark: Any, problem: Problem, device: torch.device, rounds: int, warmup: int
) -> Floor:
    """Record the iteration's and the floor's medians and the overhead ratio (median of
    the rounds' ratios) in ``benchmark.extra_info``; return the floor (its energy-call
    count, for the caller's check)."""
    trainer, data = fitted_trainer(problem, device)
    batch = data[: trainer.config.batch_size]
    floor = Floor(trainer, batch, torch.Generator().manual_seed(1))

    def iteration() -> None:
        trainer.coop_step(batch)

    for _ in range(warmup):
        seconds(iteration, device)
        seconds(floor, device)
    iteration_times, floor_times = measure_rounds(
        benchmark, iteration, device, rounds, reference=floor
    )
    iteration_s = statistics.median(iteration_times)
    floor_s = statistics.median(floor_times)
    paired = [i / f for i, f in zip(iteration_times, floor_times, strict=True)]
    benchmark.extra_info.update(
        {
            "kind": "iteration",
            "problem": problem.name,
            "flow_parameters": parameter_count(trainer.flow),
            "energy_parameters": parameter_count(trainer.energy),
            "batch": len(batch),
            "energy_calls": floor.energy_calls,
            "iteration_s": iteration_s,
            "floor_s": floor_s,
            "ratio": statistics.median(paired),
            "ratio_of_medians": iteration_s / floor_s,
            "device": str(device),
            "rounds": rounds,
        }
    )
    assert np.isfinite(trainer.history["energy_data"]).all()
    return floor


@pytest.mark.parametrize("problem", [TABLE, DIGITS], ids=lambda p: p.name.split(",")[0])
def test_iteration_overhead(
    benchmark: Any, problem: Problem, device: torch.device, smoke: bool
) -> None:
    floor = measure_iteration(
        benchmark, problem, device, rounds=1 if smoke else problem.rounds, warmup=0 if smoke else 3
    )
    assert floor.energy_calls == 30
