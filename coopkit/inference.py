r"""The energy model's normalising constant, in plain PyTorch (reconstruction through
the Langevin flow is :mod:`coopkit.inversion`).

**The log-partition function** of the EBM on the box its chains live in,
:math:`\log Z = \log \int_{\rm box} e^{-E_\theta(x)} dx`, is estimated in one of two
ways. By importance sampling (:func:`log_partition`) from the defensive mixture
:math:`\pi = 0.9\, q_\alpha + 0.1\, U(\mathrm{box})`: 90% of the :math:`N` draws come
from the flow and 10% are uniform on the box, and
:math:`\hat Z = \frac1N \sum_i 1_{\rm box}(x_i)\, e^{-E_\theta(x_i)} / \pi(x_i)`; the
uniform part covers low-energy regions of the box the flow never visits. It degenerates
in high dimensions. Or by annealed importance sampling from the flow to the EBM
(:func:`ais_log_partition`).
"""

from __future__ import annotations

import copy
import dataclasses
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from coopkit.flows.base import Flow
from coopkit.samplers.base import Energy, Sampler

MIN_ESS_FRACTION = 0.05
MIN_ESS = 30


def chunked(fn: Callable[[Tensor], Tensor], x: Tensor, size: int) -> Tensor:
    """``fn`` applied to ``x`` in chunks of ``size`` rows, concatenated.

    Examples:
        >>> chunked(lambda part: part * 2, torch.arange(5.0), 2)
        tensor([0., 2., 4., 6., 8.])
    """
    return torch.cat([fn(part) for part in x.split(size)])


def in_box(x: Tensor, bounds: tuple[float, float]) -> Tensor:
    """``(n,)`` mask of the samples of ``x`` whose every entry lies in ``bounds``.

    Examples:
        >>> in_box(torch.tensor([[0.5, -1.0], [1.5, 0.0]]), (-1.0, 1.0))
        tensor([ True, False])
    """
    return ((x >= bounds[0]) & (x <= bounds[1])).flatten(1).all(dim=1)


@torch.no_grad()
def log_partition(
    energy: Energy,
    flow: Flow,
    n_samples: int,
    generator: torch.Generator,
    bounds: tuple[float, float],
    uniform_fraction: float = 0.1,
    chunk: int = 1024,
) -> PartitionEstimate:
    """Importance-sampling estimate of ``log Z`` of ``exp(-E)`` on the box ``bounds``.

    The energy model lives where its chains live: the samplers keep them in ``bounds``,
    and nothing trains the energy outside, where it may fall arbitrarily. So
    ``Z = ∫_box exp(-E(x)) dx``. The proposal is the defensive mixture
    ``π = (1 - ε) q_flow + ε U(box)`` (Hesterberg, 1995), with ``ε = uniform_fraction``
    of the samples drawn uniformly: the flow alone concentrates on the data and would
    miss low-energy regions of the box it never visits, an error the standard error
    cannot show. Weights are ``w = 1_box(x) exp(-E(x)) / π(x)``; their spread gives the
    standard error and the effective sample size (:class:`PartitionEstimate`).

    Examples:
        ``exp(-‖x‖²/2)`` in 2-D integrates to ``2π`` (the box is wide enough not to matter):

        >>> from coopkit.flows import RealNVP
        >>> flow = RealNVP((2,))
        >>> flow.initialize(torch.randn(1000, 2))
        >>> energy = lambda x: 0.5 * (x**2).sum(dim=1)
        >>> generator = torch.Generator().manual_seed(0)
        >>> estimate = log_partition(energy, flow, 4000, generator, (-10.0, 10.0))
        >>> abs(estimate.log_z - math.log(2 * math.pi)) < 0.05, estimate.standard_error < 0.05
        (True, True)
    """
    low, high = bounds
    d = math.prod(flow.event_shape)
    log_uniform = -d * math.log(high - low)
    n_uniform = round(uniform_fraction * n_samples)
    log_weights = []
    for start in range(0, n_samples, chunk):
        m = min(chunk, n_samples - start)
        x = flow.sample(m, generator=generator)
        uniform = torch.arange(start, start + m, device=x.device) < n_uniform
        if uniform.any():
            u = torch.rand((int(uniform.sum()), *flow.event_shape), generator=generator)
            x[uniform] = (low + (high - low) * u).to(x)
        log_mix = flow.log_prob(x).double()
        if uniform_fraction > 0:
            log_mix = torch.logaddexp(
                math.log1p(-uniform_fraction) + log_mix,
                torch.full_like(log_mix, math.log(uniform_fraction) + log_uniform),
            )
        log_w = -energy(x).double() - log_mix
        log_weights.append(log_w.masked_fill(~in_box(x, bounds), -math.inf))
    return weighted_estimate(torch.cat(log_weights), "importance")


