r"""The energy as the training loop, the sampler and the scores run it.

:class:`EnergyRunner` runs the energy net in the chosen precision, compiled if asked;
:class:`FlowTiltedEnergy` and :class:`LatentEnergy` are the flow-tilted EBM
(``energy_base="flow"``) in data space and in the flow's latent space;
:class:`FlowLogProb` is the flow's log-density as a module (for DistributedDataParallel);
:class:`ScaledEnergy` is the energy net times the fitted model's tilt.
:func:`propose` draws the chains' starts, :func:`revise_proposals` runs the sampler from
them and :func:`decode` maps chain states to data space.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

from coopkit.flows.base import Flow
from coopkit.samplers.base import Sampler

Precision = Literal["float32", "bfloat16"]


class FlowLogProb(nn.Module):
    """``flow.log_prob`` as a module's forward, so that DistributedDataParallel sees it."""

    def __init__(self, flow: Flow) -> None:
        super().__init__()
        self.flow = flow

    def forward(self, x: Tensor) -> Tensor:
        return self.flow.log_prob(x)


class EnergyRunner(nn.Module):
    """Runs an energy net in the chosen precision and, optionally, compiled.

    ``bfloat16`` autocasts the energy net's forward pass (the Langevin loop's cost);
    energies come back in ``float32`` and the chains stay ``float32``. The flow always
    runs in ``float32``: its log-determinants sum thousands of terms and lose too much
    in bfloat16. ``compile=True`` wraps the net in :func:`torch.compile`; compiled
    graphs do not support double backward, so reconstruction uses the plain net.
    """

    def __init__(self, energy: nn.Module, precision: Precision = "float32", compile: bool = False):
        super().__init__()
        self.energy = energy
        self.precision = precision
        self.compiled = torch.compile(energy) if compile else energy

    def forward(self, x: Tensor) -> Tensor:
        if self.precision == "float32":
            return self.compiled(x)
        with torch.autocast(x.device.type, dtype=torch.bfloat16):
            return self.compiled(x).float()


class ScaledEnergy(nn.Module):
    r"""An energy net times a fixed factor, :math:`\beta E_\theta(x)`: the fitted model's
    tilt (:mod:`coopkit.tilt`). ``(n, *event)`` to ``(n,)``."""

    def __init__(self, energy: nn.Module, scale: float) -> None:
        super().__init__()
        self.energy = energy
        self.scale = scale

    def forward(self, x: Tensor) -> Tensor:
        return self.scale * self.energy(x)


def tilted(energy: nn.Module, tilt: float) -> nn.Module:
    """``energy`` times the fitted model's ``tilt`` (:class:`ScaledEnergy`; unwrapped at 1)."""
    return energy if tilt == 1.0 else ScaledEnergy(energy, tilt)


class FlowTiltedEnergy(nn.Module):
    r"""The energy of an EBM whose base measure is the flow: :math:`E(x) - \log q_\alpha(x)`.

    The model :math:`p(x) \propto q_\alpha(x)\,e^{-E_\theta(x)}` starts where the flow is
    (an energy net near 0 leaves it unchanged), so the energy net only has to learn
    where the flow is wrong, :math:`E_\theta \approx \log q_\alpha - \log p_{\rm data}`.
    This is the data-space form, used for scores, ``log Z`` and reconstruction;
    sampling uses the same model in the flow's latent space (:class:`LatentEnergy`).
    ``(n, *event)`` to ``(n,)``.

    References:
        Xiao, Kreis, Kautz & Vahdat, "VAEBM: A Symbiosis between Variational
        Autoencoders and Energy-based Models", ICLR 2021. https://arxiv.org/abs/2010.00654
    """

    def __init__(self, energy: nn.Module, flow: Flow) -> None:
        super().__init__()
        self.energy = energy
        self.flow = flow

    def forward(self, x: Tensor) -> Tensor:
        return self.energy(x) - self.flow.log_prob(x)


class LatentEnergy(nn.Module):
    r"""The flow-tilted EBM in the flow's latent space: :math:`U(z) = E_\theta(g_\alpha(z))
    + \tfrac12 \lVert z \rVert^2`.

    If :math:`z \sim e^{-U}` then :math:`g_\alpha(z) \sim q_\alpha\, e^{-E_\theta}` (the
    log-determinants of the change of variables cancel), so chains can run where the
    flow has made the geometry nearly Gaussian. ``(n, *event)`` latents to ``(n,)``.
    """

    def __init__(self, energy: nn.Module, flow: Flow) -> None:
        super().__init__()
        self.energy = energy
        self.flow = flow

    def forward(self, z: Tensor) -> Tensor:
        x = self.flow.inverse(z)[0]
        return self.energy(x) + 0.5 * z.flatten(1).square().sum(dim=1)


def score_energy(energy: nn.Module, flow: Flow, base: Literal["uniform", "flow"]) -> nn.Module:
    """The model's energy in data space: ``energy``, or its flow tilt (``base="flow"``)."""
    return FlowTiltedEnergy(energy, flow) if base == "flow" else energy


@torch.no_grad()
def decode(flow: Flow, starts: Tensor, base: Literal["uniform", "flow"]) -> Tensor:
    """Chain states in data space: latent codes (``base="flow"``) through the flow."""
    return flow.inverse(starts)[0] if base == "flow" else starts


def revise_proposals(
    flow: Flow,
    energy: nn.Module,
    sampler: Sampler,
    starts: Tensor,
    base: Literal["uniform", "flow"],
    generator: torch.Generator,
) -> tuple[Tensor, Tensor, dict[str, float]]:
    """Run the sampler from ``starts``: ``(proposals, revised, stats)`` in data space.

    With ``base="uniform"`` the starts are data-space proposals and the chains run on
    ``energy``; with ``base="flow"`` they are latent codes ``z``, the chains run on
    :class:`LatentEnergy`, and both ends are decoded by the flow.
    """
    target = LatentEnergy(energy, flow) if base == "flow" else energy
    result = sampler(target, starts, generator=generator)
    return decode(flow, starts, base), decode(flow, result.x, base), result.stats


@torch.no_grad()
def propose(
    flow: Flow,
    m: int,
    generator: torch.Generator,
    proposal: Literal["flow", "noise"] = "flow",
    noise_bounds: tuple[float, float] = (-1.0, 1.0),
    latent: bool = False,
) -> Tensor:
    """``(m, *event_shape)`` chain starts: flow samples ``g_α(z)`` (their codes ``z``
    with ``latent=True``), or uniform noise.

    Draws on the CPU from ``generator`` (so results do not depend on the device),
    then moves to the flow's device and dtype.
    """
    reference = next(flow.parameters())
    shape = (m, *flow.event_shape)
    if proposal == "noise":
        low, high = noise_bounds
        u = torch.rand(shape, generator=generator, device="cpu")
        return (low + (high - low) * u).to(reference.device, reference.dtype)
    z = torch.randn(shape, generator=generator, device="cpu").to(reference.device, reference.dtype)
    return z if latent else flow.inverse(z)[0]
