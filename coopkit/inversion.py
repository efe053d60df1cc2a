r"""Fitting the Langevin flow's input: the two solvers behind ``reconstruct``.

Both find :math:`x_0` with :math:`L_\theta(x_0) \approx x`, minimising

.. math:: \mathcal{E}(x_0) = \lVert m \odot (x - L_\theta(x_0)) \rVert^2

per sample, with the mask :math:`m = 1` for reconstruction and :math:`m` = observed
entries for inpainting by optimisation, and :math:`x_0` kept in the chains' box.

* :func:`gradient_fit` is the paper's method: Adam on :math:`\mathcal{E}`,
  back-propagating through every Langevin step (second derivatives of the energy).
* :func:`fixed_point_fit` solves :math:`L_\theta(x_0) = x` by the damped iteration
  :math:`x_0 \leftarrow x_0 + \eta\, m \odot (x - L_\theta(x_0))`. A Langevin flow moves
  its input by a small, bounded amount, :math:`L_\theta = \mathrm{id} + \delta` with
  :math:`\delta` of small Lipschitz constant, so the iteration contracts; it needs one
  forward run of the Langevin flow per iteration and no derivative through it. A row
  whose error rises goes back to its best input with half the step :math:`\eta`.

Both stop early, once every row has seen ``PATIENCE`` iterations in a row that each
lowered its error (that of its best input so far) by less than the fraction ``tol`` of
it (``tol=0`` runs them all); both return each row's best input seen.
Every run of the Langevin flow re-seeds its generator with ``seed``, so that with a
noisy sampler :math:`x_0 \mapsto L_\theta(x_0)` stays one fixed function.

References:
    Xie, Zhu, Li & Li, "A Tale of Two Flows: Cooperative Learning of Langevin Flow and
    Normalizing Flow Toward Energy-Based Model", ICLR 2022.
    https://arxiv.org/abs/2205.06924
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from coopkit.samplers.base import Energy, Sampler

PATIENCE = 3


@dataclass
class Reconstruction:
    """Best inputs ``x0``, their outputs ``L(x0)``, per-sample squared errors ``(n,)``
    at the start and at the end, and the number of iterations run."""

    x0: Tensor
    x: Tensor
    initial_error: Tensor
    error: Tensor
    n_iter: int


class _Stopping:
    """Counts, per row, the iterations in a row that lowered its error by less than the
    fraction ``tol``; done once every row has ``PATIENCE`` of them."""

    def __init__(self, tol: float, n: int) -> None:
        self.tol, self.stalls = tol, torch.zeros(n, dtype=torch.long)

    def done(self, previous: Tensor, current: Tensor) -> bool:
        if self.tol == 0:
            return False
        slow = (previous - current <= self.tol * previous).cpu()
        self.stalls = torch.where(slow, self.stalls + 1, 0)
        return bool((self.stalls >= PATIENCE).all())


class _Problem:
    """The Langevin flow, the target and the mask of one fit, run with a fixed seed."""

    def __init__(
        self, energy: Energy, sampler: Sampler, target: Tensor, mask: Tensor | None, seed: int
    ) -> None:
        self.energy, self.sampler, self.target, self.seed = energy, sampler, target, seed
        self.weight = torch.ones_like(target) if mask is None else mask.to(target).expand_as(target)
        self.generator = torch.Generator().manual_seed(seed)

    def run(self, x0: Tensor, differentiable: bool = False) -> tuple[Tensor, Tensor]:
        """``(L(x0), error)`` with ``error`` the ``(n,)`` masked squared error."""
        self.generator.manual_seed(self.seed)
        x = self.sampler(self.energy, x0, generator=self.generator, differentiable=differentiable).x
        return x, ((self.weight * (self.target - x)) ** 2).flatten(1).sum(dim=1)


def _rows(mask: Tensor, like: Tensor) -> Tensor:
    return mask.view(-1, *([1] * (like.dim() - 1)))


def _keep_best(
    best: tuple[Tensor, Tensor, Tensor], x0: Tensor, x: Tensor, error: Tensor
) -> tuple[Tensor, Tensor, Tensor]:
    """``(x0, L(x0), error)`` per row: the new ones where ``error`` is lower, else ``best``."""
    better = error < best[2]
    rows = _rows(better, x0)
    return (
        torch.where(rows, x0, best[0]),
        torch.where(rows, x, best[1]),
        torch.where(better, error, best[2]),
    )


def gradient_fit(
    energy: Energy,
    sampler: Sampler,
    target: Tensor,
    x0: Tensor,
    *,
    mask: Tensor | None = None,
    n_iter: int = 200,
    lr: float = 0.01,
    tol: float = 1e-3,
    bounds: tuple[float, float] | None = None,
    seed: int = 0,
) -> Reconstruction:
    """Adam on the Langevin flow's input, through every Langevin step (module docstring).

    Memory grows linearly with the sampler's number of steps: the autograd graph of
    every step (with second derivatives of the energy) is kept until the backward pass.
    Callers bound it by passing batches of limited size.

    Args:
        energy: ``(n, *event) -> (n,)``.
        sampler: the Langevin flow; called with ``differentiable=True``.
        target: ``(n, *event)`` targets.
        x0: ``(n, *event)`` starting inputs.
        mask: 1 where the loss counts (observed entries), broadcastable to ``target``.
        n_iter: at most this many Adam iterations.
        lr: Adam's learning rate, in model units.
        tol: stop once, for every row, ``PATIENCE`` iterations in a row each lowered its
            error by less than this fraction of it; 0 runs all ``n_iter`` iterations.
        bounds: ``(low, high)`` box for ``x0``, or ``None``.
        seed: seed of the sampler's generator.

    Examples:
        On ``E(x) = ‖x‖²/2`` ten noise-free Langevin steps of size 0.1 shrink ``x0`` by
        ``0.995¹⁰``, so the input that reaches 0.5 is about 0.526:

        >>> from coopkit.samplers import LangevinSampler
        >>> energy = lambda x: 0.5 * (x**2).sum(dim=1)
        >>> sampler = LangevinSampler(step_size=0.1, n_steps=10)
        >>> target = torch.full((2, 3), 0.5)
        >>> result = gradient_fit(energy, sampler, target, torch.zeros(2, 3), lr=0.05, tol=0)
        >>> round(result.x0[0, 0].item(), 3), bool((result.error < 1e-6).all())
        (0.526, True)
    """
    problem = _Problem(energy, sampler, target, mask, seed)
    x0 = x0.detach().clone().requires_grad_(True)
    optimizer = torch.optim.Adam([x0], lr=lr)
    x, error = problem.run(x0, differentiable=True)
    best_x0, best_x, best = x0.detach().clone(), x.detach(), error.detach()
    initial, iterations, stopping = best, 0, _Stopping(tol, len(target))
    while iterations < n_iter:
        optimizer.zero_grad(set_to_none=True)
        error.sum().backward()
        optimizer.step()
        if bounds is not None:
            with torch.no_grad():
                x0.clamp_(*bounds)
        x, error = problem.run(x0, differentiable=True)
        iterations += 1
        previous = best
        best_x0, best_x, best = _keep_best(
            (best_x0, best_x, best), x0.detach(), x.detach(), error.detach()
        )
        if stopping.done(previous, best):
            break
    return Reconstruction(best_x0, best_x, initial, best, iterations)


@torch.no_grad()
def fixed_point_fit(
    energy: Energy,
    sampler: Sampler,
    target: Tensor,
    x0: Tensor,
    *,
    mask: Tensor | None = None,
    n_iter: int = 200,
    tol: float = 1e-3,
    bounds: tuple[float, float] | None = None,
    seed: int = 0,
) -> Reconstruction:
    """The damped fixed-point iteration for ``L(x0) = target`` (module docstring).

    Each iteration runs the Langevin flow once, without autograd. Arguments as for
    :func:`gradient_fit`; ``n_iter`` bounds the iterations.

    Examples:
        The problem of :func:`gradient_fit`'s example, solved to the same input:

        >>> from coopkit.samplers import LangevinSampler
        >>> energy = lambda x: 0.5 * (x**2).sum(dim=1)
        >>> sampler = LangevinSampler(step_size=0.1, n_steps=10)
        >>> target = torch.full((2, 3), 0.5)
        >>> result = fixed_point_fit(energy, sampler, target, target, tol=0, n_iter=20)
        >>> round(result.x0[0, 0].item(), 3), bool((result.error < 1e-10).all())
        (0.526, True)
    """
    problem = _Problem(energy, sampler, target, mask, seed)
    best_x0 = x0.detach().clone()
    best_x, best = problem.run(best_x0)
    initial, iterations, stopping = best, 0, _Stopping(tol, len(target))
    damping = torch.ones_like(best)
    while iterations < n_iter:
        step = problem.weight * (target - best_x) * _rows(damping, best_x0)
        candidate = best_x0 + step
        if bounds is not None:
            candidate = candidate.clamp(*bounds)
        x, error = problem.run(candidate)
        iterations += 1
        previous = best
        better = error < best
        damping = torch.where(better, (2 * damping).clamp(max=1.0), 0.5 * damping)
        best_x0, best_x, best = _keep_best((best_x0, best_x, best), candidate, x, error)
        if stopping.done(previous, best):
            break
    return Reconstruction(best_x0, best_x, initial, best, iterations)
