"""Every bad argument to the public surface gets coopkit's own message.

A hypothesis test draws a public method of a fitted estimator, one of its parameters and
a bad value for it (wrong type, wrong shape, NaN or inf, a zero or negative count, an
empty array, a string, ``None``), and calls the method with that value and good values
elsewhere. The call must raise ``ValueError`` or ``TypeError`` (coopkit's errors are
both or either), with a message that names the parameter, raised from coopkit's own
code (the traceback's last frame is in the package, so the message is not numpy's or
torch's). A refused call changes nothing: the model samples exactly as before. The same
holds for the estimator's constructor parameters at ``fit``.
"""

from __future__ import annotations

import traceback
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import coopkit
from coopkit import CoopFlow
from coopkit.datasets import moons

PACKAGE = str(Path(coopkit.__file__).parent)
N_FEATURES = 2

COUNT_BAD = [0, -1, 2.5, "3", None, True, float("nan"), np.array([3])]
FLAG_BAD = ["yes", 1, 0, None, "True"]
RATE_BAD = [0.0, -0.1, float("nan"), float("inf"), "0.01", None]
SEED_BAD = ["seed", 1.5, -1, [1, 2]]
TABLE_BAD = [
    np.zeros((3, N_FEATURES + 1)),
    np.zeros((0, N_FEATURES)),
    np.array([[np.nan, 0.0]]),
    np.array([[np.inf, 0.0]]),
    np.array([["a", "b"]]),
    np.zeros(N_FEATURES),
    np.zeros((2, N_FEATURES, 1, 1, 1)),
    None,
    "X",
    3.0,
]
ONE_SAMPLE_BAD = [np.zeros(N_FEATURES + 1), np.array([np.nan, 0.0]), "x", None, np.zeros((2, 2))]
MASK_BAD = [np.ones(5), np.ones((2, 3)), np.array(["a", "b"]), None, np.array([np.nan, 1.0])]
PATH_BAD = [None, 3, ["model.coopkit"]]

GOOD_X = moons(3, random_state=5)

# method -> (good arguments, {parameter: bad values})
SURFACE: dict[str, tuple[dict[str, Any], dict[str, list[Any]]]] = {
    "sample": (
        {"n_samples": 2, "random_state": 0, "revise": True},
        {"n_samples": COUNT_BAD, "random_state": SEED_BAD, "revise": FLAG_BAD},
    ),
    "score_samples": ({"X": GOOD_X}, {"X": TABLE_BAD}),
    "score": ({"X": GOOD_X}, {"X": TABLE_BAD}),
    "flow_score_samples": ({"X": GOOD_X}, {"X": TABLE_BAD}),
    "transform": ({"X": GOOD_X}, {"X": TABLE_BAD}),
    "inverse_transform": ({"Z": GOOD_X}, {"Z": TABLE_BAD}),
    "reconstruct": (
        {"X": GOOD_X, "n_iter": 1, "lr": 0.01, "init": "inverse", "return_error": False},
        {
            "X": TABLE_BAD,
            "n_iter": [-1, 2.5, "3", None, True],
            "lr": RATE_BAD,
            "init": ["noise", None, 1],
            "method": ["optimize", "adam", None],
            "tol": [-1e-3, "0", None],
            "return_error": FLAG_BAD,
            "random_state": SEED_BAD,
        },
    ),
    "inpaint": (
        {"X": GOOD_X, "mask": [1, 0], "n_completions": 1, "n_iter": 1, "lr": 0.01},
        {
            "X": TABLE_BAD,
            "mask": MASK_BAD,
            "n_completions": COUNT_BAD,
            "n_iter": [-1, 2.5, None],
            "lr": RATE_BAD,
            "method": ["gradient", "fixed_point", None],
            "n_steps": [0, 2.5, "3"],
            "tol": [-1.0, None],
            "random_state": SEED_BAD,
        },
    ),
    "interpolate": (
        {"x_a": GOOD_X[0], "x_b": GOOD_X[1], "n_points": 3, "n_iter": 1, "lr": 0.01},
        {
            "x_a": ONE_SAMPLE_BAD,
            "x_b": ONE_SAMPLE_BAD,
            "n_points": [1, 0, -2, 2.5, "4", None],
            "n_iter": [-1, None],
            "lr": RATE_BAD,
            "method": ["sample", None],
            "random_state": SEED_BAD,
        },
    ),
    "save": ({"path": "unused"}, {"path": PATH_BAD}),
}

