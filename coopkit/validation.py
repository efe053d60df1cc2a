"""The estimator's parameters checked at ``fit``, before any work, against one table.

As in scikit-learn, constructor parameters are stored untouched and checked when
``fit`` starts. :data:`PARAMETER_CONSTRAINTS` says what each parameter accepts;
:func:`check_params` raises a ``ValueError`` that names the parameter, what it got and
what it accepts. Parameters that may be ``"auto"`` are resolved for the kind of data
and checked by :func:`coopkit.defaults.check`; parts (``flow``, ``energy``,
``sampler``) are checked when they are built.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from numbers import Real
from typing import Any

import numpy as np
import torch
from sklearn.utils import check_random_state

from coopkit import registry
from coopkit.columns import is_column_types


class InvalidParameterError(ValueError, TypeError):
    """A parameter or argument that breaks its rule: a value of the wrong type or out of
    range. Both a ``ValueError`` and a ``TypeError``, as in scikit-learn, so that either
    ``except`` catches it."""


@dataclass(frozen=True)
class Constraint:
    """What one parameter accepts: a test and its description for error messages."""

    description: str
    accepts: Callable[[Any], bool]

    def __or__(self, other: Constraint) -> Constraint:
        return Constraint(
            f"{self.description} or {other.description}",
            lambda value: self.accepts(value) or other.accepts(value),
        )


def _is_integer(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _is_number(value: Any) -> bool:
    """A finite real number that is not a bool."""
    return (
        isinstance(value, Real) and not isinstance(value, (bool, np.bool_)) and math.isfinite(value)
    )


def integer(least: int, why: str = "") -> Constraint:
    """An integer (not a bool) ``>= least``; ``why`` is added to the description."""
    reason = f" ({why})" if why else ""
    return Constraint(f"an integer >= {least}{reason}", lambda v: _is_integer(v) and v >= least)


def number(least: float = 0.0, *, strict: bool = False) -> Constraint:
    """A real number (not a bool) ``> least`` (``strict``) or ``>= least``."""
    if strict and least == 0:
        return Constraint("a positive number", lambda v: _is_number(v) and v > 0)
    sign = ">" if strict else ">="
    return Constraint(
        f"a number {sign} {least:g}",
        lambda v: _is_number(v) and (v > least if strict else v >= least),
    )


def options(*values: str) -> Constraint:
    """One of the strings ``values``."""
    quoted = [repr(v) for v in values]
    text = quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} or {quoted[-1]}"
    return Constraint(text, lambda v: isinstance(v, str) and v in values)


BOOLEAN = Constraint("True or False", lambda v: isinstance(v, (bool, np.bool_)))
VERBOSE = Constraint(
    "True, False or an integer >= 0",
    lambda v: isinstance(v, (bool, np.bool_)) or (_is_integer(v) and v >= 0),
)
NONE = Constraint("None", lambda v: v is None)
MAPPING = Constraint("a dict of keyword arguments", lambda v: isinstance(v, Mapping))
PATH = Constraint("a folder path", lambda v: isinstance(v, (str, os.PathLike)))


def _is_range(value: Any) -> bool:
    return (
        isinstance(value, (tuple, list))
        and len(value) == 2
        and all(_is_number(v) for v in value)
        and value[0] < value[1]
    )


def sampler_spec() -> Constraint:
    """A registered sampler's name, or a sampler (or its factory)."""

    def accepts(value: Any) -> bool:
        if isinstance(value, str):
            return value in {part.name for part in registry.available("sampler")}
        return callable(value)

    return Constraint("a registered sampler's name or a sampler", accepts)


