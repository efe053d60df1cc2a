r"""How strongly the energy net tilts the flow, chosen on rows the model did not train on.

With ``energy_base="flow"`` the model is the flow tilted by the energy net,

.. math:: p_\beta(x) = q_\alpha(x)\, e^{-\beta E_\theta(x)} / Z_\beta, \qquad
          Z_\beta = \mathbb{E}_{q_\alpha}\!\left[e^{-\beta E_\theta(x)}\right],

where :math:`\beta = 0` is the flow alone and :math:`\beta = 1` the model training
learns. An energy net trained on a few hundred rows separates them from the revised
samples too well: its scale grows without bound, and at :math:`\beta = 1` the tilt puts
all its mass on a few points (``log Z`` of thousands of nats, samples that collapse onto
the training rows). Shrinking :math:`\beta` keeps what the tilt gets right and drops its
overconfidence. The tilts form a path from the flow to the trained model, and one run
of annealed importance sampling along it, in the flow's latent space
(:func:`tilt_path`), estimates every :math:`\log Z_\beta`; the held-out
log-likelihood of validation rows :math:`v_j` is then
:math:`\overline{\log q_\alpha(v_j) - \beta E_\theta(v_j)} - \log \hat Z_\beta`.
:func:`choose_tilt` evaluates it on a grid of :math:`\beta` (0 and 17 values from
:math:`10^{-4}` to 1, a quarter of a decade apart: the energy's scale is what is
unknown) and keeps the best :math:`\beta` among those whose estimate is trusted:
Kish's effective sample size of the weights at least 5% of the chains and at least 30
(below that, :math:`\hat Z_\beta` is carried by a handful of chains and is biased low,
which would make a strong tilt look good). :math:`\beta = 0` is always on the grid and
always trusted, so the chosen model is never worse than its flow on the validation
rows, up to their sampling noise.

References:
    Xie, Zhu, Li & Li, "A Tale of Two Flows: Cooperative Learning of Langevin Flow and
    Normalizing Flow Toward Energy-Based Model", ICLR 2022.
    https://arxiv.org/abs/2205.06924

    Kong, "A Note on Importance Sampling using Standardized Weights", Technical report
    348, University of Chicago, 1992 (the effective sample size).

Examples:
    An energy that is far too confident (its scale is 1000 times what the data support)
    gets a small tilt:

    >>> from coopkit.flows import RealNVP
    >>> flow = RealNVP((2,))
    >>> flow.initialize(torch.randn(2000, 2, generator=torch.Generator().manual_seed(0)))
    >>> energy = lambda x: 1000.0 * 0.1 * x[:, 0]  # the data lean left, mildly
    >>> held_out = torch.randn(500, 2, generator=torch.Generator().manual_seed(1)) - 0.1
    >>> choice = choose_tilt(energy, flow, held_out, (-10.0, 10.0), 4096,
    ...                      torch.Generator().manual_seed(2))
    >>> 0 < choice.tilt < 0.01, choice.ess >= 0.05 * 4096
    (True, True)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from coopkit.flows.base import Flow
from coopkit.inference import chunked, in_box, trusted

TILTS: tuple[float, ...] = (0.0, *(10.0 ** (k / 4) for k in range(-16, 1)))
# Chains of a fit's tilt choice (``n_partition_samples="auto"``), of which the ESS rule
# needs 30. With four temperatures between grid points they chose the β that 1024 chains
# and sixteen temperatures chose, or its neighbour on the grid, at a fifteenth of the
# cost (iris, diabetes and the 50-D mixture of benchmarks/tables.py, after 60 and 400
# iterations): 11 of a fit's 17 CPU seconds on the mixture, before.
TILT_CHAINS = 256
# Temperatures between consecutive grid points (a sixteenth of a decade each apart).
TILT_SUBSTEPS = 4


@dataclass(frozen=True)
class TiltChoice:
    """The chosen ``tilt`` (β), with, per β of the grid ``tilts``, the validation rows'
    mean log-likelihood ``held_out`` (model units) and the weights' effective sample
    size ``ess_by_tilt`` out of ``n_samples`` flow draws; ``ess`` is the chosen β's."""

    tilt: float
    ess: float
    tilts: tuple[float, ...]
    held_out: tuple[float, ...]
    ess_by_tilt: tuple[float, ...]
    n_samples: int
    n_validation: int

    def as_dict(self) -> dict[str, object]:
        """Plain values, for ``tilt_info_`` and a saved model."""
        return {
            "tilt": self.tilt,
            "ess": self.ess,
            "tilts": list(self.tilts),
            "held_out": list(self.held_out),
            "ess_by_tilt": list(self.ess_by_tilt),
            "n_samples": self.n_samples,
            "n_validation": self.n_validation,
        }


