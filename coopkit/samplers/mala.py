r"""Metropolis-adjusted Langevin (MALA): Langevin proposals with an accept/reject step.

Each chain proposes a Langevin step, parametrised as in
:mod:`coopkit.samplers.langevin` with noise scale 1,

.. math:: y = x - \frac{s^2}{2} \nabla E(x) + s\,\varepsilon, \qquad
          \varepsilon \sim \mathcal{N}(0, I),

so :math:`q(y \mid x) = \mathcal{N}(y;\, x - \tfrac{s^2}{2}\nabla E(x),\, s^2 I)`, and
accepts it with probability :math:`\min(1, \alpha)`,

.. math:: \log \alpha = E(x) - E(y) + \log q(x \mid y) - \log q(y \mid x),

otherwise it stays at :math:`x`. The asymmetric-proposal term makes ``exp(-E)`` exactly
invariant for every step size: unlike unadjusted Langevin, MALA has no step-size bias.
Proposals whose energy or gradient is not finite are rejected.

With ``bounds`` the target is ``exp(-E)`` restricted to the box: the starting points
are clamped into it and proposals that leave it are rejected (never clamped), which
keeps detailed balance for the truncated target.

Step-size adaptation (optional, ``n_warmup > 0``): before the ``n_steps`` sampling
steps, ``n_warmup`` steps tune one step size for the whole batch by Robbins–Monro on
its logarithm, :math:`\log s \leftarrow \log s + t^{-0.6}(\bar a_t - a^\star)`, where
:math:`\bar a_t` is the mean acceptance probability over the chains at warm-up step
:math:`t` and :math:`a^\star` = ``target_accept`` (0.574, optimal for MALA in high
dimension; Roberts & Rosenthal, 1998). The step size is then frozen, so the sampling
steps are a proper Markov chain.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

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
    scalar,
    to_host,
)


class MALASampler(Sampler):
    """Metropolis-adjusted Langevin over a batch of chains, accept/reject per chain.

    Args:
        step_size: ``s`` in the proposal (the starting value when adapting).
        n_steps: number of MALA transitions after the warm-up (at least 1).
        n_warmup: number of extra transitions first, during which ``s`` adapts toward
            ``target_accept``; 0 (the default) disables adaptation.
        target_accept: acceptance rate the warm-up aims for.
        bounds: ``(low, high)``: sample ``exp(-E)`` restricted to this box, or ``None``.

    The adapted step size is one scalar for the batch (chains share it); it is reported
    in ``stats`` and not stored: set ``sampler.step_size = result.stats["step_size"]``
    to carry it over to the next call.

    Stats: ``step_size`` (after adaptation); ``acceptance_rate``, the fraction of accepted
    proposals over chains and sampling steps; ``grad_norm``, the mean per-chain gradient
    norm at the current states over all steps; ``energy_drop``, the mean energy at
    ``x0`` (after clamping into ``bounds``) minus that at the result.

    Examples:
        >>> sampler = MALASampler(step_size=0.5, n_steps=200)
        >>> generator = torch.Generator().manual_seed(0)
        >>> x0 = torch.full((2000, 1), 3.0)
        >>> result = sampler(lambda x: 0.5 * (x**2).sum(dim=1), x0, generator=generator)
        >>> round(result.x.var().item(), 1), 0.8 < result.stats["acceptance_rate"] < 1
        (1.0, True)
    """

    metropolis_corrected = True

    def __init__(
        self,
        step_size: float = 0.1,
        n_steps: int = 30,
        n_warmup: int = 0,
        target_accept: float = 0.574,
        bounds: tuple[float, float] | None = None,
    ) -> None:
        self.step_size = check_step_size(step_size)
        self.n_steps = check_count("n_steps", n_steps, 1)
        self.n_warmup = check_count("n_warmup", n_warmup, 0)
        self.target_accept = check_probability("target_accept", target_accept)
        self.bounds = check_bounds(bounds)

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
        log_s = math.log(self.step_size)
        n_total = self.n_warmup + self.n_steps
        norms = x.new_empty((n_total, x.shape[0]))  # ‖∇E‖ per chain at each step's start
        for t in range(n_total):
            if t <= self.n_warmup:  # the step size changes in the warm-up only
                s = math.exp(log_s)
                scales = scalar(0.5 * s**2, x), scalar(s, x)
            torch.linalg.vector_norm(chains[2].detach().flatten(1), dim=1, out=norms[t])
            chains, accept, log_alpha = self._step(
                energy, chains, scales, metropolis, differentiable
            )
            if t < self.n_warmup:
                mean_prob = mean_probability(log_alpha)
                log_s += (t + 1) ** -0.6 * (mean_prob - self.target_accept)
            else:
                metropolis.count(accept)
        # Per step, the mean over the chains; summed step by step, in the chains' dtype.
        norm_sum = sum(norms.mean(dim=1).unbind(), norms.new_zeros(()))
        accepted, norm_sum, drop = to_host(
            metropolis.accepted.sum(), norm_sum, (e_start - chains[1].detach()).mean()
        )
        stats = {
            "step_size": math.exp(log_s),
            "acceptance_rate": accepted / (x.shape[0] * self.n_steps),
            "grad_norm": norm_sum / n_total,
            "energy_drop": drop,
        }
        return SampleResult(chains[0], stats)

    @staticmethod
    def _step(
        energy: Energy,
        chains: Chains,
        scales: tuple[Tensor, Tensor],
        metropolis: Metropolis,
        differentiable: bool,
    ) -> tuple[Chains, Tensor, Tensor]:
        """One MALA transition of ``chains`` with ``scales = (s²/2, s)``: the new chains,
        the ``(n,)`` decisions and the log acceptance ratios they used."""
        (x, e, grad), (c, s) = chains, scales
        noise = draw(torch.randn, x.shape, x, metropolis.generator)
        proposed = evaluate(energy, x - c * grad + s * noise, differentiable)
        y, e_y, grad_y = proposed
        with torch.no_grad():
            back = (x - y + c * grad_y) / s
            accept, log_alpha = metropolis.decide((e, e_y), y, (noise, back), grad_y, e_y)
        return metropolis.keep(accept, proposed, chains), accept, log_alpha
