r"""Conformance checks for flows, energy nets and samplers: coopkit's tests and plugins'.

Every part, built in or third-party, must meet the same bar. Three checks take the
factory a part is registered with and raise :class:`AssertionError`, naming the
failed check (in brackets) and the likely fix, on the first failure:

* :func:`check_flow` ``(factory, event_shape, **params)``: exact inverse, correct
  log-determinants, on the inputs that Langevin produces;
* :func:`check_energy` ``(factory, event_shape, **params)``: one finite energy per
  sample, differentiable twice;
* :func:`check_sampler` ``(factory, **params)``: the sampler contract and statistics.

coopkit's own suite runs them over every registered part (``tests/test_conformance.py``,
parametrised from :func:`coopkit.available`); a plugin's suite calls them on its parts:

```python
from coopkit.testing import check_energy, check_flow, check_sampler
from my_plugin import MyEnergy, MyFlow, my_sampler  # the registered factories

def test_my_flow_conforms() -> None:
    check_flow(MyFlow, (3,), hidden_features=16)  # small sizes keep it fast

def test_my_energy_conforms() -> None:
    check_energy(MyEnergy, (1, 8, 8), n_f=8)

def test_my_sampler_conforms() -> None:
    check_sampler(my_sampler, n_leapfrog=5)
```

**Flows** (:func:`check_flow`). The flow is built by ``factory(event_shape, **params)``
(torch's global random state forked and seeded: the check is reproducible and leaves
that state alone), converted to float64, initialised on a batch of 64
(:meth:`~coopkit.flows.base.Flow.initialize`, e.g. ActNorm's data-dependent start),
and every parameter is then moved by :math:`\mathcal{N}(0, 0.1^2)` noise, so that
conditioners that start at zero (identity couplings) hide nothing. Inputs come from
the flow's domain: for images (``event_shape`` of length 3) uniform in [-1, 1] with a
drawn fraction of pixels at exactly ±1, where Langevin clamps them; otherwise standard
normal times a drawn scale (tables reach flows standardised). Checked, in this order:

* *shapes*: ``forward(x) -> (z, logdet)`` with ``z`` shaped like ``x``, ``logdet``
  ``(n,)``, the input's dtype, finite; likewise ``inverse``; inputs not modified;
* *initialisation runs once*: a forward call on a batch with other statistics changes
  no parameter or buffer;
* *train/eval*: ``flow.train()`` and ``flow.eval()`` give the same outputs both ways;
* *batch independence*: each sample's latent and log-determinant alone equal those
  computed in the batch;
* *state_dict*: saved with :func:`torch.save`, loaded with ``torch.load(...,
  weights_only=True)`` into a fresh instance from the factory (another random
  initialisation), the outputs are identical;
* *sample*: ``flow.sample(n, generator)`` gives finite ``(n, *event_shape)`` samples,
  the same for the same generator seed;
* *parameter gradients*: the mean ``log_prob`` of a batch gives every parameter a
  finite, non-zero gradient;
* per point, on 5 hypothesis examples (batch size, scale, fraction of clamped pixels,
  seed; derandomised) and then *out of range* (tables: every coordinate, or one, at
  ±20 standard units; images: every pixel at -1 or 1): *round trip*
  ``inverse(forward(x)) = x`` and ``forward(inverse(z)) = z`` for base draws ``z``;
  *forward log-determinant* equal to :func:`torch.linalg.slogdet` of the autograd
  Jacobian of one sample's flattened map, *inverse log-determinant* likewise, and the
  two *cancelling*.

Tolerances, relative plus absolute, float64: :math:`10^{-7}` for round trips,
:math:`10^{-6}` for log-determinants. A Jacobian costs one backward pass per element
of a sample: keep event shapes small (``(3,)``, ``(1, 8, 8)``) and the flow's sizes
small, and the check takes a second or two on one CPU core.

**Energy nets** (:func:`check_energy`). Built the same way (seeded, parameters moved by
small noise), in float32 and float64 copies, with inputs from the same domains.
Checked on 5 hypothesis examples (batch sizes from 1) and out of range:

* *shape*: energies ``(n,)``, also for a batch of one (``.squeeze()`` would give a
  scalar); *dtype*: the input's (float32 and float64); *finite*;
* *determinism*: a second call gives the same energies (no dropout);
* *batch independence*: each sample's energy alone equals its energy in the batch;
* *input gradient*: :math:`\nabla_x E` finite and, along a random direction, equal to
  central finite differences of :math:`E` (no detached paths);
* *twice differentiable*: a Hessian-vector product exists, is finite and matches
  finite differences of :math:`\nabla_x E` (reconstruction back-propagates through
  Langevin steps, which contain :math:`\nabla_x E`);

then *parameter gradients* of the mean energy and the *state_dict* round trip, as for
flows.

**Samplers** (:func:`check_sampler`): two groups of checks.

**Contract** (:func:`check_sampler_contract`, driven by hypothesis over batch sizes,
event shapes and seeds, for float32 and float64):

* ``result.x`` has the shape, dtype and device of ``x0``; ``x0`` is not modified;
* with ``differentiable=False`` no graph is kept (``result.x.requires_grad`` is
  ``False``, ``result.x.grad_fn`` is ``None``), even when ``x0`` and the energy's
  parameters require grad, and no gradient is accumulated into those parameters;
* with ``differentiable=True`` a loss on ``result.x`` back-propagates to ``x0`` with a
  finite, non-zero gradient;
* the same ``generator`` seed gives identical chains and stats (two calls of the same
  sampler object), and torch's global random state is left untouched;
* ``stats`` is a ``dict`` of finite Python floats; a sampler with
  ``metropolis_corrected = True`` reports ``acceptance_rate`` in ``[0, 1]``.

**Statistics** (:func:`check_sampler_statistics`, fixed seeds, float64, CPU). Draws are
collected by calling the sampler with ``n_steps=1`` over and over, each call starting
where the last one stopped; the first calls are burn-in and are dropped. An expectation
:math:`\mathbb{E}[f]` estimated by the mean :math:`\bar f` of the draws passes when

.. math:: |\bar f - \mathbb{E}[f]| \le 5\,\frac{\hat\sigma_f}{\sqrt{\mathrm{ESS}_f}},

with :math:`\mathrm{ESS}_f` from :func:`coopkit.diagnostics.effective_sample_size`
(between-chain spread included, so chains that have not mixed get wide, not narrow,
error bars; an ESS below 100 fails outright).

* ``metropolis_corrected = True`` (exact samplers), at ``step_size`` 0.5 on 2000
  chains, 300 burn-in calls then 500 draws per chain: the mean and covariance of a 2-D
  Gaussian with correlation 0.8 (chains start off-centre), and the mean, second moment
  and mode weight of :math:`0.3\,\mathcal{N}(-2, 1) +
  0.7\,\mathcal{N}(2, 1)` (chains start in the lighter mode, so they must cross). The
  mode weight is checked through the responsibility
  :math:`r(x) = 0.3\,\mathcal{N}(x; -2, 1) / p(x)`, whose expectation is exactly 0.3.
* otherwise (unadjusted samplers), on :math:`\mathcal{N}(0, 1)` with 4000 chains at
  ``step_size`` 0.4 and 0.2, each run for the same Langevin time (a step of size ``s``
  lasts ``s²/2``): the variance bias must vanish as the step size shrinks. The bias
  ``b(s)`` of an Euler–Maruyama discretisation is ``k s² + o(s²)`` (unadjusted Langevin:
  :math:`1/(1 - s^2/4) - 1`, about 0.042 at 0.4 and 0.010 at 0.2), so its Richardson
  extrapolation :math:`(4\,b(s/2) - b(s))/3` to ``s = 0`` must be zero within 5
  standard errors. A sampler without noise, with mis-scaled noise (2 % too strong is
  caught) or with a bias that does not vanish fails; higher-order schemes pass.

How parameters reach the sampler: ``check_sampler(factory, **params)`` builds every
sampler as ``factory(**params)`` with ``n_steps`` overridden (3 in the contract checks, 1
per draw in the statistics) and, in the statistics, ``step_size`` overridden as above.
So the factory must accept ``step_size`` and ``n_steps``; everything else in ``params``
is passed unchanged. Pass what turns the sampler into a sampler of ``exp(-E)`` (for
``langevin``: ``noise_scale=1.0, max_change=None``), and leave step-size adaptation off
(each call would adapt anew). The whole check takes a few seconds on one CPU core for a
sampler that costs one gradient per step.

Example:
    >>> from coopkit.samplers import MALASampler
    >>> check_sampler_contract(MALASampler)
"""