@torch.no_grad()
def choose_tilt(
    energy: Callable[[Tensor], Tensor],
    flow: Flow,
    held_out: Tensor,
    bounds: tuple[float, float],
    n_chains: int,
    generator: torch.Generator,
    tilts: tuple[float, ...] = TILTS,
    chunk: int = 1024,
    substeps: int = TILT_SUBSTEPS,
) -> TiltChoice:
    """The β of ``tilts`` whose tilted model ``q·exp(-βE)`` gives the validation rows
    ``held_out`` ``(m, *event)`` (model units) the highest log-likelihood, among the β
    whose ``log Z`` estimate (:func:`tilt_path`, ``n_chains`` chains, ``substeps``
    temperatures between grid points) is :func:`~coopkit.inference.trusted`.

    Four temperatures between grid points cost a quarter of sixteen (see
    :data:`TILT_CHAINS`); too few lower the ESS, which only excludes strong tilts, so a
    cheap path errs toward the flow.

    ``energy`` ``(n, *event) -> (n,)`` is the energy net (not the tilted model's
    energy); ``bounds`` is the box the model lives on (rows outside it have zero
    density).
    """
    if not tilts or tilts[0] != 0.0 or list(tilts) != sorted(tilts):
        raise ValueError("tilts must increase from 0 (the flow alone, always trusted).")
    log_z, sizes = tilt_path(
        energy, flow, tilts, bounds, n_chains, generator, substeps=substeps, chunk=chunk
    )
    e_v = chunked(lambda v: energy(v).double(), held_out, chunk)
    log_q = chunked(lambda v: flow.log_prob(v).double(), held_out, chunk)
    inside = in_box(held_out, bounds)
    held = [
        (torch.where(inside, log_q - beta * e_v, -math.inf).mean() - z).item()
        for beta, z in zip(tilts, log_z, strict=True)
    ]
    candidates = [k for k, ess in enumerate(sizes) if trusted(ess, n_chains)]
    best = max(candidates, key=lambda k: held[k]) if candidates else 0
    return TiltChoice(
        tilts[best], sizes[best], tuple(tilts), tuple(held), tuple(sizes), n_chains, len(held_out)
    )


@torch.no_grad()
def tilt_path(
    energy: Callable[[Tensor], Tensor],
    flow: Flow,
    tilts: tuple[float, ...],
    bounds: tuple[float, float],
    n_chains: int,
    generator: torch.Generator,
    substeps: int = TILT_SUBSTEPS,
    chunk: int = 1024,
) -> tuple[list[float], list[float]]:
    r"""``log Z_β`` and the weights' effective sample size at each β of ``tilts``
    (increasing from 0), by annealed importance sampling along the tilts in the flow's
    latent space.

    ``n_chains`` chains start at :math:`z \sim \mathcal N(0, I)`, so that
    :math:`g_\alpha(z) \sim q_\alpha`, and anneal through ``substeps`` geometrically
    spaced temperatures between consecutive tilts (linearly from 0 to the first
    positive one): before each temperature :math:`\beta_k` a chain's log weight gains
    :math:`-(\beta_k - \beta_{k-1}) E_\theta(g_\alpha(z))`, then one pCN move leaves
    :math:`\mathcal N(z)\, e^{-\beta_k E_\theta(g_\alpha(z))}` invariant (its step size
    adapted between temperatures toward an acceptance of 0.3). Points outside ``bounds``
    have energy :math:`+\infty`. At β = 0 this is plain importance sampling from the
    flow; further on, each step only bridges a small change of density, which is what
    keeps the weights balanced where one leap from the flow would not (Neal, 2001).

    References:
        Neal, "Annealed Importance Sampling", Statistics and Computing 2001.
        https://arxiv.org/abs/physics/9803008

        Cotter, Roberts, Stuart & White, "MCMC Methods for Functions: Modifying Old
        Algorithms to Make Them Faster", Statistical Science 2013.
        https://arxiv.org/abs/1202.0709
    """

    def tilt_energy(z: Tensor) -> Tensor:
        x = chunked(lambda part: flow.inverse(part)[0], z, chunk)
        e = chunked(lambda part: energy(part).double(), x, chunk)
        return e.masked_fill(~in_box(x, bounds), math.inf)

    reference = next(flow.parameters())
    shape = (n_chains, *flow.event_shape)
    z = torch.randn(shape, generator=generator).to(reference)
    e = tilt_energy(z)
    log_w = torch.zeros(n_chains, dtype=torch.float64, device=z.device)
    step, log_z, sizes = 0.5, [], []
    for previous, beta in zip((0.0, *tilts[:-1]), tilts, strict=True):
        if beta == previous:
            path = [beta]
        elif previous == 0.0:
            path = torch.linspace(0.0, beta, substeps + 1, dtype=torch.float64)[1:].tolist()
        else:
            ends = (math.log10(previous), math.log10(beta))
            path = torch.logspace(*ends, substeps + 1, dtype=torch.float64)[1:].tolist()
        for b_prev, b in zip((previous, *path[:-1]), path, strict=True):
            log_w = log_w - torch.where(e.isinf(), math.inf, (b - b_prev) * e)
            if b > 0:
                z, e, rate = _pcn_move(z, e, b, step, tilt_energy, generator)
                step = min(1.0, max(1e-3, step * math.exp(0.2 * (rate - 0.3))))
        log_z.append((torch.logsumexp(log_w, 0) - math.log(n_chains)).item())
        w = torch.exp(log_w - log_w.max())
        sizes.append((w.sum() ** 2 / w.square().sum()).item())
    return log_z, sizes


def _pcn_move(
    z: Tensor,
    e: Tensor,
    beta: float,
    step: float,
    tilt_energy: Callable[[Tensor], Tensor],
    generator: torch.Generator,
) -> tuple[Tensor, Tensor, float]:
    """One pCN move of chains ``z`` (energies ``e``) on ``N(z) exp(-β e)``: the new
    chains, their energies and the acceptance rate."""
    noise = torch.randn(z.shape, generator=generator).to(z)
    proposal = math.sqrt(1.0 - step**2) * z + step * noise
    e_new = tilt_energy(proposal)
    log_u = torch.rand(len(z), generator=generator, dtype=torch.float64).log().to(e)
    accept = log_u < (beta * (e - e_new)).nan_to_num(nan=-math.inf)
    z = torch.where(accept.view(-1, *[1] * (z.dim() - 1)), proposal, z)
    return z, torch.where(accept, e_new, e), accept.double().mean().item()
