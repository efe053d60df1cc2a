"""The sampler checks: the contract (:func:`check_sampler_contract`) and the statistics
on known targets (:func:`check_sampler_statistics`); see :mod:`coopkit.testing`."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from torch import Tensor

from coopkit.diagnostics import effective_sample_size
from coopkit.samplers.base import Energy, Sampler, SampleResult
from coopkit.testing.common import (
    _name,
    _require,
)

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
