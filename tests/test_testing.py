"""The conformance kit passes coopkit's parts and rejects broken ones for the right reason."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import pytest
import torch
from torch import Tensor, nn
from torch.autograd.function import once_differentiable

from coopkit.energies import ConvEnergy, MLPEnergy
from coopkit.flows import ActNorm, AffineCoupling, Chain, Flow, Glow, RealNVP, Transform
from coopkit.samplers.base import Energy, SampleResult
from coopkit.samplers.langevin import LangevinSampler
from coopkit.samplers.mala import MALASampler
from coopkit.testing import (
    check_energy,
    check_flow,
    check_sampler,
    check_sampler_contract,
    check_sampler_statistics,
)

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


# ---------------------------------------------------------------- flows

FLOW_PARAMS = {"n_layers": 2, "hidden_features": 8}


def test_builtin_flows_conform_and_leave_the_global_random_state_alone() -> None:
    state = torch.get_rng_state()
    check_flow(RealNVP, (3,), **FLOW_PARAMS)
    check_flow(Glow, (1, 4, 4), hidden_channels=8, n_steps=1)  # draws its rotations globally
    assert torch.equal(torch.get_rng_state(), state)


class ChainFlow(Flow):
    """A flow made of the given transforms, for building broken flows."""

    def __init__(self, event_shape: tuple[int, ...], transforms: list[Transform]) -> None:
        super().__init__(event_shape)
        self.chain = Chain(transforms)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return self.chain(x)

    def inverse(self, z: Tensor) -> tuple[Tensor, Tensor]:
        return self.chain.inverse(z)


class NegatedLogdet(RealNVP):
    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        z, logdet = super().forward(x)
        return z, -logdet


class LogdetOffByOnePercent(RealNVP):
    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        z, logdet = super().forward(x)
        return z, 1.01 * logdet


class NegatedInverseLogdet(RealNVP):
    def inverse(self, z: Tensor) -> tuple[Tensor, Tensor]:
        x, logdet = super().inverse(z)
        return x, -logdet


class NotAnInverse(RealNVP):
    def inverse(self, z: Tensor) -> tuple[Tensor, Tensor]:
        x, logdet = super().inverse(z)
        return x * (1 + 1e-5), logdet


class ColumnLogdet(RealNVP):
    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        z, logdet = super().forward(x)
        return z, logdet.unsqueeze(1)


class UnusedParameter(RealNVP):
    def __init__(self, event_shape: tuple[int, ...], **params: Any) -> None:
        super().__init__(event_shape, **params)
        self.unused = nn.Parameter(torch.zeros(3))


class ReinitializingActNorm(ActNorm):
    """Runs the data-dependent initialisation on every call in training mode."""

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        if self.training:
            self.initialized.fill_(False)
        return super().forward(x)


def reinitializing_flow(event_shape: tuple[int, ...]) -> ChainFlow:
    (features,) = event_shape
    coupling = AffineCoupling(torch.arange(features) % 2, 8, n_hidden=1, scale_bound=2.0)
    return ChainFlow(event_shape, [ReinitializingActNorm(features), coupling])


class StateInAnAttribute(RealNVP):
    """Keeps a random offset in a plain attribute: not saved with the state_dict."""

    def __init__(self, event_shape: tuple[int, ...], **params: Any) -> None:
        super().__init__(event_shape, **params)
        self.offset = torch.randn(event_shape, dtype=torch.float64)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return super().forward(x + self.offset)

    def inverse(self, z: Tensor) -> tuple[Tensor, Tensor]:
        x, logdet = super().inverse(z)
        return x - self.offset, logdet


class DropoutInForward(RealNVP):
    def __init__(self, event_shape: tuple[int, ...], **params: Any) -> None:
        super().__init__(event_shape, **params)
        self.dropout = nn.Dropout(0.5)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return super().forward(self.dropout(x))


class MixesTheBatch(RealNVP):
    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return super().forward(x - 0.1 * x.mean(dim=0))


class ClampsFarPoints(RealNVP):
    """Fine on the data's range, not invertible where Langevin may take samples."""

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return super().forward(x.clamp(-15, 15))


class PlainLogit(Transform):
    """``atanh`` without the shrink: infinite at pixels clamped to ±1."""

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return torch.atanh(x), -torch.log1p(-(x**2)).flatten(1).sum(dim=1)

    def inverse(self, y: Tensor) -> tuple[Tensor, Tensor]:
        x = torch.tanh(y)
        return x, torch.log1p(-(x**2)).flatten(1).sum(dim=1)


def plain_logit_flow(event_shape: tuple[int, ...]) -> ChainFlow:
    return ChainFlow(event_shape, [PlainLogit(), ActNorm(event_shape[0])])


class UncountedPixels(ActNorm):
    """Per-channel ActNorm on images whose log-determinant forgets the pixel count."""

    def _logdet(self, x: Tensor) -> Tensor:
        return (-self.log_scale.sum()).expand(x.shape[0])


def pixel_blind_flow(event_shape: tuple[int, ...]) -> ChainFlow:
    return ChainFlow(event_shape, [UncountedPixels(event_shape[0])])


def not_a_flow(event_shape: tuple[int, ...]) -> nn.Module:
    return nn.Linear(event_shape[0], event_shape[0])


