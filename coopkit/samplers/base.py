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

    Examples:
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

    Examples:
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

    Examples:
        >>> like = torch.zeros(1, dtype=torch.float64)
        >>> noise = draw(torch.randn, (2, 3), like, torch.Generator().manual_seed(0))
        >>> noise.shape, noise.dtype
        (torch.Size([2, 3]), torch.float64)
    """
    device = generator.device if generator is not None else like.device
    return sample(shape, generator=generator, device=device).to(like.device, like.dtype)


def scalar(value: float, like: Tensor) -> Tensor:
    """``value`` as a 0-dim CPU tensor of ``like``'s dtype, for arithmetic with ``like``.

    ``t * scalar(v, t)`` gives the same bits as ``t * v`` (either way ``v`` is rounded to
    the dtype once), but a Python float is wrapped into a new tensor, with a copy, at every
    operation: microseconds that add up over a sampler's steps on a small net.
    """
    return torch.tensor(value, dtype=like.dtype)


Chains = tuple[Tensor, Tensor, Tensor]
"""The states ``x`` ``(n, *event)`` of a batch of chains, their energies ``(n,)`` and
the energies' gradients ``(n, *event)``."""


class Metropolis:
    """The accept/reject steps of a Metropolis-corrected sampler (MALA, HMC).

    One instance serves one sampler call on chains like ``x`` ``(n, *event)``. No step
    waits for the host: the constants are 0-dim tensors made once (a Python float would
    be wrapped into a new tensor at every operation), and accepted proposals are counted
    per chain on the device. :meth:`decide` computes the log acceptance ratio by the
    textbook formula from the two Gaussian terms (HMC's momenta); MALA forms its ratio
    with fewer kernels (:func:`coopkit.samplers.mala.log_acceptance`) and uses
    :meth:`accept` and :meth:`keep` only. Kernel launches are what a step costs beyond
    its gradient on a small net.

    Args:
        x: the chains' states, for their number, device and dtype.
        bounds: ``(low, high)``: proposals outside this box are rejected; or ``None``.
        generator: source of the uniforms of the accept/reject steps.
    """

    def __init__(
        self, x: Tensor, bounds: tuple[float, float] | None, generator: torch.Generator | None
    ) -> None:
        self.like = x[:0]
        self.bounds = bounds
        self.generator = generator
        self.chain_shape = (x.shape[0],) + (1,) * (x.dim() - 1)
        self.zero, self.half = scalar(0.0, x), scalar(0.5, x)
        # torch.where would copy a CPU scalar to the chains' device at every call.
        self.neg_inf = torch.full((), -math.inf, dtype=x.dtype, device=x.device)
        self.accepted = torch.zeros(x.shape[0], dtype=torch.int64, device=x.device)

    def decide(
        self,
        energies: tuple[Tensor, Tensor],
        y: Tensor,
        gap: tuple[Tensor, Tensor],
        finite: Tensor,
        energy_finite: Tensor,
    ) -> tuple[Tensor, Tensor]:
        """Accept or reject every chain's proposal ``y`` ``(n, *event)``.

        With ``energies = (E(x), E(y))`` and ``gap = (a, b)``, both ``(n, *event)``, the
        log acceptance ratio is ``E(x) - E(y) + (‖a‖² - ‖b‖²) / 2``; it counts as
        ``-inf`` where it is NaN or the proposal is invalid: where ``energy_finite``
        ``(n,)`` or an entry of ``finite`` ``(n, *event)`` is not finite, or ``y`` is out
        of bounds. A chain accepts where ``log u < log α`` for a uniform ``u`` from the
        generator.

        Returns:
            ``(accept, log_alpha)``, both ``(n,)``.
        """
        # v * 0 is 0 for a finite v and NaN otherwise: one kernel per tensor where
        # torch.isfinite launches four; each coordinate out of bounds adds 1.
        zero_or_nan = (energy_finite * self.zero).to(finite.dtype).view(self.chain_shape)
        bad = finite * zero_or_nan
        if self.bounds is not None:
            bad = bad + (y.clamp(*self.bounds) != y)
        # One reduction for both squared norms and the count of bad entries; each
        # chain's sums are the same bits as they would be alone.
        stacked = torch.stack((*gap, bad)).flatten(2)
        a_squared, b_squared, n_bad = (stacked * stacked).sum(2).unbind()
        log_alpha = energies[0] - energies[1] + self.half * (a_squared - b_squared)
        log_alpha = torch.where(
            n_bad == self.zero, log_alpha.nan_to_num(nan=-math.inf), self.neg_inf
        )
        return self.accept(log_alpha), log_alpha

    def accept(self, log_alpha: Tensor) -> Tensor:
        """The ``(n,)`` decisions ``log u < log α`` for ``log_alpha`` ``(n,)`` and one
        uniform ``u`` per chain from the generator (a ``-inf`` ratio always rejects)."""
        u = draw(torch.rand, log_alpha.shape, self.like, self.generator)
        return u.log() < log_alpha

    def keep(self, accept: Tensor, proposed: Chains, current: Chains) -> Chains:
        """Per chain, the ``proposed`` state where ``accept`` ``(n,)`` holds, else the
        ``current`` one; accepted proposals are counted with :meth:`count`."""
        keep = accept.view(self.chain_shape)
        (y, e_y, grad_y), (x, e, grad) = proposed, current
        return torch.where(keep, y, x), torch.where(accept, e_y, e), torch.where(keep, grad_y, grad)

    def count(self, accept: Tensor) -> None:
        """Add one sampling step's decisions ``accept`` ``(n,)`` to the tally."""
        self.accepted += accept


def mean_probability(log_alpha: Tensor) -> float:
    """The mean over the chains of ``min(1, α)`` from ``log_alpha`` ``(n,)``: what a
    warm-up adapts the step size by (a host sync, once per warm-up step)."""
    return log_alpha.clamp(max=0).exp().mean().item()


def to_host(*values: Tensor) -> list[float]:
    """0-dim tensors as Python floats through one host sync (in float64, which holds
    every float32 and integer count below 2**53 exactly)."""
    return torch.stack([value.double() for value in values]).tolist()


def check_step_size(step_size: float) -> float:
    """``step_size`` as a float; a ValueError unless it is positive and finite."""
    if not (step_size > 0 and math.isfinite(step_size)):
        raise ValueError(f"step_size must be positive and finite; got {step_size!r}.")
    return float(step_size)


def check_count(name: str, value: int, least: int) -> int:
    """``value`` as an int; a ValueError naming ``name`` unless it is an integer >= ``least``.

    Examples:
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

    Examples:
        >>> check_bounds((-1, 1))
        (-1.0, 1.0)
    """
    if bounds is None:
        return None
    if len(bounds) != 2 or not bounds[0] < bounds[1]:
        raise ValueError(f"bounds must be (low, high) with low < high; got {bounds!r}.")
    return (float(bounds[0]), float(bounds[1]))