from __future__ import annotations

import copy
import io
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from coopkit.diagnostics import effective_sample_size
from coopkit.flows.base import Flow
from coopkit.samplers.base import Energy, Sampler, SampleResult

try:
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import strategies as st
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "coopkit.testing needs hypothesis; install it with `pip install coopkit[test]`."
    ) from exc

__all__ = [
    "check_energy",
    "check_flow",
    "check_sampler",
    "check_sampler_contract",
    "check_sampler_statistics",
    "jacobian_logdet",
]

SamplerFactory = Callable[..., Sampler]

N_CHAINS = 2000
Z_SCORE = 5.0
MIN_ESS = 100.0
CORRECTED_STEP_SIZE = 0.5
CORRECTED_BURN_IN = 300
CORRECTED_DRAWS = 500
UNADJUSTED_N_CHAINS = 4000
UNADJUSTED_STEP_SIZES = (0.4, 0.2)
BURN_IN_TIME = 8.0
SAMPLING_TIME = 32.0


def check_sampler(factory: SamplerFactory, **params: Any) -> None:
    """Check the sampler contract and the sampler's statistics on known targets.

    Args:
        factory: builds the sampler, ``factory(**params) -> Sampler`` (the factory
            registered with coopkit, or the sampler class).
        params: parameters passed to every sampler built; ``n_steps`` and, for the
            statistics, ``step_size`` are overridden (see the module's documentation).

    Raises:
        AssertionError: naming the failed check.
    """
    check_sampler_contract(factory, **params)
    check_sampler_statistics(factory, **params)


def _require(condition: object, message: str) -> None:
    """Raise :class:`AssertionError` with ``message`` unless ``condition`` (works under -O)."""
    if not condition:
        raise AssertionError(message)


def _name(factory: SamplerFactory) -> str:
    return getattr(factory, "__qualname__", None) or repr(factory)


def _build(factory: SamplerFactory, params: dict[str, Any], **overrides: Any) -> Sampler:
    merged = {**params, **overrides}
    try:
        sampler = factory(**merged)
    except TypeError as exc:
        raise AssertionError(
            f"{_name(factory)}(**{merged!r}) failed ({exc}); a sampler factory must accept "
            "step_size and n_steps as keyword parameters."
        ) from exc
    if not callable(sampler):
        raise AssertionError(f"{_name(factory)} built {sampler!r}, which is not callable.")
    return sampler


def _call(
    sampler: Sampler, energy: Energy, x0: Tensor, seed: int, differentiable: bool = False
) -> SampleResult:
    generator = torch.Generator(device=x0.device).manual_seed(seed)
    result = sampler(energy, x0, generator=generator, differentiable=differentiable)
    if not isinstance(result, SampleResult):
        raise AssertionError(f"the sampler returned {type(result).__name__}, not a SampleResult.")
    return result


# ---------------------------------------------------------------- contract


class _Quadratic(torch.nn.Module):
    """``E(x) = θ · ½‖x‖²`` over all event dimensions, with a parameter ``θ``."""

    def __init__(self, dtype: torch.dtype) -> None:
        super().__init__()
        self.theta = torch.nn.Parameter(torch.ones((), dtype=dtype))

    def forward(self, x: Tensor) -> Tensor:
        return self.theta * 0.5 * x.flatten(1).square().sum(dim=1)


