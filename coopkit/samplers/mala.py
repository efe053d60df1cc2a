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
        decisions: list[Tensor] = []  # each step's, counted at the end
        norms = x.new_empty((n_total, x.shape[0]))  # ‖∇E‖ per chain at each step's start
        for t in range(n_total):
            if t <= self.n_warmup:  # the step size changes in the warm-up only
                step = math.exp(log_s)
            torch.linalg.vector_norm(chains[2].detach().flatten(1), dim=1, out=norms[t])
            chains, accept, log_alpha = self._step(energy, chains, step, metropolis, differentiable)
            decisions.append(accept)
            if t < self.n_warmup:
                mean_prob = mean_probability(log_alpha)
                log_s += (t + 1) ** -0.6 * (mean_prob - self.target_accept)
        # Per step, the mean over the chains; summed step by step, in the chains' dtype.
        norm_sum = sum(norms.mean(dim=1).unbind(), norms.new_zeros(()))
        accepted, norm_sum, drop = to_host(
            torch.stack(decisions[self.n_warmup :]).sum(),
            norm_sum,
            (e_start - chains[1].detach()).mean(),
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
        s: float,
        metropolis: Metropolis,
        differentiable: bool,
    ) -> tuple[Chains, Tensor, Tensor]:
        """One MALA transition of ``chains`` with step size ``s``: the new chains, the
        ``(n,)`` decisions and the log acceptance ratios they used.

        The proposal is two fused multiply-adds and the log acceptance ratio a dozen
        kernels (:func:`log_acceptance`) where the textbook formulas take two dozen,
        which is what a step costs beyond its gradient on a small net. The chains differ
        from the textbook loop's in their last bits (fused multiply-adds, the ratio's
        algebra), not in distribution: ``exp(-E)`` stays exactly invariant.
        """
        x, _, grad = chains
        noise = draw(torch.randn, x.shape, x, metropolis.generator)
        y = torch.add(x, grad, alpha=-0.5 * s * s).add_(noise, alpha=s)
        proposed = evaluate(energy, y, differentiable)
        with torch.no_grad():
            log_alpha = log_acceptance(chains, proposed, noise, s, metropolis)
            accept = metropolis.accept(log_alpha)
        return metropolis.keep(accept, proposed, chains), accept, log_alpha


def log_acceptance(
    chains: Chains, proposed: Chains, noise: Tensor, s: float, metropolis: Metropolis
) -> Tensor:
    r"""The ``(n,)`` log acceptance ratios of MALA proposals ``y = x - (s²/2) ∇E(x) + s ε``
    (``noise`` is ``ε``), ``-inf`` where a proposal is invalid: its energy or gradient not
    finite, or a coordinate outside ``metropolis.bounds``.

    With :math:`g = \nabla E(x) + \nabla E(y)`, the backward move's noise is
    :math:`(x - y + \tfrac{s^2}{2}\nabla E(y)) / s = \tfrac{s}{2} g - \varepsilon`, so

    .. math:: \log\alpha = E(x) - E(y) + \tfrac{s}{2}
              \bigl\langle g,\ \varepsilon - \tfrac{s}{4} g \bigr\rangle,

    one product and one sum per chain, without forming the backward noise (nor the
    cancellation of its squared norm against :math:`\lVert\varepsilon\rVert^2`). A
    gradient that is not finite makes the inner product NaN or :math:`-\infty`; an
    energy that is not finite is caught by adding :math:`0 \cdot E(y)`.

    Examples:
        On a flat energy every proposal inside the box is accepted (ratio 0):

        >>> x = torch.zeros(3, 2)
        >>> flat = (x, torch.zeros(3), torch.zeros(3, 2))
        >>> y = torch.tensor([[0.5, 0.0], [2.0, 0.0], [-0.5, 0.5]])
        >>> log_acceptance(flat, (y, *flat[1:]), y / 0.5, 0.5, Metropolis(x, (-1, 1), None))
        tensor([0., -inf, 0.])
    """
    (_, e, grad), (y, e_y, grad_y) = chains, proposed
    g = (grad + grad_y).flatten(1)
    w = torch.add(noise.flatten(1), g, alpha=-0.25 * s)
    if metropolis.bounds is not None:  # NaN in the product rejects a proposal outside
        w.masked_fill_((y.clamp(*metropolis.bounds) != y).flatten(1), math.nan)
    log_alpha = torch.linalg.vecdot(g, w).mul_(0.5 * s).add_(e).sub_(e_y)
    log_alpha.addcmul_(e_y, metropolis.zero)
    return log_alpha.nan_to_num_(nan=-math.inf, posinf=math.inf, neginf=-math.inf)
