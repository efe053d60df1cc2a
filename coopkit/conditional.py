r"""Inpainting as conditional sampling: the model given the observed entries.

With observed values :math:`x_o` and the mask :math:`m` (1 where observed), the
completions are draws of the unobserved entries from the model's conditional,

.. math:: p(x_u \mid x_o) \propto e^{-U(m \odot x_o + (1 - m) \odot y)},

where :math:`U` is the fitted model's energy in data space. :class:`ConditionalEnergy`
is that energy as a function of the whole chain state :math:`y`: its observed entries
do not enter it, so any sampler of the library runs on it unchanged and its chains'
unobserved entries target the conditional (the observed entries of :math:`y` are
independent of them and are overwritten at the end).

The chains start from the flow's samples with the observed entries written in, the best
of ``n_candidates`` per chain by the model's energy (:func:`conditional_starts`): a
start that already agrees with the observed entries, so that a short run suffices.

References:
    Xie, Zhu, Li & Li, "A Tale of Two Flows: Cooperative Learning of Langevin Flow and
    Normalizing Flow Toward Energy-Based Model", ICLR 2022.
    https://arxiv.org/abs/2205.06924
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from coopkit.flows.base import Flow
from coopkit.inference import in_box
from coopkit.samplers.base import Sampler
from coopkit.training.energy import propose


def compose(observed: Tensor, mask: Tensor, free: Tensor) -> Tensor:
    """``m ⊙ observed + (1 − m) ⊙ free``; all three ``(n, *event)`` (``mask`` broadcast).

    Examples:
        >>> compose(torch.ones(1, 2), torch.tensor([1.0, 0.0]), torch.zeros(1, 2))
        tensor([[1., 0.]])
    """
    return torch.where(mask.bool(), observed, free)


class ConditionalEnergy(nn.Module):
    """``U(m ⊙ x_o + (1 − m) ⊙ y)``: ``energy`` with the observed entries clamped.

    With ``bounds`` the conditional is restricted to the box: a state whose unobserved
    entries leave it has energy ``+inf``, which a Metropolis-corrected sampler rejects
    (and ``energy`` is never called outside the box, where an image flow is undefined).

    Args:
        energy: the model's energy in data space, ``(n, *event) -> (n,)``.
        observed: ``(n, *event)`` values inside ``bounds``; only the entries where
            ``mask`` is 1 are read.
        mask: 1 where observed, broadcastable to ``observed``.
        bounds: ``(low, high)`` box of the data, or ``None``.

    Examples:
        >>> mask = torch.tensor([1.0, 0.0])
        >>> energy = ConditionalEnergy(lambda x: x.sum(dim=1), torch.ones(1, 2), mask)
        >>> energy(torch.full((1, 2), 5.0))
        tensor([6.])
    """

    def __init__(
        self,
        energy: nn.Module,
        observed: Tensor,
        mask: Tensor,
        bounds: tuple[float, float] | None = None,
    ) -> None:
        super().__init__()
        self.energy = energy
        self.observed = observed
        self.mask = mask.expand_as(observed)
        self.bounds = bounds

    def forward(self, y: Tensor) -> Tensor:
        x = compose(self.observed, self.mask, y)
        if self.bounds is None:
            return self.energy(x)
        energy = self.energy(x.clamp(*self.bounds))
        return torch.where(in_box(x, self.bounds), energy, torch.inf)


@torch.no_grad()
def conditional_starts(
    flow: Flow,
    energy: ConditionalEnergy,
    n_candidates: int,
    generator: torch.Generator,
) -> Tensor:
    """``(n, *event)`` chain starts: per chain, the one of ``n_candidates`` flow samples
    with the lowest conditional energy (the observed entries written in)."""
    n = len(energy.observed)
    candidates = propose(flow, n * n_candidates, generator).reshape(
        n_candidates, n, *energy.observed.shape[1:]
    )
    energies = torch.stack([energy(c) for c in candidates])
    energies = torch.nan_to_num(energies, nan=torch.inf)
    best = energies.argmin(dim=0)
    chosen = candidates[best, torch.arange(n, device=best.device)]
    return compose(energy.observed, energy.mask, chosen)


def sample_conditional(
    energy: nn.Module,
    flow: Flow,
    sampler: Sampler,
    observed: Tensor,
    mask: Tensor,
    *,
    n_candidates: int,
    bounds: tuple[float, float] | None,
    generator: torch.Generator,
) -> Tensor:
    """Completions of ``observed``: ``sampler`` run on :class:`ConditionalEnergy` from
    :func:`conditional_starts`, restricted to ``bounds``, the observed entries written
    back exactly. ``observed`` ``(n, *event)``, ``mask`` broadcastable to it, in model
    units; returns ``(n, *event)``."""
    conditional = ConditionalEnergy(energy, observed, mask.to(observed), bounds)
    starts = conditional_starts(flow, conditional, n_candidates, generator)
    x = sampler(conditional, starts, generator=generator).x
    if bounds is not None:
        x = x.clamp(*bounds)
    return compose(observed, conditional.mask, x)