def _check_stats(stats: object, corrected: bool) -> None:
    _require(isinstance(stats, dict), f"stats must be a dict; got {type(stats).__name__}.")
    for key, value in stats.items():
        _require(isinstance(key, str), f"stats keys must be strings; got {key!r}.")
        _require(
            isinstance(value, float) and math.isfinite(value),
            f"stats[{key!r}] must be a finite Python float (use .item()); got {value!r}.",
        )
    if corrected:
        rate = stats.get("acceptance_rate")
        _require(
            rate is not None and 0.0 <= rate <= 1.0,
            "a Metropolis-corrected sampler must report stats['acceptance_rate'] in [0, 1]; "
            f"got {rate!r}.",
        )


def _check_one_contract(
    factory: SamplerFactory, params: dict[str, Any], shape: tuple[int, ...], seed: int
) -> None:
    for dtype in (torch.float32, torch.float64):
        sampler = _build(factory, params, n_steps=3)
        corrected = bool(getattr(sampler, "metropolis_corrected", False))
        energy = _Quadratic(dtype)
        start = torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)
        where = f"(x0 shape {tuple(shape)}, {dtype}, seed {seed})"

        x0 = start.clone().requires_grad_(True)
        global_state = torch.get_rng_state()
        first = _call(sampler, energy, x0, seed)
        _require(
            torch.equal(torch.get_rng_state(), global_state),
            f"the sampler changed torch's global random state {where}; draw all randomness "
            "from the `generator` argument.",
        )
        _require(first.x.shape == x0.shape, f"result shape {tuple(first.x.shape)} != x0's {where}.")
        _require(first.x.dtype == dtype, f"result dtype {first.x.dtype} != x0's {where}.")
        _require(first.x.device == x0.device, f"result device {first.x.device} != x0's {where}.")
        _require(torch.equal(x0.detach(), start), f"the sampler modified x0 in place {where}.")
        _require(
            not first.x.requires_grad and first.x.grad_fn is None,
            f"with differentiable=False the result keeps an autograd graph {where}; detach "
            "the states at every step.",
        )
        _require(
            energy.theta.grad is None and x0.grad is None,
            f"the sampler accumulated gradients into .grad {where}; use torch.autograd.grad "
            "with respect to the states only.",
        )
        _check_stats(first.stats, corrected)

        second = _call(sampler, energy, start.clone(), seed)
        _require(
            torch.equal(first.x, second.x) and first.stats == second.stats,
            f"two calls with the same generator seed gave different chains or stats {where}; "
            "draw all randomness from `generator` and keep no state between calls.",
        )

        leaf = start.clone().requires_grad_(True)
        kept = _call(sampler, energy, leaf, seed, differentiable=True)
        _require(
            kept.x.requires_grad,
            f"with differentiable=True the result does not depend on x0 through autograd {where}.",
        )
        (gradient,) = torch.autograd.grad(kept.x.square().sum(), leaf)
        _require(
            torch.isfinite(gradient).all() and gradient.abs().sum() > 0,
            f"with differentiable=True the gradient of a loss on the result with respect to "
            f"x0 is zero or not finite {where}.",
        )


