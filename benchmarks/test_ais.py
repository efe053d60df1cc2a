"""The cost of annealed importance sampling of ``log Z`` on the digits.

One AIS run (:func:`coopkit.inference.ais_log_partition`) with the demo's nets (Glow
with 32 hidden channels, trained alone for 200 iterations so that its draws reach the
box; the conv EBM with ``n_f=16``) on 8x8 digits, 1000 temperatures of 256 chains, MALA
with one step per temperature, beside its floor: the same 1000 sampler calls on a fixed
annealed energy in the same box coordinates. The ratio says what AIS adds to its
transitions: starting the chains, the log-ratio of each chain's new state (one forward
pass of the flow and the energy net) and the weights. Recorded in
``benchmark.extra_info``; nothing about timing is asserted.
"""

from __future__ import annotations

import pytest
import torch

from benchmarks.common import measure, parameter_count
from coopkit import CoopFlow
from coopkit.demo import DEMOS
from coopkit.inference import ais_log_partition
from coopkit.metrics import digits_split
from coopkit.samplers import MALASampler


@pytest.fixture(scope="module")
def digits_parts(smoke: bool) -> tuple[torch.nn.Module, torch.nn.Module]:
    """The demo's flow, trained alone on the digits, and its (untrained) energy net."""
    demo = {**DEMOS["digits"], "n_iter": 0, "pretrain_iter": 2 if smoke else 200}
    model = CoopFlow(**demo, device="cpu", random_state=0).fit(digits_split()[0])
    return model.flow_, model.energy_


def test_ais_cost(
    benchmark: object,
    digits_parts: tuple[torch.nn.Module, torch.nn.Module],
    device: torch.device,
    smoke: bool,
) -> None:
    flow, energy = (part.to(device) for part in digits_parts)
    temperatures, chains = (3, 8) if smoke else (1000, 256)
    sampler = MALASampler(0.03, n_steps=1)
    betas = torch.linspace(0, 1, temperatures + 1, dtype=torch.float64)
    generator = torch.Generator().manual_seed(0)
    u0 = torch.atanh(0.99 * flow.sample(chains, generator=generator).detach().clamp(-1, 1))

    def annealed(u: torch.Tensor) -> torch.Tensor:
        x = torch.tanh(u)
        log_det = torch.log1p(-x.square()).flatten(1).sum(dim=1)
        return 0.5 * energy(x) - 0.5 * flow.log_prob(x) - log_det

    def run_ais() -> None:
        ais_log_partition(
            energy, flow, sampler, chains, betas, generator, (-1.0, 1.0), target_accept=0.574
        )

    def run_floor() -> None:
        u = u0
        for _ in range(temperatures):
            u = sampler(annealed, u, generator=generator).x

    ais_s, floor_s = measure(benchmark, run_ais, device, 1, reference=run_floor)
    assert floor_s is not None
    benchmark.extra_info.update(
        {
            "kind": "ais",
            "temperatures": temperatures,
            "chains": chains,
            "parameters": parameter_count(flow) + parameter_count(energy),
            "ais_s": ais_s,
            "floor_s": floor_s,
            "ratio": ais_s / floor_s,
            "device": str(device),
            "threads": torch.get_num_threads(),
        }
    )
