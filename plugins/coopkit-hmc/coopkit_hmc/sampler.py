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

import torch
from coopkit.samplers.base import (
    Chains,
    Energy,
    Metropolis,
    Sampler,
    SampleResult,
    check_bounds,
    check_count,
    check_probability,
    check_step_size,
    draw,
    evaluate,
    mean_probability,
    to_host,
)
from torch import Tensor

from coopkit_hmc.adaptation import DualAveraging


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

    Examples:
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
        self,
        energy: Energy,
        chains: Chains,
        p: Tensor,
        eps: float,
        energies: Tensor,
        differentiable: bool,
    ) -> tuple[Chains, Tensor]:
        """The end points ``(x, E, ∇E)`` and momenta of the trajectories from ``chains``
        and momenta ``p``, with step ``eps``; the energies along the way are written into
        ``energies`` ``(n_leapfrog, n)``.

        Each position and momentum update is one fused multiply-add
        (``torch.add(a, b, alpha=...)``), where ``a + ε * b`` takes two kernels: the end
        points differ from the textbook's in their last bits only.
        """
        x, _, grad = chains
        p = torch.add(p, grad, alpha=-0.5 * eps)
        for k in range(self.n_leapfrog):
            x, e, grad = evaluate(energy, torch.add(x, p, alpha=eps), differentiable)
            energies[k] = e.detach()
            p = torch.add(p, grad, alpha=-eps if k < self.n_leapfrog - 1 else -0.5 * eps)
        return (x, e, grad), p

    def _step(
        self,
        energy: Energy,
        chains: Chains,
        eps: float,
        metropolis: Metropolis,
        energies: Tensor,
        differentiable: bool,
    ) -> tuple[Chains, Tensor, Tensor]:
        """One HMC transition of ``chains``: the new chains, the ``(n,)`` decisions and the
        log acceptance ratios they used. ``energies`` ``(n_leapfrog, n)`` is scratch room."""
        p = draw(torch.randn, chains[0].shape, chains[0], metropolis.generator)
        proposed, p_y = self._leapfrog(energy, chains, p, eps, energies, differentiable)
        with torch.no_grad():
            # A gradient that is not finite anywhere on the trajectory leaves p_y not
            # finite, so checking p_y covers the gradients; the energies need their own.
            trajectory = (energies * metropolis.zero).sum(0)
            e, e_y = chains[1], proposed[1]
            accept, log_alpha = metropolis.decide((e, e_y), proposed[0], (p, p_y), p_y, trajectory)
        return metropolis.keep(accept, proposed, chains), accept, log_alpha

    def __call__(
        self,
        energy: Energy,
        x0: Tensor,
        *,
        generator: torch.Generator | None = None,
        differentiable: bool = False,
    ) -> SampleResult:
        x = x0.clamp(*self.bounds) if self.bounds is not None else x0
        chains = evaluate(energy, x, differentiable)
        e_start = chains[1].detach()
        metropolis = Metropolis(x, self.bounds, generator)
        energies = e_start.new_empty((self.n_leapfrog, *e_start.shape))
        adaptation = DualAveraging(self.step_size, self.target_accept)
        step_size = self.step_size
        for t in range(self.n_warmup + self.n_steps):
            chains, accept, log_alpha = self._step(
                energy, chains, step_size, metropolis, energies, differentiable
            )
            if t < self.n_warmup:
                adaptation.update(mean_probability(log_alpha))
                last_warmup = t == self.n_warmup - 1
                step_size = adaptation.final_step_size if last_warmup else adaptation.step_size
            else:
                metropolis.count(accept)
        accepted, drop = to_host(metropolis.accepted.sum(), (e_start - chains[1].detach()).mean())
        stats = {
            "step_size": step_size,
            "acceptance_rate": accepted / (x.shape[0] * self.n_steps),
            "energy_drop": drop,
        }
        return SampleResult(chains[0], stats)


def hmc(**params: object) -> HMCSampler:
    """Registered factory of the ``hmc`` sampler."""
    return HMCSampler(**params)  # type: ignore[arg-type]
