"""The conformance kit passes coopkit's samplers and rejects broken ones for the right reason."""

from __future__ import annotations

from functools import partial

import pytest
import torch
from torch import Tensor

from coopkit.samplers.base import Energy, SampleResult
from coopkit.samplers.langevin import LangevinSampler
from coopkit.samplers.mala import MALASampler
from coopkit.testing import check_sampler, check_sampler_contract, check_sampler_statistics

NOISY = {"noise_scale": 1.0, "max_change": None}


def test_langevin_with_noise_conforms() -> None:
    check_sampler(LangevinSampler, **NOISY)


def test_mala_conforms() -> None:
    check_sampler(MALASampler)


def test_the_noise_free_default_langevin_meets_the_contract() -> None:
    check_sampler_contract(LangevinSampler)


class Broken(LangevinSampler):
    """True Langevin, which each subclass breaks in one way by overriding :meth:`run`."""

    def __init__(self, **params: object) -> None:
        super().__init__(**{**NOISY, **params})  # type: ignore[arg-type]

    def __call__(
        self,
        energy: Energy,
        x0: Tensor,
        *,
        generator: torch.Generator | None = None,
        differentiable: bool = False,
    ) -> SampleResult:
        return self.run(energy, x0, generator, differentiable)

    def run(
        self, energy: Energy, x0: Tensor, generator: torch.Generator | None, differentiable: bool
    ) -> SampleResult:
        return super().__call__(energy, x0, generator=generator, differentiable=differentiable)


class UsesGlobalRandomness(Broken):
    def run(
        self, energy: Energy, x0: Tensor, generator: torch.Generator | None, differentiable: bool
    ) -> SampleResult:
        return super().run(energy, x0, None, differentiable)


class CarriesState(Broken):
    def run(
        self, energy: Energy, x0: Tensor, generator: torch.Generator | None, differentiable: bool
    ) -> SampleResult:
        self.step_size *= 0.9
        return super().run(energy, x0, generator, differentiable)


class KeepsTheGraph(Broken):
    def run(
        self, energy: Energy, x0: Tensor, generator: torch.Generator | None, differentiable: bool
    ) -> SampleResult:
        return super().run(energy, x0, generator, True)


class CutsTheGraph(Broken):
    def run(
        self, energy: Energy, x0: Tensor, generator: torch.Generator | None, differentiable: bool
    ) -> SampleResult:
        return super().run(energy, x0, generator, False)


class ReturnsFloat32(Broken):
    def run(
        self, energy: Energy, x0: Tensor, generator: torch.Generator | None, differentiable: bool
    ) -> SampleResult:
        result = super().run(energy, x0, generator, differentiable)
        return SampleResult(result.x.float(), result.stats)


class ModifiesX0(Broken):
    def run(
        self, energy: Energy, x0: Tensor, generator: torch.Generator | None, differentiable: bool
    ) -> SampleResult:
        with torch.no_grad():
            x0.mul_(0.5)
        return super().run(energy, x0, generator, differentiable)


class TensorStats(Broken):
    def run(
        self, energy: Energy, x0: Tensor, generator: torch.Generator | None, differentiable: bool
    ) -> SampleResult:
        result = super().run(energy, x0, generator, differentiable)
        return SampleResult(result.x, {k: torch.tensor(v) for k, v in result.stats.items()})


class AccumulatesGradients(Broken):
    def run(
        self, energy: Energy, x0: Tensor, generator: torch.Generator | None, differentiable: bool
    ) -> SampleResult:
        energy(x0.detach()).sum().backward()
        return super().run(energy, x0, generator, differentiable)


class ClaimsCorrection(Broken):
    """Unadjusted Langevin posing as an exact sampler: its variance is biased."""

    metropolis_corrected = True

    def run(
        self, energy: Energy, x0: Tensor, generator: torch.Generator | None, differentiable: bool
    ) -> SampleResult:
        result = super().run(energy, x0, generator, differentiable)
        return SampleResult(result.x, {**result.stats, "acceptance_rate": 1.0})


class NoAcceptanceRate(Broken):
    metropolis_corrected = True


@pytest.mark.parametrize(
    ("factory", "message"),
    [
        (UsesGlobalRandomness, "global random state"),
        (CarriesState, "same generator seed"),
        (KeepsTheGraph, "differentiable=False the result keeps an autograd graph"),
        (CutsTheGraph, "differentiable=True the result does not depend on x0"),
        (ReturnsFloat32, "result dtype"),
        (ModifiesX0, "modified x0 in place"),
        (TensorStats, "finite Python float"),
        (AccumulatesGradients, "accumulated gradients"),
        (NoAcceptanceRate, "acceptance_rate"),
    ],
)
def test_contract_violations_are_rejected(factory: type[Broken], message: str) -> None:
    with pytest.raises(AssertionError, match=message):
        check_sampler_contract(factory)


def test_a_factory_without_step_size_or_n_steps_is_rejected() -> None:
    def rigid(noise_scale: float = 1.0) -> LangevinSampler:
        return LangevinSampler(noise_scale=noise_scale, max_change=None)

    with pytest.raises(AssertionError, match="must accept step_size and n_steps"):
        check_sampler(rigid)


def test_a_biased_sampler_claiming_correction_is_rejected() -> None:
    with pytest.raises(AssertionError, match=r"do not sample exp\(-E\)"):
        check_sampler_statistics(ClaimsCorrection)


def test_a_sampler_that_never_moves_is_rejected() -> None:
    with pytest.raises(AssertionError, match="estimate"):
        check_sampler_statistics(partial(ClaimsCorrection, noise_scale=0.0))


@pytest.mark.parametrize(
    "params",
    [{"noise_scale": 0.0}, {"noise_scale": 1.03}, {"max_change": 0.1}],
    ids=["no noise", "noise 3% too strong", "clamped steps"],
)
def test_unadjusted_samplers_whose_bias_does_not_vanish_are_rejected(
    params: dict[str, float],
) -> None:
    with pytest.raises(AssertionError, match="variance bias does not vanish"):
        check_sampler_statistics(LangevinSampler, **{**NOISY, **params})