@dataclass(frozen=True)
class PartitionEstimate:
    """An estimate of ``log Z`` from weighted chains.

    ``standard_error`` is ``sd(w) / (√N · mean(w))`` over the ``N`` chains' weights (the
    delta method); ``ess`` is Kish's effective sample size ``(Σw)² / Σw²``, between 1
    (one chain carries all the weight) and ``N`` (equal weights). ``method`` is
    ``"importance"`` or ``"ais"``; ``acceptance_rate`` is the mean acceptance of the
    AIS transitions (``None`` when there were none or the sampler does not report it);
    ``start`` is where the chains started: ``"flow"``, or ``"uniform"`` on the box when
    the flow put almost no mass there (:func:`ais_log_partition`).
    """

    log_z: float
    standard_error: float
    ess: float
    method: str
    acceptance_rate: float | None = None
    start: str = "flow"


def weighted_estimate(
    log_w: Tensor, method: str, acceptance_rate: float | None = None
) -> PartitionEstimate:
    """The :class:`PartitionEstimate` of ``(N,)`` log importance weights.

    Examples:
        >>> weighted_estimate(torch.zeros(4), "importance").ess
        4.0
    """
    log_w = log_w.double()
    log_z = torch.logsumexp(log_w, dim=0) - math.log(len(log_w))
    w = torch.exp(log_w - log_z)
    ess = w.sum() ** 2 / w.square().sum()
    standard_error = (w.std() / math.sqrt(len(w))).item()
    return PartitionEstimate(log_z.item(), standard_error, ess.item(), method, acceptance_rate)


def trusted(ess: float, n_samples: int) -> bool:
    """Whether an estimate of ``log Z`` from ``n_samples`` draws (or AIS chains) whose
    weights' effective sample size is ``ess`` can be trusted: at least 5% of them and at
    least 30. Below that a few draws carry the estimate, which is then biased low by
    more than its standard error says (``docs/guide/likelihood.md``).

    Examples:
        >>> trusted(300.0, 4096), trusted(100.0, 4096), trusted(29.0, 100)
        (True, False, False)
    """
    return ess >= max(MIN_ESS, MIN_ESS_FRACTION * n_samples)


