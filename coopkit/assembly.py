"""The estimator's parts and training configuration, built from its parameters.

``fit`` and :func:`coopkit.persistence.load_estimator` both build the flow, the energy
net and the sampler here, so that a loaded model is built exactly as the fitted one was:
``"auto"`` parameters resolved for the kind of data (:mod:`coopkit.defaults`), names
resolved through the registry, factories called with the event shape and the
``*_params``, and parameter initialisation seeded without touching torch's global
generator.
"""

from __future__ import annotations

import copy
import inspect
import warnings
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from coopkit import defaults, registry
from coopkit.data import Scaler
from coopkit.flows.base import Flow
from coopkit.samplers.base import Sampler
from coopkit.training import TrainingConfig
from coopkit.validation import InvalidParameterError, plain

if TYPE_CHECKING:
    from coopkit.estimator import CoopFlow

PARTS = ("flow", "energy", "sampler")


def settings(model: CoopFlow, kind: str) -> dict[str, Any]:
    """The parameters that may be ``"auto"``, resolved for ``kind`` and checked."""
    given = {name: plain(getattr(model, name)) for name in defaults.AUTO[kind]}
    return defaults.check(defaults.resolve(kind, given, model.proposal), model.proposal)


def part_specs(model: CoopFlow, kind: str) -> dict[str, Any]:
    """The flow, energy and sampler specs with ``"auto"`` resolved for ``kind``."""
    resolved = settings(model, kind)
    return {part: resolved[part] for part in PARTS}


def build_part(
    kind: str,
    spec: Any,
    params: Mapping[str, Any] | None,
    *args: Any,
    defaults: Mapping[str, Any] | None = None,
) -> Any:
    """Build one part from its spec: a registered name, a factory, or a built part (copied).

    ``defaults`` fill parameters that the factory names explicitly and that ``params``
    leave unset.

    Examples:
        >>> sampler = build_part("sampler", "langevin", {"n_steps": 5}, defaults={"step_size": 0.2})
        >>> type(sampler).__name__, sampler.n_steps, sampler.step_size
        ('LangevinSampler', 5, 0.2)
    """
    params = dict(params or {})
    if isinstance(spec, str):
        factory = registry.resolve(kind, spec).factory
    elif isinstance(spec, (nn.Module, Sampler)):
        if params:
            raise ValueError(f"{kind}_params cannot be applied to an already built {kind}.")
        return copy.deepcopy(spec)
    elif callable(spec):
        factory = spec
    else:
        raise TypeError(
            f"{kind} must be a registered name, a factory or a built part; got {spec!r}."
        )
    accepted = inspect.signature(factory).parameters
    given = dict(params)
    for name, value in (defaults or {}).items():
        if name in accepted:
            params.setdefault(name, value)
    try:
        return factory(*args, **params)
    except (ValueError, TypeError) as exc:
        raise InvalidParameterError(
            f"The {kind} {spec!r} refused its parameters ({kind}_params={given!r}): {exc}"
        ) from exc


def build_parts(model: CoopFlow, scaler: Scaler, seed: int) -> tuple[Flow, nn.Module, Sampler]:
    """The estimator's flow, energy net and sampler for data described by ``scaler``,
    with parameters initialised from ``seed``."""
    resolved = settings(model, scaler.kind)
    base = resolved["energy_base"]
    # Parameter initialisation in torch draws from the global generator: seed it inside
    # fork_rng, which restores the caller's global state on exit.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        flow = build_part("flow", resolved["flow"], model.flow_params, scaler.event_shape)
        energy = build_part(
            "energy",
            resolved["energy"],
            model.energy_params,
            scaler.event_shape,
            defaults=defaults.ENERGY_PARAMS.get((scaler.kind, base), {}),
        )
    sampler_defaults = dict(defaults.SAMPLER_PARAMS.get((scaler.kind, resolved["sampler"]), {}))
    if base == "uniform":  # chains in data space stay in the data's box
        sampler_defaults.setdefault("bounds", scaler.model_bounds)
    sampler = build_part(
        "sampler", resolved["sampler"], model.sampler_params, defaults=sampler_defaults
    )
    if not isinstance(flow, Flow):
        raise TypeError(f"flow must build a coopkit.flows.Flow; got {type(flow).__name__}.")
    return flow, energy, sampler


def batch_size_for(batch_size: int, n_samples: int) -> int:
    """``batch_size``, clipped to the number of samples with a warning (as scikit-learn's
    MLP does)."""
    if batch_size <= n_samples:
        return int(batch_size)
    warnings.warn(
        f"batch_size={batch_size} is larger than the {n_samples} samples in X; "
        f"using batch_size={n_samples}.",
        UserWarning,
        stacklevel=5,
    )
    return n_samples


def training_config(model: CoopFlow, scaler: Scaler, seed: int, n_samples: int) -> TrainingConfig:
    """The training loop's configuration from the estimator's parameters, numpy scalars
    as Python numbers (so that, e.g., a step size adapted toward a ``np.float32``
    ``target_revision`` stays a ``float``)."""
    resolved = settings(model, scaler.kind)
    config = dict(
        n_iter=model.n_iter,
        batch_size=batch_size_for(model.batch_size, n_samples),
        flow_lr=resolved["flow_lr"],
        energy_lr=resolved["energy_lr"],
        energy_betas=tuple(resolved["energy_betas"]),
        warmup_iter=resolved["warmup_iter"],
        lr_schedule=resolved["lr_schedule"],
        flow_grad_clip=model.flow_grad_clip,
        pretrain_iter=model.pretrain_iter,
        dequantize_width=scaler.dequantize_width,
        proposal=model.proposal,
        flow_learns_from=resolved["flow_learns_from"],
        energy_l2=model.energy_l2,
        target_revision=model.target_revision,
        energy_base=resolved["energy_base"],
        noise_bounds=scaler.model_bounds,
        precision=model.precision,
        compile=model.compile,
        on_divergence=model.on_divergence,
        data_seed=seed,
    )
    return TrainingConfig(**{name: plain(value) for name, value in config.items()})