@pytest.mark.parametrize(
    ("factory", "event_shape", "message"),
    [
        (NegatedLogdet, (3,), r"\[forward log-determinant\]"),
        (LogdetOffByOnePercent, (3,), r"\[forward log-determinant\]"),
        (NegatedInverseLogdet, (3,), r"\[inverse log-determinant\]"),
        (NotAnInverse, (3,), r"\[round trip\]"),
        (ColumnLogdet, (3,), r"\[shapes\].*logdet \(4, 1\)"),
        (UnusedParameter, (3,), r"\[parameter gradients\].*\['unused'\]"),
        (reinitializing_flow, (3,), r"\[initialisation runs once\]"),
        (StateInAnAttribute, (3,), r"\[state_dict\]"),
        (DropoutInForward, (3,), r"\[train/eval\]"),
        (MixesTheBatch, (3,), r"\[batch independence\]"),
        (ClampsFarPoints, (3,), r"out of range: every coordinate at ±20.*\[round trip\]"),
        (plain_logit_flow, (1, 2, 2), r"\[finite\]"),
        (pixel_blind_flow, (2, 2, 2), r"\[forward log-determinant\]"),
        (not_a_flow, (3,), "must subclass coopkit.flows.Flow"),
    ],
    ids=lambda value: getattr(value, "__name__", None),
)
def test_flow_defects_are_rejected(
    factory: Callable[..., nn.Module], event_shape: tuple[int, ...], message: str
) -> None:
    params = FLOW_PARAMS if isinstance(factory, type) and issubclass(factory, RealNVP) else {}
    with pytest.raises(AssertionError, match=message):
        check_flow(factory, event_shape, **params)


# ---------------------------------------------------------------- energies

ENERGY_PARAMS = {"hidden_features": 8, "n_hidden": 2}


def test_builtin_energies_conform_and_leave_the_global_random_state_alone() -> None:
    state = torch.get_rng_state()
    check_energy(MLPEnergy, (3,), **ENERGY_PARAMS)
    check_energy(ConvEnergy, (1, 4, 4), n_f=4)
    assert torch.equal(torch.get_rng_state(), state)


class ColumnEnergy(MLPEnergy):
    def forward(self, x: Tensor) -> Tensor:
        return super().forward(x).unsqueeze(1)


class SqueezesEverything(MLPEnergy):
    """``.squeeze()`` instead of ``.squeeze(1)``: a batch of one gives a scalar."""

    def forward(self, x: Tensor) -> Tensor:
        return super().forward(x).unsqueeze(1).squeeze()


class AlwaysFloat32(MLPEnergy):
    def forward(self, x: Tensor) -> Tensor:
        return super().forward(x).float()


class DropoutEnergy(MLPEnergy):
    def __init__(self, event_shape: tuple[int, ...], **params: Any) -> None:
        super().__init__(event_shape, **params)
        self.dropout = nn.Dropout(0.5)

    def forward(self, x: Tensor) -> Tensor:
        return super().forward(self.dropout(x))


class BatchMeanEnergy(MLPEnergy):
    def forward(self, x: Tensor) -> Tensor:
        return super().forward(x - x.mean(dim=0))


class DetachedTerm(MLPEnergy):
    def forward(self, x: Tensor) -> Tensor:
        return self.net(x).squeeze(1) + 0.5 * x.detach().square().sum(dim=1)


class OnceDifferentiableSquare(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: Tensor) -> Tensor:
        ctx.save_for_backward(x)
        return x.square()

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad: Tensor) -> Tensor:
        (x,) = ctx.saved_tensors
        return 2 * x * grad


class OnceDifferentiable(MLPEnergy):
    def forward(self, x: Tensor) -> Tensor:
        return self.net(x).squeeze(1) + OnceDifferentiableSquare.apply(x).sum(dim=1)


class UnusedEnergyParameter(MLPEnergy):
    def __init__(self, event_shape: tuple[int, ...], **params: Any) -> None:
        super().__init__(event_shape, **params)
        self.unused = nn.Parameter(torch.zeros(3))


class RandomShiftAttribute(MLPEnergy):
    def __init__(self, event_shape: tuple[int, ...], **params: Any) -> None:
        super().__init__(event_shape, **params)
        self.shift = torch.randn(event_shape, dtype=torch.float64)

    def forward(self, x: Tensor) -> Tensor:
        return super().forward(x - self.shift.to(x.dtype))


class UndefinedFarOut(MLPEnergy):
    """NaN beyond ±15, where only Langevin goes."""

    def forward(self, x: Tensor) -> Tensor:
        return super().forward(x) + torch.sqrt(15 - x.abs()).sum(dim=1)


@pytest.mark.parametrize(
    ("factory", "message"),
    [
        (ColumnEnergy, r"\[shape\].*gave \(1, 1\)"),
        (SqueezesEverything, r"\[shape\].*gave \(\)"),
        (AlwaysFloat32, r"\[dtype\]"),
        (DropoutEnergy, r"\[determinism\]"),
        (BatchMeanEnergy, r"\[batch independence\]"),
        (DetachedTerm, r"\[input gradient\].*finite differences"),
        (OnceDifferentiable, r"\[twice differentiable\]"),
        (UnusedEnergyParameter, r"\[parameter gradients\].*\['unused'\]"),
        (RandomShiftAttribute, r"\[state_dict\]"),
        (UndefinedFarOut, r"out of range: every coordinate at ±20.*\[finite\]"),
    ],
    ids=lambda value: getattr(value, "__name__", None),
)
def test_energy_defects_are_rejected(factory: type[MLPEnergy], message: str) -> None:
    with pytest.raises(AssertionError, match=message):
        check_energy(factory, (3,), **ENERGY_PARAMS)