PARAMETER_CONSTRAINTS: dict[str, Constraint] = {
    "flow_params": MAPPING | NONE,
    "energy_params": MAPPING | NONE,
    "sampler_params": MAPPING | NONE,
    "n_iter": integer(0),
    "batch_size": integer(1),
    "pretrain_iter": integer(0),
    "proposal": options("flow", "noise"),
    "energy_l2": number(0),
    "tilt": options("auto") | number(0),
    "validation_fraction": Constraint(
        "a number >= 0 and < 1", lambda v: _is_number(v) and 0 <= v < 1
    ),
    "early_stopping": BOOLEAN,
    "n_iter_no_change": integer(1),
    "tol": number(0),
    "target_revision": number(0, strict=True) | NONE,
    "flow_grad_clip": number(0, strict=True) | NONE,
    "precision": options("float32", "bfloat16"),
    "compile": BOOLEAN,
    "log_partition": options("importance", "ais") | NONE,
    "n_partition_samples": options("auto") | integer(2, "a standard error needs two"),
    "partition_temperatures": integer(1),
    "partition_sampler": sampler_spec(),
    "column_types": Constraint(
        "'auto', 'float', or one 'auto', 'float', 'integer' or (low, high) per column",
        is_column_types,
    ),
    "data_range": Constraint("(low, high) with low < high", _is_range) | NONE,
    "reconstruct_batch_size": integer(1),
    "on_divergence": options("raise", "restore"),
    "warm_start": BOOLEAN,
    "checkpoint_dir": PATH | NONE,
    "checkpoint_every": integer(1),
    "distributed": options("auto", "off"),
    "n_threads": integer(1) | NONE,
    "verbose": VERBOSE,
}


def plain(value: Any) -> Any:
    """``value`` with numpy scalars (``np.int64(3)``, ``np.float32(0.1)``, ``np.True_``)
    as the Python ``int``, ``float`` or ``bool`` they hold, inside tuples, lists and dicts
    too.

    scikit-learn's searches hand parameters over as numpy scalars (``np.arange``,
    ``np.logspace`` grids); the table above accepts them, and ``fit`` turns them into
    Python values once, so that JSON (``save``), ``settings_`` and the parts see the
    types they were written for.

    Examples:
        >>> plain(np.int64(3)), plain((np.float32(0.5), 1)), plain("auto")
        (3, (0.5, 1), 'auto')
    """
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (tuple, list)):
        return type(value)(plain(v) for v in value)
    if isinstance(value, dict):
        return {key: plain(v) for key, v in value.items()}
    return value


def check_params(params: Mapping[str, Any]) -> None:
    """Check the estimator's ``params`` (from ``get_params``) against the table, and the
    rules that join two of them.

    Raises:
        InvalidParameterError: naming the first parameter that breaks its rule.

    Examples:
        >>> check_params({"n_iter": 10, "pretrain_iter": 0, "batch_size": 0})
        Traceback (most recent call last):
        ...
        coopkit.validation.InvalidParameterError: batch_size must be an integer >= 1; got 0.
    """
    for name, constraint in PARAMETER_CONSTRAINTS.items():
        if name in params:
            check_arg(name, params[name], constraint)
    if params.get("n_iter") == 0 and params.get("pretrain_iter") == 0:
        raise ValueError("n_iter and pretrain_iter are both 0: zero iterations; set n_iter >= 1.")
    _random_state(params.get("random_state"))
    resolve_device(params.get("device", "auto"))


def _random_state(random_state: Any) -> np.random.RandomState:
    try:
        return check_random_state(random_state)
    except ValueError as exc:
        raise ValueError(
            f"random_state must be None, an integer or a numpy RandomState; got {random_state!r}."
        ) from exc


def check_arg(name: str, value: Any, constraint: Constraint) -> Any:
    """``value`` unchanged if ``constraint`` accepts it, else an
    :class:`InvalidParameterError` naming ``name``, what it got and what it accepts.

    Examples:
        >>> check_arg("revise", "yes", BOOLEAN)
        Traceback (most recent call last):
        ...
        coopkit.validation.InvalidParameterError: revise must be True or False; got 'yes'.
    """
    if not constraint.accepts(value):
        raise InvalidParameterError(f"{name} must be {constraint.description}; got {value!r}.")
    return value


def seed_from(random_state: Any) -> int:
    """An int32 seed drawn from ``random_state`` (``None``, an int or a ``RandomState``,
    which advances), as scikit-learn reads it; a ValueError for anything else."""
    return int(_random_state(random_state).randint(np.iinfo(np.int32).max))


def resolve_device(device: str | torch.device) -> torch.device:
    """``device`` as a ``torch.device``: ``"auto"`` is the current CUDA device when there
    is one, else the CPU. A ValueError for an unknown name or a CUDA device without CUDA."""
    if device == "auto":
        return torch.device(torch.cuda.current_device() if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"device must be 'auto', 'cpu' or 'cuda[:i]'; got {device!r}.") from exc
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} was asked for, but CUDA is not available here.")
    return resolved
