"""The sampler contract: MCMC that revises a batch of chains toward ``exp(-E(x))``.

A sampler is called as ``sampler(energy, x0, *, generator=None, differentiable=False)``
where ``energy`` maps ``(n, *event)`` to ``(n,)`` energies and ``x0`` holds the ``n``
chains' starting points. It returns a :class:`SampleResult`. With
``differentiable=False`` no autograd graph survives a step (the result is detached);
with ``differentiable=True`` the graph through every step is kept, so a loss on the
result back-propagates to ``x0`` (reconstruction needs it).
"""

from __future__ import annotations

import math
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

    Example:
        A sampler that takes one plain gradient step (a sketch, not a valid MCMC move):

        >>> class GradientStep(Sampler):
        ...     def __init__(self, step_size=0.1):
        ...         self.step_size = step_size
        ...     def __call__(self, energy, x0, *, generator=None, differentiable=False):
        ...         x, e, grad = evaluate(energy, x0, differentiable)
        ...         return SampleResult(x - self.step_size * grad, {"step_size": self.step_size})
        >>> result = GradientStep()(lambda x: 0.5 * (x**2).sum(dim=1), torch.ones(2, 3))
        >>> result.x
        tensor([[0.9000, 0.9000, 0.9000],
                [0.9000, 0.9000, 0.9000]])
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


def evaluate(energy: Energy, x: Tensor, differentiable: bool) -> tuple[Tensor, Tensor, Tensor]:
    """``(x, E(x), ∇E(x))`` for a batch ``x`` of shape ``(n, *event)``.

    Without ``differentiable`` all three come back detached. With it, the graph from the
    input to the energy and its gradient is kept (``create_graph=True``), so that a loss
    on later states back-propagates through this step; an ``x`` that does not require
    grad starts a new leaf.

    Example:
        >>> x, e, grad = evaluate(lambda x: 0.5 * (x**2).sum(dim=1), torch.ones(2, 3), False)
        >>> e, grad[0], grad.requires_grad
        (tensor([1.5000, 1.5000]), tensor([1., 1., 1.]), False)
    """
    if not (differentiable and x.requires_grad):
        x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        e = energy(x)
        (grad,) = torch.autograd.grad(e.sum(), x, create_graph=differentiable)
    if differentiable:
        return x, e, grad
    return x.detach(), e.detach(), grad.detach()


def draw(
    sample: Callable[..., Tensor],
    shape: tuple[int, ...],
    like: Tensor,
    generator: torch.Generator | None,
) -> Tensor:
    """``sample(shape)`` (``torch.randn``, ``torch.rand``) drawn on the generator's device,
    then moved to ``like``'s device and dtype: a CPU generator serves chains on a GPU.

    Example:
        >>> like = torch.zeros(1, dtype=torch.float64)
        >>> noise = draw(torch.randn, (2, 3), like, torch.Generator().manual_seed(0))
        >>> noise.shape, noise.dtype
        (torch.Size([2, 3]), torch.float64)
    """
    device = generator.device if generator is not None else like.device
    return sample(shape, generator=generator, device=device).to(like.device, like.dtype)


def check_step_size(step_size: float) -> float:
    """``step_size`` as a float; a ValueError unless it is positive and finite."""
    if not (step_size > 0 and math.isfinite(step_size)):
        raise ValueError(f"step_size must be positive and finite; got {step_size!r}.")
    return float(step_size)


def check_count(name: str, value: int, least: int) -> int:
    """``value`` as an int; a ValueError naming ``name`` unless it is an integer >= ``least``.

    Example:
        >>> check_count("n_steps", 30.0, least=0)
        30
        >>> try:
        ...     check_count("n_steps", 2.5, least=0)
        ... except ValueError as exc:
        ...     print(exc)
        n_steps must be a non-negative integer; got 2.5.
    """
    if int(value) != value or value < least:
        kind = {0: "a non-negative integer", 1: "a positive integer"}.get(
            least, f"an integer >= {least}"
        )
        raise ValueError(f"{name} must be {kind}; got {value!r}.")
    return int(value)


def check_probability(name: str, value: float) -> float:
    """``value`` as a float; a ValueError naming ``name`` unless it lies in (0, 1)."""
    if not 0 < value < 1:
        raise ValueError(f"{name} must lie in (0, 1); got {value!r}.")
    return float(value)


def check_bounds(bounds: tuple[float, float] | None) -> tuple[float, float] | None:
    """``bounds`` as ``(low, high)`` floats, or ``None``; a ValueError unless low < high.

    Example:
        >>> check_bounds((-1, 1))
        (-1.0, 1.0)
    """
    if bounds is None:
        return None
    if len(bounds) != 2 or not bounds[0] < bounds[1]:
        raise ValueError(f"bounds must be (low, high) with low < high; got {bounds!r}.")
    return (float(bounds[0]), float(bounds[1]))