# constructor parameter -> bad values, each refused when fit starts
CONSTRUCTOR_BAD: dict[str, list[Any]] = {
    "flow": ["no-such-flow", None, 3],
    "energy": ["no-such-energy", None],
    "sampler": ["no-such-sampler", None],
    "flow_params": [[1], "hidden=8"],
    "energy_params": [[1]],
    "sampler_params": [{"step_size": -1.0}, [1]],
    "n_iter": [-1, 2.5, "10", None],
    "batch_size": [0, -4, 8.0, None],
    "flow_lr": [-1.0, 0.0, "fast", float("nan"), None],
    "energy_lr": [-1.0, "fast", None],
    "energy_betas": [(0.9, 1.5), "adam", None, (0.9,)],
    "warmup_iter": [-1, 2.5, "long", None],
    "lr_schedule": ["linear", None, 1],
    "pretrain_iter": [-1, 1.5, None],
    "proposal": ["data", None],
    "flow_learns_from": ["noise", None],
    "energy_l2": [-1.0, float("nan"), "0", None],
    "target_revision": [0.0, -1.0, True, "small"],
    "energy_base": ["gauss", None],
    "flow_grad_clip": [0.0, -1.0, "1"],
    "data_range": [(1.0, 0.0), "0-16", (0.0,)],
    "column_types": ["integer", ["ints"], [(1.0, 0.0)], None],
    "device": ["tpu", 3.5],
    "precision": ["float16", None],
    "compile": ["yes", 1, None],
    "log_partition": ["mcmc", 3],
    "n_partition_samples": [1, 0, "many", None],
    "partition_temperatures": [0, 2.5, None],
    "partition_sampler": ["no-such-sampler", None],
    "reconstruct_batch_size": [0, None],
    "on_divergence": ["ignore", None],
    "warm_start": ["yes", 1],
    "early_stopping": ["yes", 1, None],
    "n_iter_no_change": [0, 2.5, None],
    "tol": [-1.0, "small", None],
    "checkpoint_dir": [3, ["dir"]],
    "checkpoint_every": [0, None],
    "distributed": ["on", None],
    "n_threads": [0, -1, 1.5, "two"],
    "random_state": ["seed", 1.5],
    "verbose": ["yes", -1, 1.5],
}


def last_frame(exc: BaseException) -> str:
    """The file of the frame that raised ``exc``."""
    return traceback.extract_tb(exc.__traceback__)[-1].filename


def assert_refused(call: Callable[[], Any], name: str) -> BaseException:
    """``call`` raises ValueError or TypeError from coopkit's code, naming ``name``."""
    with pytest.raises((ValueError, TypeError, LookupError)) as info:
        call()
    assert name in str(info.value), f"{name!r} not named in: {info.value}"
    assert last_frame(info.value).startswith(PACKAGE), (
        f"raised outside coopkit ({last_frame(info.value)}): {info.value}"
    )
    return info.value


@pytest.fixture(scope="module")
def fitted() -> tuple[CoopFlow, np.ndarray]:
    model = CoopFlow(n_iter=2, batch_size=32, n_partition_samples=64, random_state=0)
    model.fit(moons(64, random_state=0))
    return model, model.sample(5, random_state=0)


@settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_a_bad_argument_is_refused_by_name_and_changes_nothing(
    fitted: tuple[CoopFlow, np.ndarray], data: st.DataObject
) -> None:
    model, before = fitted
    method = data.draw(st.sampled_from(sorted(SURFACE)), label="method")
    good, bad = SURFACE[method]
    name = data.draw(st.sampled_from(sorted(bad)), label="parameter")
    value = data.draw(st.sampled_from(bad[name]), label="value")
    arguments = {**good, name: value}
    assert_refused(lambda: getattr(model, method)(**arguments), name)
    assert np.array_equal(model.sample(5, random_state=0), before)


@pytest.mark.parametrize(
    ("name", "value"),
    [(name, value) for name, values in CONSTRUCTOR_BAD.items() for value in values],
    ids=lambda v: repr(v)[:20],
)
def test_a_bad_constructor_parameter_is_refused_at_fit(name: str, value: Any) -> None:
    base = {"n_iter": 1, "batch_size": 16, "n_partition_samples": 16}
    model = CoopFlow(**{**base, name: value})
    assert_refused(lambda: model.fit(moons(32, random_state=0)), name)
    assert not hasattr(model, "flow_")


@pytest.mark.parametrize(
    ("arguments", "name"),
    [({"path": None}, "path"), ({"path": 3}, "path"), ({"path": "m", "device": "tpu"}, "device")],
)
def test_load_refuses_bad_arguments_by_name(arguments: dict[str, Any], name: str) -> None:
    assert_refused(lambda: CoopFlow.load(**arguments), name)


def test_inpaint_names_a_mask_of_the_wrong_shape(fitted: tuple[CoopFlow, np.ndarray]) -> None:
    model, _ = fitted
    error = assert_refused(lambda: model.inpaint(GOOD_X[:2], np.ones(5)), "mask")
    assert "(5,)" in str(error)
    assert "(2, 2)" in str(error)
    assert "(2,)" in str(error)


def test_revise_takes_only_booleans(fitted: tuple[CoopFlow, np.ndarray]) -> None:
    model, _ = fitted
    error = assert_refused(lambda: model.sample(3, revise="yes"), "revise")
    assert str(error) == "revise must be True or False; got 'yes'."


def test_one_partition_sample_is_refused_before_torch_warns() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        error = assert_refused(
            lambda: CoopFlow(n_iter=1, n_partition_samples=1).fit(moons(32, 0)),
            "n_partition_samples",
        )
    assert "a standard error needs two" in str(error)


class Foreign:
    """An object that coopkit's safe loading must refuse to unpickle."""


def test_a_foreign_file_is_refused_without_torchs_advice(tmp_path: Path) -> None:
    path = tmp_path / "foreign.coopkit"
    torch.save({"format": Foreign()}, path)
    error = assert_refused(lambda: CoopFlow.load(path), str(path))
    message = str(error)
    assert "not written by coopkit" in message
    assert "weights_only" not in message
    assert "arbitrary code" not in message
    assert error.__cause__ is None
    assert error.__suppress_context__