def ais_log_partition(
    energy: Energy,
    flow: Flow,
    sampler: Sampler,
    n_chains: int,
    betas: Tensor,
    generator: torch.Generator,
    bounds: tuple[float, float] | None = None,
    target_accept: float | None = None,
) -> PartitionEstimate:
    r"""Annealed importance sampling estimate of :math:`\log Z = \log \int e^{-E(x)} dx`.

    Chains start from the flow, :math:`x \sim q_\alpha`, and move along the geometric
    path :math:`\log \pi_\beta(x) = (1 - \beta) \log q_\alpha(x) - \beta E(x)` through the
    temperatures ``betas`` (:math:`0 = \beta_0 < \dots < \beta_K = 1`). Before each
    transition a chain's log weight gains
    :math:`(\beta_k - \beta_{k-1}) (-E(x) - \log q_\alpha(x))`; the transition is one
    call of ``sampler`` on :math:`U_{\beta_k} = -\log \pi_{\beta_k}`. With a
    Metropolis-corrected sampler (``mala``, ``hmc``) every transition leaves its
    :math:`\pi_{\beta_k}` invariant and :math:`\hat Z` is unbiased (Neal, 2001).

    With ``bounds`` the target is :math:`e^{-E}` on that box (where coopkit's chains
    live, :func:`log_partition`). The path then starts from the flow restricted to the
    box (draws outside are rejected, and the log of the flow's mass in the box, estimated
    from the same draws, is added to the estimate and its error; if almost none fall
    inside, the path starts from the uniform distribution on the box, with a warning),
    and the chains move in unconstrained coordinates :math:`u`,
    :math:`x = c + h \tanh u` (``c``, ``h`` the box's centre and half-width), on
    :math:`U_\beta(u) = U_\beta(x(u)) - \log |\det \partial x / \partial u|`. No
    proposal leaves the box, so chains whose mass sits on its faces (pixels at the ends
    of their range) still move; the Jacobian is
    the same in both densities of the ratio and leaves the weights unchanged.

    With ``target_accept`` the sampler's step size adapts from one temperature to the
    next, :math:`\log s \mathrel{+}= 0.2\,(\bar a - a^*)` with :math:`\bar a` the
    acceptance rate of the last transition (as Wu et al., 2017, do for HMC in AIS), so a
    poorly chosen step size costs a few temperatures rather than the whole run. Each
    transition still leaves its :math:`\pi_\beta` invariant given its step size; as that
    depends on all chains' past, the estimate is consistent rather than exactly unbiased
    (a bias of order ``1 / n_chains``). The caller's sampler is not changed.

    Args:
        energy: ``(n, *event) -> (n,)``.
        flow: the start of the path; its density is normalised, so :math:`Z_0 = 1`.
        sampler: the transition, called once per temperature.
        n_chains: independent chains (the standard error comes from their spread).
        betas: ``(K + 1,)`` increasing temperatures from 0 to 1.
        generator: the source of the flow's draws and the sampler's noise.
        bounds: ``(low, high)`` box of the target's support, or ``None`` for all space.
        target_accept: acceptance rate the step size adapts toward, or ``None`` to keep
            the sampler's step size (needs a sampler that reports ``acceptance_rate``).

    References:
        Neal, "Annealed Importance Sampling", Statistics and Computing 2001.
        https://arxiv.org/abs/physics/9803008

        Wu, Burda, Salakhutdinov & Grosse, "On the Quantitative Analysis of
        Decoder-Based Generative Models", ICLR 2017. https://arxiv.org/abs/1611.04273

    Examples:
        A flow started at the standard normal, annealed to ``exp(-‖x - 1‖²/2)`` in 2-D,
        whose integral is ``2π``:

        >>> from coopkit.flows import RealNVP
        >>> from coopkit.samplers import MALASampler
        >>> flow = RealNVP((2,))
        >>> flow.initialize(torch.randn(1000, 2, generator=torch.Generator().manual_seed(0)))
        >>> energy = lambda x: 0.5 * ((x - 1) ** 2).sum(dim=1)
        >>> estimate = ais_log_partition(energy, flow, MALASampler(0.5, n_steps=1), 500,
        ...                              torch.linspace(0, 1, 51), torch.Generator().manual_seed(0))
        >>> error = abs(estimate.log_z - math.log(2 * math.pi))
        >>> error < 3 * estimate.standard_error, estimate.standard_error < 0.05
        (True, True)
    """
    betas = torch.as_tensor(betas, dtype=torch.float64)
    if betas.dim() != 1 or len(betas) < 2 or betas[0] != 0 or betas[-1] != 1:
        raise ValueError("betas must be a 1-D sequence of temperatures from 0 to 1.")
    if not bool((betas[1:] > betas[:-1]).all()):
        raise ValueError("betas must increase strictly from 0 to 1.")

    coordinates = _BoxCoordinates(bounds)
    start = _start(flow, n_chains, generator, bounds)

    def log_ratio(u: Tensor) -> Tensor:
        with torch.no_grad():
            x = coordinates.to_box(u)
            return (-energy(x) - start.log_prob(x)).double()

    sampler = copy.copy(sampler)
    u = coordinates.from_box(start.x)
    ratio = log_ratio(u)
    log_w = torch.zeros_like(ratio)
    rates = []
    for previous, beta in zip(betas[:-1].tolist(), betas[1:].tolist(), strict=True):
        log_w = log_w + (beta - previous) * ratio
        annealed = coordinates.annealed(energy, start.log_prob, beta)
        result = sampler(annealed, u, generator=generator)
        u = result.x
        ratio = log_ratio(u)
        rate = result.stats.get("acceptance_rate")
        if rate is not None:
            rates.append(rate)
        if target_accept is not None:
            if rate is None:
                raise ValueError(
                    "target_accept needs a sampler that reports its acceptance_rate "
                    f"(mala, hmc); {type(sampler).__name__} does not."
                )
            sampler.step_size *= math.exp(0.2 * (rate - target_accept))
    estimate = weighted_estimate(log_w, "ais", sum(rates) / len(rates) if rates else None)
    return dataclasses.replace(
        estimate,
        log_z=estimate.log_z + start.log_mass,
        standard_error=math.sqrt(estimate.standard_error**2 + start.log_mass_var),
        start=start.name,
    )


