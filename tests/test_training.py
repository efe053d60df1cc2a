from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch

from coopkit import CoopFlow
from coopkit.energies.conv import ConvEnergy
from coopkit.energies.mlp import MLPEnergy
from coopkit.flows import Glow, RealNVP
from coopkit.samplers import LangevinSampler, PCNSampler
from coopkit.samplers.base import Sampler, SampleResult
from coopkit.training import (
    CoopTrainer,
    FlowTiltedEnergy,
    LatentEnergy,
    LearningRateFactor,
    TrainingConfig,
    TrainingDivergedError,
    revise_proposals,
)
from tests.shapes import two_blobs


class StepEnergy(torch.nn.Module):
    """``E(x) = height · sigmoid(sharpness · x₁)``: a wall over the right half-plane."""

    def __init__(self, height: float, sharpness: float = 50.0) -> None:
        super().__init__()
        self.height, self.sharpness = height, sharpness

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.height * torch.sigmoid(self.sharpness * x[:, 0])


@pytest.fixture(scope="module")
def flow() -> RealNVP:
    """A smooth random bijection of the plane (untrained couplings after ActNorm)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        flow = RealNVP((2,), n_layers=2, hidden_features=16)
        flow.initialize(torch.randn(1000, 2) + torch.tensor([0.5, 0.0]))
    return flow


def test_latent_revision_samples_the_flow_tilted_by_the_energy(flow: RealNVP) -> None:
    """pCN in the latent space targets q(x) exp(-E(x)): with a wall of height h over
    x₁ > 0, the right half keeps the share q_r e^{-h} / (q_l + q_r e^{-h})."""
    height = 2.0
    generator = torch.Generator().manual_seed(0)
    z = torch.randn(20_000, 2, generator=generator)
    proposals, revised, stats = revise_proposals(
        flow, StepEnergy(height), PCNSampler(1.0, 30), z, "flow", generator
    )
    right = (proposals[:, 0] > 0).double().mean().item()
    expected = right * math.exp(-height) / (1 - right + right * math.exp(-height))
    assert 0.2 < right < 0.8
    assert (revised[:, 0] > 0).double().mean().item() == pytest.approx(expected, abs=0.015)
    assert 0 < stats["acceptance_rate"] < 1


def test_a_flat_energy_accepts_every_move(flow: RealNVP) -> None:
    generator = torch.Generator().manual_seed(1)
    z = torch.randn(64, 2, generator=generator)
    proposals, revised, stats = revise_proposals(
        flow, StepEnergy(0.0), PCNSampler(0.5, 5), z, "flow", generator
    )
    assert stats["acceptance_rate"] == 1.0
    assert not torch.allclose(proposals, revised)


def test_latent_and_data_space_energies_describe_one_model(flow: RealNVP) -> None:
    """U(z) - U(z') = Ẽ(g(z)) - Ẽ(g(z')) + log|det ∂g/∂z| terms: for the tilted model the
    latent energy equals the data-space tilted energy minus the inverse's log-determinant."""
    energy = StepEnergy(1.5, sharpness=3.0)
    z = torch.randn(16, 2, generator=torch.Generator().manual_seed(2))
    x, logdet = flow.inverse(z)
    latent = LatentEnergy(energy, flow)(z)
    tilted = FlowTiltedEnergy(energy, flow)(x)
    constant = 0.5 * 2 * math.log(2 * math.pi)
    assert torch.allclose(latent, tilted - logdet - constant, atol=1e-4)


def test_learning_rate_factor_warms_up_then_decays_to_zero() -> None:
    factor = LearningRateFactor(warmup=10, decay=100)
    assert factor(0) == pytest.approx(0.1)
    assert factor(9) == pytest.approx(0.5 * (1 + math.cos(math.pi * 0.09)))
    assert factor(100) == pytest.approx(0.0, abs=1e-12)
    assert LearningRateFactor(warmup=0)(50) == 1.0


@pytest.mark.parametrize("target", [0.01, 0.1])
def test_target_revision_moves_the_step_size_until_chains_move_that_far(target: float) -> None:
    langevin = {"sampler": "langevin", "energy_base": "uniform", "batch_size": 64}
    model = CoopFlow(n_iter=150, target_revision=target, random_state=0, **langevin)
    model.fit(two_blobs(512, 0))
    revision = np.mean(model.history_["revision"][-20:])
    assert target / 2 < revision < 2 * target
    fixed = CoopFlow(n_iter=3, random_state=0, **langevin).fit(two_blobs(512, 0))
    assert model.sampler_.step_size != fixed.sampler_.step_size == 0.3


class StepFreeSampler(Sampler):
    def __call__(self, energy, x0, *, generator=None, differentiable=False) -> SampleResult:
        return SampleResult(x0, {})


def test_target_revision_needs_a_sampler_with_a_step_size() -> None:
    model = CoopFlow(n_iter=2, batch_size=64, sampler=StepFreeSampler(), target_revision=0.1)
    with pytest.raises(ValueError, match="StepFreeSampler does not have"):
        model.fit(two_blobs(64, 0))


def test_target_revision_keeps_the_pcn_step_within_its_range() -> None:
    model = CoopFlow(n_iter=20, batch_size=64, target_revision=100.0, random_state=0)
    model.fit(two_blobs(256, 0))
    assert model.sampler_.step_size == PCNSampler.max_step_size


def small_trainer(event_shape: tuple[int, ...] = (2,)) -> tuple[CoopTrainer, torch.Tensor]:
    """A trainer of a tiny flow and energy net (RealNVP and an MLP on 2-D blobs; Glow and
    a conv net on random 8x8 images), after one iteration; its data in model units."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        if event_shape == (2,):
            flow, energy = RealNVP((2,), n_layers=2, hidden_features=16), MLPEnergy((2,))
            data = torch.as_tensor(two_blobs(128, 0), dtype=torch.float32)
        else:
            flow, energy = Glow(event_shape, hidden_channels=8), ConvEnergy(event_shape, n_f=4)
            data = torch.rand(128, *event_shape) * 2 - 1
    config = TrainingConfig(n_iter=2, batch_size=32)
    sampler = LangevinSampler(0.3, 3, bounds=(-1.0, 1.0) if event_shape != (2,) else None)
    trainer = CoopTrainer(flow, energy, sampler, config, torch.Generator().manual_seed(0))
    trainer.initialize(data)
    trainer.coop_step(data[:32])
    return trainer, data


def test_history_rows_are_python_floats() -> None:
    trainer, _ = small_trainer()
    assert {type(v) for row in trainer.history.values() for v in row} == {float}
    assert all(len(row) == 1 for row in trainer.history.values())


def test_a_diverged_energy_is_named_before_the_flow_sees_its_samples() -> None:
    """The energy's loss is checked before the flow learns from the revised samples: a
    NaN energy makes NaN samples, which an image flow refuses with a ValueError."""
    trainer, data = small_trainer((1, 8, 8))
    before = copy.deepcopy([trainer.flow.state_dict(), trainer.energy.state_dict()])
    finite_forward = trainer.energy.forward
    trainer.energy.forward = lambda x: finite_forward(x) * math.nan
    with pytest.raises(TrainingDivergedError, match="iteration 0: energy is not finite"):
        trainer.coop_step(data[32:64])
    after = [trainer.flow.state_dict(), trainer.energy.state_dict()]
    for old, new in zip(before, after, strict=True):
        assert all(torch.equal(old[name], new[name]) for name in old)
    assert all(len(row) == 1 for row in trainer.history.values())
