"""The estimator's parameter table: complete, and each rule names the parameter."""

from __future__ import annotations

import inspect
import re

import numpy as np
import pytest
from sklearn.base import BaseEstimator

from coopkit import CoopFlow, defaults
from coopkit.validation import PARAMETER_CONSTRAINTS, check_params, resolve_device, seed_from

# Parameters checked elsewhere: parts when built, "auto"-able ones by defaults.check,
# the data range by the scaler, the AIS sampler when built at the end of fit.
CHECKED_ELSEWHERE = {
    "flow",
    "energy",
    "sampler",
    "device",
    "random_state",
    *defaults.AUTO["table"],
}


def test_every_constructor_parameter_has_a_rule() -> None:
    params = set(inspect.signature(CoopFlow).parameters)
    assert params - CHECKED_ELSEWHERE == set(PARAMETER_CONSTRAINTS)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("batch_size", 0, "batch_size must be an integer >= 1; got 0."),
        ("n_iter", 2.0, "n_iter must be an integer >= 0; got 2.0."),
        ("warm_start", "yes", "warm_start must be True or False; got 'yes'."),
        ("verbose", -1, "verbose must be True, False or an integer >= 0; got -1."),
        ("flow_params", [1], "flow_params must be a dict of keyword arguments or None"),
        ("checkpoint_every", True, "checkpoint_every must be an integer >= 1; got True."),
        ("n_partition_samples", 1, "n_partition_samples must be 'auto' or an integer >= 2"),
        (
            "log_partition",
            "mcmc",
            "log_partition must be 'importance' or 'ais' or None; got 'mcmc'.",
        ),
        ("flow_grad_clip", 0, "flow_grad_clip must be a positive number or None; got 0."),
        ("energy_l2", np.nan, "energy_l2 must be a number >= 0; got nan."),
        ("random_state", "seed", "random_state must be None, an integer or a numpy"),
        ("device", "tpu", "device must be 'auto', 'cpu' or 'cuda[:i]'; got 'tpu'."),
    ],
)
def test_a_broken_rule_names_the_parameter(name: str, value: object, message: str) -> None:
    params = {**CoopFlow().get_params(deep=False), name: value}
    with pytest.raises(ValueError, match=f"^{re.escape(message)}"):
        check_params(params)


def test_defaults_pass_and_a_random_state_is_not_advanced_by_the_check() -> None:
    state = np.random.RandomState(0)
    check_params({**CoopFlow().get_params(deep=False), "random_state": state})
    assert seed_from(state) == seed_from(np.random.RandomState(0))
    assert resolve_device("cpu").type == "cpu"


def test_no_private_method_of_base_estimator_is_overridden() -> None:
    """scikit-learn calls its private methods (``_validate_params``, ``_get_tags``, ...)
    from its own machinery: CoopFlow must not replace one with another signature."""
    for name, member in vars(BaseEstimator).items():
        if name.startswith("_") and not name.startswith("__") and callable(member):
            ours = inspect.getattr_static(CoopFlow, name)
            assert ours is member or inspect.signature(ours) == inspect.signature(member), name