@dataclass
class _Start:
    """The start of an AIS path: ``(n, *event)`` draws ``x`` of the normalised density
    ``log_prob`` restricted to the box, whose mass in the box is ``exp(log_mass)``
    (estimated, with delta-method variance ``log_mass_var``); ``name`` says which."""

    x: Tensor
    log_prob: Callable[[Tensor], Tensor]
    log_mass: float
    log_mass_var: float
    name: str


def _start(
    flow: Flow,
    n: int,
    generator: torch.Generator,
    bounds: tuple[float, float] | None,
    max_rounds: int = 100,
) -> _Start:
    """The flow restricted to ``bounds`` (rejection sampling; the flow's mass in the box
    estimated from all draws), or, when fewer than ``n`` of ``max_rounds * n`` draws fall
    inside, the uniform distribution on the box, with a warning."""
    with torch.no_grad():
        x = flow.sample(n, generator=generator)
        if bounds is None:
            return _Start(x, flow.log_prob, 0.0, 0.0, "flow")
        kept, n_inside, n_drawn = [], 0, 0
        for _ in range(max_rounds):
            inside = in_box(x, bounds)
            kept.append(x[inside])
            n_inside, n_drawn = n_inside + int(inside.sum()), n_drawn + n
            if n_inside >= n:
                fraction = n_inside / n_drawn
                variance = (1 - fraction) / n_inside
                return _Start(
                    torch.cat(kept)[:n], flow.log_prob, math.log(fraction), variance, "flow"
                )
            x = flow.sample(n, generator=generator)
    warnings.warn(
        f"only {n_inside} of {n_drawn} flow draws fell inside the box {bounds} that the "
        "energy model lives on; AIS starts from the uniform distribution on the box "
        "instead, which needs more temperatures for the same error.",
        UserWarning,
        stacklevel=3,
    )
    low, high = bounds
    log_volume = math.prod(flow.event_shape) * math.log(high - low)
    uniform = low + (high - low) * torch.rand(x.shape, generator=generator, dtype=x.dtype)
    return _Start(uniform.to(x), lambda y: y.new_full((len(y),), -log_volume), 0.0, 0.0, "uniform")


class _BoxCoordinates:
    """Unconstrained coordinates ``u`` of the open box: ``x = c + h tanh(u)`` with ``c``
    and ``h`` its centre and half-width (the identity without ``bounds``)."""

    def __init__(self, bounds: tuple[float, float] | None) -> None:
        self.bounds = bounds
        if bounds is not None:
            self.centre, self.half = (bounds[0] + bounds[1]) / 2, (bounds[1] - bounds[0]) / 2

    def to_box(self, u: Tensor) -> Tensor:
        return u if self.bounds is None else self.centre + self.half * torch.tanh(u)

    def from_box(self, x: Tensor) -> Tensor:
        if self.bounds is None:
            return x
        edge = 1.0 - torch.finfo(x.dtype).eps
        return torch.atanh(((x - self.centre) / self.half).clamp(-edge, edge))

    def log_det(self, u: Tensor) -> Tensor:
        """``log |det ∂x/∂u|``, ``(n,)``: ``log h + log(1 - tanh² u)`` summed."""
        if self.bounds is None:
            return u.new_zeros(len(u))
        log_sech2 = 2.0 * (math.log(2.0) - u - torch.nn.functional.softplus(-2.0 * u))
        return (math.log(self.half) + log_sech2).flatten(1).sum(dim=1)

    def annealed(self, energy: Energy, log_start: Energy, beta: float) -> Energy:
        """``U_β(u) = β E(x) - (1 - β) log π₀(x) - log |det ∂x/∂u|`` at ``x = x(u)``."""

        def annealed(u: Tensor) -> Tensor:
            x = self.to_box(u)
            return beta * energy(x) - (1.0 - beta) * log_start(x) - self.log_det(u)

        return annealed
