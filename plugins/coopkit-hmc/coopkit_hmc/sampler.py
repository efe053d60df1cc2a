r"""Hamiltonian Monte Carlo over a batch of chains, accept/reject per chain.

Each transition draws a momentum :math:`p \sim \mathcal{N}(0, I)`, integrates
Hamilton's equations for :math:`H(x, p) = E(x) + \tfrac12\|p\|^2` with ``n_leapfrog``
leapfrog steps of size :math:`\varepsilon`,

.. math::
    p \leftarrow p - \tfrac{\varepsilon}{2} \nabla E(x), \quad
    x \leftarrow x + \varepsilon p, \quad
    p \leftarrow p - \tfrac{\varepsilon}{2} \nabla E(x),

and accepts the end point :math:`(x', p')` with probability
:math:`\min\bigl(1, \exp(H(x, p) - H(x', p'))\bigr)`, else keeps :math:`x`. The
leapfrog map is volume-preserving and reversible, so ``exp(-E)`` is exactly invariant.
End points whose energy or gradient (anywhere along the trajectory) is not finite are
rejected. With ``n_leapfrog=1`` a transition is a MALA step with ``s = ε``.

With ``bounds`` the target is ``exp(-E)`` restricted to the box: starting points are
clamped into it and end points outside it are rejected (trajectories may pass outside;
the energy must be defined there).

Optional warm-up (``n_warmup > 0``): that many extra transitions first, tuning one step
size for the batch by dual averaging (:mod:`coopkit_hmc.adaptation`) on the mean
acceptance probability over the chains; sampling then uses the averaged step size.
"""

from __future__ import annotations

import math

import torch
from coopkit.samplers.base import (
    Energy,
    Sampler,
    SampleResult,
    check_bounds,
    check_count,
    check_probability,
    check_step_size,
    draw,
    evaluate,
)
from torch import Tensor

from coopkit_hmc.adaptation import DualAveraging


def _all_finite(t: Tensor) -> Tensor:
    return torch.isfinite(t).flatten(1).all(dim=1)


class HMCSampler(Sampler):
    """Hamiltonian Monte Carlo (unit mass matrix) over a batch of chains.

    Args:
        step_size: leapfrog step ``ε`` (the starting value when adapting).
        n_leapfrog: leapfrog steps per transition ``L`` (one gradient each).
        n_steps: HMC transitions after the warm-up (at least 1).
        n_warmup: extra transitions first, adapting ``ε`` toward ``target_accept``;
            0 (the default) disables adaptation.
        target_accept: acceptance probability the warm-up aims for.
        bounds: ``(low, high)``: sample ``exp(-E)`` restricted to this box, or ``None``.

    The defaults cost 30 gradients a call, as many as CoopFlow's 30 Langevin steps. The
    adapted step size is one scalar for the batch; it is reported in ``stats`` and not
    stored (set ``sampler.step_size = result.stats["step_size"]`` to keep it).

    Stats: ``step_size`` (after adaptation); ``acceptance_rate``, the fraction of accepted
    transitions over chains and sampling transitions; ``energy_drop``, the mean energy
    at ``x0`` (after clamping into ``bounds``) minus that at the result.

    Example:
        >>> sampler = HMCSampler(step_size=0.3, n_leapfrog=5, n_steps=50)
        >>> generator = torch.Generator().manual_seed(0)
        >>> x0 = torch.full((2000, 1), 3.0)
        >>> result = sampler(lambda x: 0.5 * (x**2).sum(dim=1), x0, generator=generator)
        >>> round(result.x.var().item(), 1), result.stats["acceptance_rate"] > 0.9
        (1.0, True)
    """

    metropolis_corrected = True

    def __init__(
        self,
        step_size: float = 0.1,
        n_leapfrog: int = 10,
        n_steps: int = 3,
        n_warmup: int = 0,
        target_accept: float = 0.65,
        bounds: tuple[float, float] | None = None,
    ) -> None:
        self.step_size = check_step_size(step_size)
        self.n_leapfrog = check_count("n_leapfrog", n_leapfrog, 1)
        self.n_steps = check_count("n_steps", n_steps, 1)
        self.n_warmup = check_count("n_warmup", n_warmup, 0)
        self.target_accept = check_probability("target_accept", target_accept)
        self.bounds = check_bounds(bounds)

    def _leapfrog(
        self, energy: Energy, x: Tensor, grad: Tensor, p: Tensor, eps: float, differentiable: bool
    ) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        """End point ``(x, E, ∇E, p)`` of one trajectory and an ``(n,)`` all-finite mask."""
        finite = torch.ones(x.shape[0], dtype=torch.bool, device=x.device)
        p = p - 0.5 * eps * grad
        for step in range(self.n_leapfrog):
            x, e, grad = evaluate(energy, x + eps * p, differentiable)
            finite &= torch.isfinite(e) & _all_finite(grad)
            p = p - (eps if step < self.n_leapfrog - 1 else 0.5 * eps) * grad
        return x, e, grad, p, finite

    def __call__(
        self,
        energy: Energy,
        x0: Tensor,
        *,
        generator: torch.Generator | None = None,
        differentiable: bool = False,
    ) -> SampleResult:
        x = x0.clamp(*self.bounds) if self.bounds is not None else x0
        n = x.shape[0]
        chain_shape = (n,) + (1,) * (x.dim() - 1)
        x, e, grad = evaluate(energy, x, differentiable)
        e_start = e.detach()
        adaptation = DualAveraging(self.step_size, self.target_accept)
        eps = self.step_size
        accepted = x.new_zeros(())
        for t in range(self.n_warmup + self.n_steps):
            p = draw(torch.randn, x.shape, x, generator)
            y, e_y, grad_y, p_y, finite = self._leapfrog(energy, x, grad, p, eps, differentiable)
            with torch.no_grad():
                kinetic = 0.5 * (p.flatten(1).square().sum(1) - p_y.flatten(1).square().sum(1))
                log_alpha = (e - e_y + kinetic).nan_to_num(nan=-math.inf)
                valid = finite & _all_finite(p_y)
                if self.bounds is not None:
                    valid &= ((y >= self.bounds[0]) & (y <= self.bounds[1])).flatten(1).all(1)
                log_alpha = torch.where(valid, log_alpha, -math.inf)
                u = draw(torch.rand, (n,), x, generator)
                accept = u.log() < log_alpha
            x = torch.where(accept.view(chain_shape), y, x)
            e = torch.where(accept, e_y, e)
            grad = torch.where(accept.view(chain_shape), grad_y, grad)
            if t < self.n_warmup:
                adaptation.update(log_alpha.clamp(max=0).exp().mean().item())
                last_warmup = t == self.n_warmup - 1
                eps = adaptation.final_step_size if last_warmup else adaptation.step_size
            else:
                accepted = accepted + accept.sum()
        stats = {
            "step_size": eps,
            "acceptance_rate": accepted.item() / (n * self.n_steps),
            "energy_drop": (e_start - e.detach()).mean().item(),
        }
        return SampleResult(x, stats)


def hmc(**params: object) -> HMCSampler:
    """Registered factory of the ``hmc`` sampler."""
    return HMCSampler(**params)  # type: ignore[arg-type]
