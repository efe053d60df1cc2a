"""The estimator's parameters resolved once, and the parts and training configuration
built from them.

``CoopFlow.fit`` and ``CoopFlow.load`` first turn the estimator's parameters into one
frozen :class:`Settings` (numpy scalars as Python values, ``"auto"`` resolved for the
kind of data by :mod:`coopkit.defaults`), then build the flow, the energy net and the
sampler from it here, so that a loaded model is built exactly as the fitted one was:
names resolved through the registry, factories called with the event shape and the
``*_params``, and parameter initialisation seeded without touching torch's global
generator. The helpers of ``fit``, ``save`` and ``load`` (:mod:`coopkit.fitting`,
:mod:`coopkit.persistence`) take the record, never the estimator.
"""

from __future__ import annotations

import copy
import dataclasses
import inspect
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from coopkit import defaults, registry
from coopkit.data import Scaler
from coopkit.flows.base import Flow
from coopkit.samplers.base import Sampler
from coopkit.training.config import TrainingConfig
from coopkit.validation import InvalidParameterError, plain

PARTS = ("flow", "energy", "sampler")


@dataclass(frozen=True)
class Settings:
    """The estimator's parameters as ``fit``, ``save`` and ``load`` use them, for data of
    one ``kind`` (``"table"`` or ``"image"``): ``"auto"`` resolved and checked
    (:func:`coopkit.defaults.check`), numpy scalars as Python values
    (:func:`~coopkit.validation.plain`); the parts are specs (names, factories or built
    parts), built by :func:`build_parts`. ``random_state`` is kept as given (a
    ``RandomState`` advances when a seed is drawn from it).

    Examples:
        >>> import numpy as np
        >>> from coopkit import CoopFlow
        >>> params = CoopFlow(batch_size=np.int64(64)).get_params(deep=False)
        >>> settings = Settings.resolve(params, "table")
        >>> settings.batch_size, type(settings.batch_size).__name__, settings.parts["flow"]
        (64, 'int', 'nsf')
    """

    kind: str
    flow: Any
    energy: Any
    sampler: Any
    flow_params: Mapping[str, Any] | None
    energy_params: Mapping[str, Any] | None
    sampler_params: Mapping[str, Any] | None
    n_iter: int
    batch_size: int
    flow_lr: float
    energy_lr: float
    energy_betas: tuple[float, float]
    warmup_iter: int
    lr_schedule: str
    pretrain_iter: int
    proposal: str
    flow_learns_from: str
    energy_l2: float
    target_revision: float | None
    energy_base: str
    tilt: float | str
    validation_fraction: float
    early_stopping: bool
    n_iter_no_change: int
    tol: float
    flow_grad_clip: float | None
    data_range: tuple[float, float] | None
    column_types: Any
    device: Any
    precision: str
    compile: bool
    log_partition: str | None
    n_partition_samples: int | str
    partition_temperatures: int
    partition_sampler: Any
    on_divergence: str
    warm_start: bool
    checkpoint_dir: Any
    checkpoint_every: int
    distributed: str
    random_state: Any
    verbose: int | bool

    @classmethod
    def resolve(cls, params: Mapping[str, Any], kind: str) -> Settings:
        """The record of the estimator's ``params`` (``get_params(deep=False)``, checked
        by :func:`coopkit.validation.check_params`) for data of ``kind``."""
        names = [field.name for field in dataclasses.fields(cls) if field.name != "kind"]
        given = {name: plain(params[name]) for name in names}
        proposal = given["proposal"]
        auto = {name: given[name] for name in defaults.AUTO[kind]}
        resolved = defaults.check(defaults.resolve(kind, auto, proposal), proposal)
        return cls(kind=kind, **{**given, **resolved})

    @property
    def auto(self) -> dict[str, Any]:
        """The parameters that may be ``"auto"``, as resolved (``CoopFlow.settings_``)."""
        return {name: getattr(self, name) for name in defaults.AUTO[self.kind]}

    @property
    def parts(self) -> dict[str, Any]:
        """The flow, energy and sampler specs, by kind of part."""
        return {part: getattr(self, part) for part in PARTS}


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


def build_parts(settings: Settings, scaler: Scaler, seed: int) -> tuple[Flow, nn.Module, Sampler]:
    """The flow, energy net and sampler of ``settings`` for data described by ``scaler``,
    with parameters initialised from ``seed``."""
    base = settings.energy_base
    # Parameter initialisation in torch draws from the global generator: seed it inside
    # fork_rng, which restores the caller's global state on exit.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        flow = build_part(
            "flow",
            settings.flow,
            settings.flow_params,
            scaler.event_shape,
            defaults=defaults.FLOW_PARAMS.get(scaler.kind, {}),
        )
        energy = build_part(
            "energy",
            settings.energy,
            settings.energy_params,
            scaler.event_shape,
            defaults=defaults.ENERGY_PARAMS.get((scaler.kind, base), {}),
        )
    sampler_defaults = dict(defaults.SAMPLER_PARAMS.get((scaler.kind, settings.sampler), {}))
    if base == "uniform":  # chains in data space stay in the data's box
        sampler_defaults.setdefault("bounds", scaler.model_bounds)
    sampler = build_part(
        "sampler", settings.sampler, settings.sampler_params, defaults=sampler_defaults
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


def training_config(
    settings: Settings, scaler: Scaler, seed: int, n_samples: int
) -> TrainingConfig:
    """The training loop's configuration from ``settings``."""
    return TrainingConfig(
        n_iter=settings.n_iter,
        batch_size=batch_size_for(settings.batch_size, n_samples),
        flow_lr=settings.flow_lr,
        energy_lr=settings.energy_lr,
        energy_betas=tuple(settings.energy_betas),
        warmup_iter=settings.warmup_iter,
        lr_schedule=settings.lr_schedule,
        flow_grad_clip=settings.flow_grad_clip,
        pretrain_iter=settings.pretrain_iter,
        dequantize_width=scaler.dequantize_width,
        proposal=settings.proposal,
        flow_learns_from=settings.flow_learns_from,
        energy_l2=settings.energy_l2,
        target_revision=settings.target_revision,
        energy_base=settings.energy_base,
        noise_bounds=scaler.model_bounds,
        precision=settings.precision,
        compile=settings.compile,
        on_divergence=settings.on_divergence,
        data_seed=seed,
    )
