"""The sampler contract: MCMC that revises a batch of chains toward ``exp(-E(x))``.

A sampler is called as ``sampler(energy, x0, *, generator=None, differentiable=False)``
where ``energy`` maps ``(n, *event)`` to ``(n,)`` energies and ``x0`` holds the ``n``
chains' starting points. It returns a :class:`SampleResult`. With
``differentiable=False`` no autograd graph survives a step (the result is detached);
with ``differentiable=True`` the graph through every step is kept, so a loss on the
result back-propagates to ``x0`` (reconstruction needs it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import Tensor

Energy = Callable[[Tensor], Tensor]


@dataclass
class SampleResult:
    """Final states ``x`` (same shape as ``x0``) and scalar diagnostics ``stats``."""

    x: Tensor
    stats: dict[str, float] = field(default_factory=dict)


class Sampler:
    """Base class of coopkit's samplers. Subclasses implement :meth:`__call__`.

    ``step_size`` is public and mutable: the training loop may shrink it (for example
    after a divergence). ``metropolis_corrected`` says whether the chains leave
    ``exp(-E)`` exactly invariant (a Metropolis–Hastings accept/reject step, as in MALA
    or HMC) rather than only approximately (unadjusted Langevin); the conformance
    checks of :mod:`coopkit.testing` choose their statistical tests by it.
    """

    step_size: float
    metropolis_corrected: bool = False

    def __call__(
        self,
        energy: Energy,
        x0: Tensor,
        *,
        generator: torch.Generator | None = None,
        differentiable: bool = False,
    ) -> SampleResult:  # pragma: no cover - abstract
        raise NotImplementedError


def energy_and_grad(energy: Energy, x: Tensor, *, create_graph: bool) -> tuple[Tensor, Tensor]:
    """Energies ``(n,)`` at ``x`` and their gradient with respect to ``x``.

    ``x`` must require grad. ``create_graph=True`` keeps the graph of the gradient so
    that later steps stay differentiable.
    """
    e = energy(x)
    (grad,) = torch.autograd.grad(e.sum(), x, create_graph=create_graph)
    return e, grad