def check_sampler_contract(factory: SamplerFactory, **params: Any) -> None:
    """Check shapes, dtypes, graph handling, reproducibility and stats (see the module).

    Draws 10 batch/event shapes and seeds with hypothesis (derandomised, no shrinking:
    the message names the failing shape, dtype and seed), each in float32 and float64,
    with ``n_steps=3``.
    """
    shapes = st.tuples(st.integers(1, 5), st.lists(st.integers(1, 3), min_size=1, max_size=3))

    @settings(
        max_examples=10,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(shape=shapes.map(lambda drawn: (drawn[0], *drawn[1])), seed=st.integers(0, 2**16))
    def run(shape: tuple[int, ...], seed: int) -> None:
        _check_one_contract(factory, params, shape, seed)

    run()


# ---------------------------------------------------------------- statistics


@dataclass(frozen=True)
class _Target:
    """A known distribution: its energy, a start for the chains, and expectations to check."""

    name: str
    energy: Energy
    start: Tensor
    functions: dict[str, Callable[[Tensor], Tensor]]
    truths: dict[str, float]


def _gaussian_2d() -> _Target:
    mean = torch.tensor([0.5, -0.5], dtype=torch.float64)
    cov = torch.tensor([[1.0, 0.8], [0.8, 1.0]], dtype=torch.float64)
    precision = torch.linalg.inv(cov)

    def energy(x: Tensor) -> Tensor:
        centred = x - mean
        return 0.5 * ((centred @ precision) * centred).sum(dim=1)

    generator = torch.Generator().manual_seed(11)
    start = torch.tensor([-1.5, 1.5], dtype=torch.float64) + 0.3 * torch.randn(
        N_CHAINS, 2, generator=generator, dtype=torch.float64
    )
    functions = {
        "mean x1": lambda x: x[..., 0],
        "mean x2": lambda x: x[..., 1],
        "var x1": lambda x: (x[..., 0] - mean[0]) ** 2,
        "var x2": lambda x: (x[..., 1] - mean[1]) ** 2,
        "cov x1 x2": lambda x: (x[..., 0] - mean[0]) * (x[..., 1] - mean[1]),
    }
    truths = {"mean x1": 0.5, "mean x2": -0.5, "var x1": 1.0, "var x2": 1.0, "cov x1 x2": 0.8}
    return _Target("2-D Gaussian (correlation 0.8)", energy, start, functions, truths)


def _mixture_1d() -> _Target:
    log_weights = torch.tensor([0.3, 0.7], dtype=torch.float64).log()
    modes = torch.tensor([-2.0, 2.0], dtype=torch.float64)

    def log_joint(x: Tensor) -> Tensor:
        return log_weights - 0.5 * (x - modes) ** 2

    def energy(x: Tensor) -> Tensor:
        return -torch.logsumexp(log_joint(x), dim=-1)

    generator = torch.Generator().manual_seed(12)
    start = -2.0 + 0.3 * torch.randn(N_CHAINS, 1, generator=generator, dtype=torch.float64)
    functions = {
        "mean": lambda x: x[..., 0],
        "second moment": lambda x: x[..., 0] ** 2,
        "weight of the mode at -2": lambda x: torch.softmax(log_joint(x), dim=-1)[..., 0],
    }
    truths = {"mean": 0.8, "second moment": 5.0, "weight of the mode at -2": 0.3}
    return _Target("mixture 0.3 N(-2, 1) + 0.7 N(2, 1)", energy, start, functions, truths)


def _standard_normal(n_chains: int) -> _Target:
    def energy(x: Tensor) -> Tensor:
        return 0.5 * x.square().sum(dim=1)

    generator = torch.Generator().manual_seed(13)
    start = 3.0 + 0.1 * torch.randn(n_chains, 1, generator=generator, dtype=torch.float64)
    functions = {"variance": lambda x: x[..., 0] ** 2}
    return _Target("N(0, 1)", energy, start, functions, {"variance": 1.0})


def _draws(sampler: Sampler, target: _Target, n_burn: int, n_draws: int, seed: int) -> Tensor:
    """States ``(chains, draws, d)`` after each of ``n_draws`` calls that follow ``n_burn``."""
    generator = torch.Generator().manual_seed(seed)
    x = target.start.clone()
    kept = []
    for i in range(n_burn + n_draws):
        x = sampler(target.energy, x, generator=generator).x
        if i >= n_burn:
            kept.append(x.detach())
    return torch.stack(kept, dim=1)


@dataclass(frozen=True)
class _Estimate:
    """An estimated expectation with its ESS-based standard error."""

    value: float
    se: float
    ess: float


def _estimate(values: Tensor, what: str) -> _Estimate:
    series = values.numpy()
    if not np.isfinite(series).all():
        raise AssertionError(f"{what}: the chains produced NaN or infinite states.")
    ess = effective_sample_size(series)
    if not ess >= MIN_ESS:
        raise AssertionError(
            f"{what}: effective sample size {ess:.3g} < {MIN_ESS:g} from "
            f"{series.size} draws; the chains barely move (every proposal rejected, or no noise)."
        )
    return _Estimate(float(series.mean()), float(series.std()) / math.sqrt(ess), float(ess))


def _check_expectations(sampler: Sampler, target: _Target, label: str) -> None:
    draws = _draws(sampler, target, CORRECTED_BURN_IN, CORRECTED_DRAWS, seed=1)
    for name, function in target.functions.items():
        what = f"{label} on {target.name}, {name}"
        estimate = _estimate(function(draws), what)
        truth = target.truths[name]
        error = abs(estimate.value - truth)
        _require(
            error <= Z_SCORE * estimate.se,
            f"{what}: estimate {estimate.value:.4f}, truth {truth:.4f}, error {error:.4f} > "
            f"{Z_SCORE:g} standard errors ({estimate.se:.4f}, ESS {estimate.ess:.0f}). "
            "The chains do not sample exp(-E): check the Metropolis-Hastings ratio "
            "(energies, proposal densities in both directions), the random draws, and that "
            "the chains move.",
        )


def _variance_bias(
    factory: SamplerFactory, params: dict[str, Any], step_size: float, label: str, seed: int
) -> _Estimate:
    """``E[x²] - 1`` on N(0, 1) at ``step_size``, run for fixed Langevin times (``s²/2`` a step)."""
    sampler = _build(factory, params, step_size=step_size, n_steps=1)
    step_time = step_size**2 / 2
    target = _standard_normal(UNADJUSTED_N_CHAINS)
    draws = _draws(
        sampler,
        target,
        n_burn=math.ceil(BURN_IN_TIME / step_time),
        n_draws=math.ceil(SAMPLING_TIME / step_time),
        seed=seed,
    )
    what = f"{label} on {target.name} at step_size {step_size:g}, variance"
    estimate = _estimate(target.functions["variance"](draws), what)
    return _Estimate(estimate.value - 1.0, estimate.se, estimate.ess)


def _check_unadjusted(factory: SamplerFactory, params: dict[str, Any], label: str) -> None:
    large, small = UNADJUSTED_STEP_SIZES
    bias_large = _variance_bias(factory, params, large, label, seed=2)
    bias_small = _variance_bias(factory, params, small, label, seed=3)
    # Richardson extrapolation of bias(s) = a + k s^2 + o(s^2) to s = 0.
    ratio = (large / small) ** 2
    at_zero = (ratio * bias_small.value - bias_large.value) / (ratio - 1)
    se_at_zero = math.hypot(ratio * bias_small.se, bias_large.se) / (ratio - 1)
    _require(
        abs(at_zero) <= Z_SCORE * se_at_zero,
        f"{label} (unadjusted) on N(0, 1): the variance bias does not vanish as the step size "
        f"shrinks: {bias_large.value:+.4f} at step_size {large:g}, {bias_small.value:+.4f} at "
        f"{small:g}, extrapolated to step size 0: {at_zero:+.4f} > {Z_SCORE:g} standard "
        f"errors ({se_at_zero:.4f}). Is the sampler's noise on (langevin: noise_scale=1.0, "
        "max_change=None)?",
    )


def check_sampler_statistics(factory: SamplerFactory, **params: Any) -> None:
    """Check the stationary distribution on known targets (see the module).

    Metropolis-corrected samplers (``metropolis_corrected = True``) must match the
    targets' expectations within 5 ESS-based standard errors; unadjusted ones must show
    a variance bias that vanishes as the step size shrinks.
    """
    label = _name(factory)
    probe = _build(factory, params, n_steps=1)
    if getattr(probe, "metropolis_corrected", False):
        sampler = _build(factory, params, step_size=CORRECTED_STEP_SIZE, n_steps=1)
        for target in (_gaussian_2d(), _mixture_1d()):
            _check_expectations(sampler, target, label)
    else:
        _check_unadjusted(factory, params, label)


# ---------------------------------------------------------------- flows and energy nets

PartFactory = Callable[..., torch.nn.Module]

PART_EXAMPLES = 5
PERTURBATION = 0.1
ROUND_TRIP_TOL = 1e-7
LOGDET_TOL = 1e-6
FAR_OUT = 20.0
INIT_BATCH = 64
FD_STEP = 1e-6
FD_TOL = 1e-6


def _part_settings() -> settings:
    return settings(
        max_examples=PART_EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=[HealthCheck.too_slow],
        report_multiple_bugs=False,
    )


def _is_image(event_shape: tuple[int, ...]) -> bool:
    return len(event_shape) == 3


def _draw(
    event_shape: tuple[int, ...],
    n: int,
    generator: torch.Generator,
    scale: float = 1.0,
    clamped: float = 0.0,
) -> Tensor:
    """``n`` float64 inputs from the domain: images uniform in [-1, 1] with a fraction
    ``clamped`` of pixels at exactly ±1; anything else ``scale`` times standard normal."""
    shape = (n, *event_shape)
    if not _is_image(event_shape):
        return scale * torch.randn(shape, generator=generator, dtype=torch.float64)
    x = 2 * torch.rand(shape, generator=generator, dtype=torch.float64) - 1
    at_edge = torch.rand(shape, generator=generator, dtype=torch.float64) < clamped
    return torch.where(at_edge, torch.where(x < 0, -1.0, 1.0).to(x.dtype), x)


def _far_out(event_shape: tuple[int, ...], generator: torch.Generator) -> dict[str, Tensor]:
    """Named batches of inputs where Langevin takes samples; the first row is the case."""
    signs = torch.where(torch.rand((3, *event_shape), generator=generator) < 0.5, -1.0, 1.0)
    signs = signs.to(torch.float64)
    if _is_image(event_shape):
        return {
            "every pixel at -1 or 1 (where Langevin clamps them)": signs,
            "every pixel at 1": torch.ones_like(signs),
            "every pixel at -1": -torch.ones_like(signs),
        }
    one = _draw(event_shape, 3, generator)
    one.view(3, -1)[:, 0] = FAR_OUT * signs.view(3, -1)[:, 0]
    return {
        f"every coordinate at ±{FAR_OUT:g} standard units": FAR_OUT * signs,
        f"one coordinate at ±{FAR_OUT:g} standard units": one,
    }


@torch.no_grad()
def _perturb(module: torch.nn.Module, generator: torch.Generator) -> None:
    """Move every parameter by ``N(0, PERTURBATION²)`` noise (zero-initialised layers too)."""
    for param in module.parameters():
        param.add_(PERTURBATION * torch.randn(param.shape, generator=generator, dtype=param.dtype))


def _build_part(
    factory: PartFactory, event_shape: tuple[int, ...], params: dict[str, Any], seed: int
) -> torch.nn.Module:
    """``factory(event_shape, **params)`` with torch's global generator seeded (the caller
    has forked it), as a float64 module."""
    torch.manual_seed(seed)
    try:
        part = factory(event_shape, **params)
    except TypeError as exc:
        raise AssertionError(
            f"{_name(factory)}({event_shape!r}, **{params!r}) failed ({exc}); a flow or "
            "energy factory takes event_shape first, then keyword parameters."
        ) from exc
    _require(
        isinstance(part, torch.nn.Module),
        f"{_name(factory)} built {type(part).__name__}, not a torch.nn.Module.",
    )
    return part.double()


def _close(actual: Tensor, expected: Tensor, tol: float) -> bool:
    """``|actual - expected| <= tol (1 + |expected|)`` everywhere, and both finite."""
    ok = (actual - expected).abs() <= tol * (1 + expected.abs())
    return bool(ok.all() and torch.isfinite(actual).all())


def _error(actual: Tensor, expected: Tensor) -> float:
    return ((actual - expected).abs() / (1 + expected.abs())).max().item()


def _check_state_dict(
    part: torch.nn.Module,
    rebuild: Callable[[], torch.nn.Module],
    outputs: Callable[[torch.nn.Module], list[Tensor]],
    label: str,
) -> None:
    """Save ``part.state_dict()``, load it into ``rebuild()``, compare ``outputs``."""
    buffer = io.BytesIO()
    torch.save(part.state_dict(), buffer)
    buffer.seek(0)
    try:
        state = torch.load(buffer, weights_only=True)
    except Exception as exc:
        raise AssertionError(
            f"{label} [state_dict]: torch.load(weights_only=True) refuses the saved "
            f"state_dict ({exc}); keep only tensors in parameters and buffers."
        ) from exc
    fresh = rebuild()
    try:
        fresh.load_state_dict(state)
    except RuntimeError as exc:
        raise AssertionError(
            f"{label} [state_dict]: a fresh instance from the factory cannot load the "
            f"state_dict ({exc}); build the same parameters and buffers from the same "
            "arguments, whatever the data or the random state."
        ) from exc
    for name, (loaded, original) in enumerate(zip(outputs(fresh), outputs(part), strict=True)):
        _require(
            _close(loaded, original, 1e-12),
            f"{label} [state_dict]: after save and load into a fresh instance, output {name} "
            f"differs (error {_error(loaded, original):.3g}). Keep all state that the outputs "
            "depend on (e.g. an 'initialized' flag of a data-dependent initialisation) in "
            "parameters or persistent buffers, not in Python attributes.",
        )


def _check_parameter_gradients(part: torch.nn.Module, loss: Tensor, label: str, what: str) -> None:
    """Every trainable parameter of ``part`` gets a finite, non-zero gradient from ``loss``."""
    trainable = [(name, p) for name, p in part.named_parameters() if p.requires_grad]
    if not trainable:
        return
    part.zero_grad(set_to_none=True)
    loss.backward()
    grads = {name: p.grad for name, p in trainable}
    part.zero_grad(set_to_none=True)
    broken = [name for name, g in grads.items() if g is not None and not torch.isfinite(g).all()]
    _require(not broken, f"{label} [parameter gradients]: non-finite gradients in {broken}.")
    missing = [name for name, g in grads.items() if g is None]
    zero = [name for name, g in grads.items() if g is not None and not g.abs().sum() > 0]
    _require(
        not missing and not zero,
        f"{label} [parameter gradients]: {what} gives no gradient to {missing + zero} (None: "
        f"{missing}, all zero: {zero}). Every trainable parameter must influence the output: "
        "remove unused parameters, do not detach or compute under torch.no_grad, and "
        "register constants as buffers (or set requires_grad=False).",
    )


def jacobian_logdet(function: Callable[[Tensor], tuple[Tensor, Tensor]], x: Tensor) -> Tensor:
    """``log|det J|`` of ``function``'s first output at each sample of ``x``, ``(n,)``.

    The reference a flow's own log-determinant is checked against: ``slogdet`` of the
    Jacobian that autograd computes, one sample at a time (``function`` maps a batch
    ``(1, *event)`` to ``(output, logdet)``, as a flow's ``forward`` and ``inverse`` do).

    Example:
        >>> from coopkit.flows import ActNorm
        >>> norm = ActNorm(2).double()
        >>> x = torch.randn(5, 2, dtype=torch.float64)
        >>> bool(torch.allclose(jacobian_logdet(norm, x), norm(x)[1]))
        True
    """

    def logdet(point: Tensor) -> Tensor:
        def flat(v: Tensor) -> Tensor:
            return function(v.view_as(point))[0].reshape(-1)

        jacobian = torch.autograd.functional.jacobian(flat, point.reshape(-1))
        return torch.linalg.slogdet(jacobian).logabsdet

    return torch.stack([logdet(point) for point in x.split(1)])


def _call_flow(
    function: Callable[[Tensor], tuple[Tensor, Tensor]], x: Tensor, direction: str, where: str
) -> tuple[Tensor, Tensor]:
    before = x.clone()
    out = function(x)
    _require(
        isinstance(out, tuple) and len(out) == 2,
        f"{where} [shapes]: {direction} must return a pair (values, logdet); got "
        f"{type(out).__name__}.",
    )
    y, logdet = out
    _require(
        tuple(y.shape) == tuple(x.shape) and tuple(logdet.shape) == (x.shape[0],),
        f"{where} [shapes]: {direction} of a batch {tuple(x.shape)} returned values "
        f"{tuple(y.shape)} and logdet {tuple(logdet.shape)}; the values must keep the "
        f"input's shape and logdet be ({x.shape[0]},): sum each sample's log-determinant "
        "over all its elements.",
    )
    _require(
        y.dtype == x.dtype and logdet.dtype == x.dtype,
        f"{where} [shapes]: {direction} returned {y.dtype} and {logdet.dtype} for "
        f"{x.dtype} input; compute in the input's dtype.",
    )
    _require(torch.equal(x, before), f"{where}: {direction} modified its input in place.")
    _require(
        bool(torch.isfinite(y).all() and torch.isfinite(logdet).all()),
        f"{where} [finite]: {direction} returned NaN or infinite values or log-determinants; "
        "bound the scales (e.g. s = B tanh(s / B)) and use tails that stay invertible "
        "(e.g. linear tails outside a spline's interval).",
    )
    return y, logdet


def _check_flow_points(flow: Flow, x: Tensor, z_draw: Tensor, where: str) -> None:
    """Shapes, round trips both ways, log-determinants against the Jacobian, cancellation."""
    z, logdet = _call_flow(flow, x, "forward", where)
    back, inverse_logdet = _call_flow(flow.inverse, z, "inverse", where)
    _require(
        _close(back, x, ROUND_TRIP_TOL),
        f"{where} [round trip]: inverse(forward(x)) differs from x (relative error "
        f"{_error(back, x):.3g} > {ROUND_TRIP_TOL:g}); inverse must undo forward exactly.",
    )
    x_drawn, _ = _call_flow(flow.inverse, z_draw, "inverse", where)
    z_back, _ = _call_flow(flow, x_drawn, "forward", where)
    _require(
        _close(z_back, z_draw, ROUND_TRIP_TOL),
        f"{where} [round trip]: forward(inverse(z)) differs from z for z from the base "
        f"(relative error {_error(z_back, z_draw):.3g} > {ROUND_TRIP_TOL:g}); inverse must be "
        "the exact inverse of forward on the whole latent space.",
    )
    expected = jacobian_logdet(flow, x[:1])
    _require(
        _close(logdet[:1], expected, LOGDET_TOL),
        f"{where} [forward log-determinant]: forward's logdet {logdet[0].item():.6g} but "
        f"log|det| of the autograd Jacobian is {expected.item():.6g}. logdet must be "
        "log|det dz/dx| of the very map computed: check signs, factors, and that every "
        "element (pixels x channels) is counted once.",
    )
    expected = jacobian_logdet(flow.inverse, z[:1])
    _require(
        _close(inverse_logdet[:1], expected, LOGDET_TOL),
        f"{where} [inverse log-determinant]: inverse's logdet {inverse_logdet[0].item():.6g} "
        f"but log|det| of the autograd Jacobian is {expected.item():.6g}; inverse must return "
        "log|det dx/dz|.",
    )
    _require(
        _close(logdet + inverse_logdet, torch.zeros_like(logdet), LOGDET_TOL),
        f"{where} [log-determinants cancel]: forward and inverse log-determinants do not "
        f"cancel (largest sum {(logdet + inverse_logdet).abs().max().item():.3g}); inverse "
        "must return minus the forward log-determinant at the corresponding point.",
    )


def _check_flow_structure(
    flow: Flow, factory: PartFactory, params: dict[str, Any], x: Tensor, label: str
) -> None:
    """Shapes, no re-initialisation, train/eval, batch independence, state_dict, sample."""
    z, _ = _call_flow(flow, x, "forward", label)
    _call_flow(flow.inverse, z, "inverse", label)
    before = {name: t.clone() for name, t in flow.state_dict().items()}
    shifted = 0.5 * x if _is_image(flow.event_shape) else 3 * x + 2
    z_train, logdet_train = flow(shifted)
    changed = [
        name for name, t in flow.state_dict().items() if not torch.equal(t, before.get(name, t))
    ]
    _require(
        not changed,
        f"{label} [initialisation runs once]: a forward call after initialize changed "
        f"{changed}; the data-dependent initialisation must run only on the first call "
        "(e.g. guarded by an 'initialized' buffer), never on later batches.",
    )
    flow.eval()
    try:
        z_eval, logdet_eval = flow(shifted)
        x_eval, _ = flow.inverse(z_eval)
    finally:
        flow.train()
    x_train, _ = flow.inverse(z_eval)
    _require(
        _close(z_eval, z_train, 1e-12)
        and _close(logdet_eval, logdet_train, 1e-12)
        and _close(x_eval, x_train, 1e-12),
        f"{label} [train/eval]: forward or inverse differ between flow.train() and "
        "flow.eval() after initialisation; a flow must be one fixed bijection (no dropout, "
        "no batch statistics).",
    )
    z_all, logdet_all = flow(x)
    for i in range(x.shape[0]):
        z_alone, logdet_alone = flow(x[i : i + 1])
        _require(
            _close(z_alone, z_all[i : i + 1], 1e-10)
            and _close(logdet_alone, logdet_all[i : i + 1], 1e-10),
            f"{label} [batch independence]: sample {i}'s latent or log-determinant changes "
            "with the rest of the batch; each sample must be mapped on its own (no batch "
            "statistics after initialisation).",
        )

    def outputs(part: torch.nn.Module) -> list[Tensor]:
        z, logdet = part(x)
        back, inverse_logdet = part.inverse(z)
        return [z, logdet, back, inverse_logdet]

    event_shape = flow.event_shape
    _check_state_dict(
        flow, lambda: _build_part(factory, event_shape, params, seed=1), outputs, label
    )
    first, second = (flow.sample(3, torch.Generator().manual_seed(0)) for _ in range(2))
    _require(
        tuple(first.shape) == (3, *event_shape)
        and bool(torch.isfinite(first).all())
        and torch.equal(first, second),
        f"{label} [sample]: flow.sample(3, generator) gave shape {tuple(first.shape)}, "
        "non-finite or irreproducible samples; it must return (n, *event_shape) finite "
        "samples, all randomness drawn from the generator.",
    )


def check_flow(factory: PartFactory, event_shape: tuple[int, ...], **params: Any) -> None:
    """Check a flow factory against the flow contract (see the module's documentation).

    Args:
        factory: builds the flow, ``factory(event_shape, **params) -> Flow`` (the factory
            registered with coopkit, or the flow class).
        event_shape: the shape of one sample, e.g. ``(3,)`` for a table or ``(1, 8, 8)``
            for images; keep it small (the Jacobian costs a backward pass per element).
        params: passed to the factory; small sizes keep the check fast.

    Raises:
        AssertionError: naming the failed check and the likely fix.

    Example:
        >>> from coopkit.flows import RealNVP
        >>> check_flow(RealNVP, (3,), n_layers=2, hidden_features=8)
    """
    event_shape = tuple(int(size) for size in event_shape)
    label = f"check_flow({_name(factory)}, {event_shape})"
    with torch.random.fork_rng(devices=[]):
        flow = _build_part(factory, event_shape, params, seed=0)
        _require(
            isinstance(flow, Flow),
            f"{label}: the factory built {type(flow).__name__}; a flow must subclass "
            "coopkit.flows.Flow (which provides log_prob, sample and initialize).",
        )
        _require(
            tuple(flow.event_shape) == event_shape,
            f"{label}: the flow's event_shape is {flow.event_shape}; it must be the "
            "event_shape the factory was given.",
        )
        generator = torch.Generator().manual_seed(0)
        flow.initialize(_draw(event_shape, INIT_BATCH, generator))
        _perturb(flow, generator)
        flow.train()
        _check_flow_structure(flow, factory, params, _draw(event_shape, 4, generator), label)
        _check_parameter_gradients(
            flow, -flow.log_prob(_draw(event_shape, 32, generator)).mean(), label, "log_prob"
        )

        @_part_settings()
        @given(
            n=st.integers(1, 4),
            scale=st.floats(0.25, 3.0),
            clamped=st.floats(0.0, 1.0),
            seed=st.integers(0, 2**16),
        )
        def run(n: int, scale: float, clamped: float, seed: int) -> None:
            draws = torch.Generator().manual_seed(seed)
            x = _draw(event_shape, n, draws, scale, clamped)
            z = scale * torch.randn(x.shape, generator=draws, dtype=torch.float64)
            where = f"{label} (batch of {n}, scale {scale:.3g}, seed {seed})"
            _check_flow_points(flow, x, z, where)

        run()
        for case, x in _far_out(event_shape, generator).items():
            z = torch.randn(x.shape, generator=generator, dtype=torch.float64)
            _check_flow_points(flow, x, z, f"{label} (out of range: {case})")


def _energies(energy: torch.nn.Module, x: Tensor, where: str) -> Tensor:
    before = x.clone()
    out = energy(x)
    _require(
        isinstance(out, Tensor) and tuple(out.shape) == (x.shape[0],),
        f"{where} [shape]: a batch {tuple(x.shape)} gave "
        f"{tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__}; an energy "
        f"net returns one energy per sample, shape ({x.shape[0]},) (squeeze only the last "
        "dimension, so that a batch of one stays (1,)).",
    )
    _require(
        out.dtype == x.dtype,
        f"{where} [dtype]: {x.dtype} input gave {out.dtype} energies; compute in the input's "
        "dtype (follow .float() / .double() of the module).",
    )
    _require(torch.equal(x, before), f"{where}: the energy net modified its input in place.")
    _require(bool(torch.isfinite(out).all()), f"{where} [finite]: NaN or infinite energies.")
    return out


def _check_energy_points(
    energy32: torch.nn.Module, energy: torch.nn.Module, x: Tensor, v: Tensor, where: str
) -> None:
    """Shape, dtype, determinism, batch independence, gradient and Hessian-vector product."""
    _energies(energy32, x.float(), where)
    leaf = x.clone().requires_grad_(True)
    values = _energies(energy, leaf, where)
    _require(
        values.requires_grad,
        f"{where} [input gradient]: the energies do not depend on x through autograd; "
        "Langevin needs grad_x E (no torch.no_grad, .detach() or numpy in the forward).",
    )
    _require(
        torch.equal(values, _energies(energy, x, where)),
        f"{where} [determinism]: two calls on the same input gave different energies; the "
        "forward must not be random (no dropout).",
    )
    for i in range(x.shape[0]):
        alone = _energies(energy, x[i : i + 1], where)
        _require(
            _close(alone, values[i : i + 1].detach(), 1e-10),
            f"{where} [batch independence]: sample {i}'s energy changes with the rest of the "
            "batch; compute each energy from its own sample (no batch norm, no batch means).",
        )
    (gradient,) = torch.autograd.grad(values.sum(), leaf, create_graph=True)
    _require(
        bool(torch.isfinite(gradient).all()),
        f"{where} [input gradient]: grad_x E has NaN or infinite entries.",
    )
    with torch.no_grad():
        plus = _energies(energy, x + FD_STEP * v, where)
        minus = _energies(energy, x - FD_STEP * v, where)
    slope = (gradient * v).flatten(1).sum(dim=1)
    difference = (plus - minus) / (2 * FD_STEP)
    _require(
        bool(((difference - slope).abs() <= FD_TOL * (1 + slope.abs() + values.abs())).all()),
        f"{where} [input gradient]: grad_x E along a direction {slope.detach().tolist()} "
        f"differs from central finite differences of E {difference.tolist()}; part of the "
        "energy is detached from x (.detach(), torch.no_grad, a .item() or numpy round trip).",
    )
    if not gradient.requires_grad:
        raise AssertionError(
            f"{where} [twice differentiable]: grad_x E has no graph of its own; the energy "
            "must be differentiable twice in x (reconstruction back-propagates through "
            "Langevin steps, which contain grad_x E): use smooth activations and no "
            "once-differentiable custom functions."
        )
    try:
        (hvp,) = torch.autograd.grad((gradient * v).sum(), leaf, allow_unused=True)
    except RuntimeError as exc:
        raise AssertionError(
            f"{where} [twice differentiable]: the Hessian-vector product failed ({exc}); the "
            "energy must be differentiable twice in x (reconstruction back-propagates "
            "through Langevin steps, which contain grad_x E)."
        ) from exc
    _require(
        hvp is not None and bool(torch.isfinite(hvp).all()),
        f"{where} [twice differentiable]: the Hessian-vector product is missing or not finite.",
    )
    plus, minus = (_input_gradient(energy, x + sign * FD_STEP * v, where) for sign in (1, -1))
    difference = (plus - minus) / (2 * FD_STEP)
    _require(
        bool(((difference - hvp).abs() <= FD_TOL * (1 + hvp.abs() + gradient.abs())).all()),
        f"{where} [twice differentiable]: the Hessian-vector product differs from central "
        f"finite differences of grad_x E (largest gap {(difference - hvp).abs().max().item():.3g});"
        " part of grad_x E is not differentiable through autograd (a once_differentiable "
        "custom function, a detach in a backward), or the energy is not smooth (use smooth "
        "activations such as SiLU or softplus).",
    )


def _input_gradient(energy: torch.nn.Module, x: Tensor, where: str) -> Tensor:
    leaf = x.clone().requires_grad_(True)
    (gradient,) = torch.autograd.grad(_energies(energy, leaf, where).sum(), leaf)
    return gradient


def check_energy(factory: PartFactory, event_shape: tuple[int, ...], **params: Any) -> None:
    """Check an energy-net factory against the energy contract (see the module's documentation).

    Args:
        factory: builds the energy net, ``factory(event_shape, **params) -> nn.Module``
            mapping ``(n, *event_shape)`` to ``(n,)`` energies.
        event_shape: the shape of one sample, e.g. ``(3,)`` or ``(1, 8, 8)``.
        params: passed to the factory; small sizes keep the check fast.

    Raises:
        AssertionError: naming the failed check and the likely fix.

    Example:
        >>> from coopkit.energies import MLPEnergy
        >>> check_energy(MLPEnergy, (3,), hidden_features=16)
    """
    event_shape = tuple(int(size) for size in event_shape)
    label = f"check_energy({_name(factory)}, {event_shape})"
    with torch.random.fork_rng(devices=[]):
        energy = _build_part(factory, event_shape, params, seed=0)
        generator = torch.Generator().manual_seed(0)
        _perturb(energy, generator)
        energy.train()
        energy32 = copy.deepcopy(energy).float()

        @_part_settings()
        @given(
            n=st.integers(1, 5),
            scale=st.floats(0.25, 3.0),
            clamped=st.floats(0.0, 1.0),
            seed=st.integers(0, 2**16),
        )
        def run(n: int, scale: float, clamped: float, seed: int) -> None:
            draws = torch.Generator().manual_seed(seed)
            x = _draw(event_shape, n, draws, scale, clamped)
            v = torch.randn(x.shape, generator=draws, dtype=torch.float64)
            where = f"{label} (batch of {n}, scale {scale:.3g}, seed {seed})"
            _check_energy_points(energy32, energy, x, v, where)

        run()
        for case, x in _far_out(event_shape, generator).items():
            v = torch.randn(x.shape, generator=generator, dtype=torch.float64)
            _check_energy_points(energy32, energy, x, v, f"{label} (out of range: {case})")
        x = _draw(event_shape, 32, generator)
        _check_parameter_gradients(energy, energy(x).mean(), label, "the mean energy")

        def outputs(part: torch.nn.Module) -> list[Tensor]:
            return [part(x)]

        _check_state_dict(
            energy, lambda: _build_part(factory, event_shape, params, seed=1), outputs, label
        )
