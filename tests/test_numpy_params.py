"""Parameters as scikit-learn takes them: ``verbose`` as an int or a flag, numpy scalars
wherever an int or a number is expected, through ``clone`` and ``GridSearchCV``."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV

from coopkit import CoopFlow, defaults
from coopkit.datasets import moons
from coopkit.validation import PARAMETER_CONSTRAINTS, check_params

TINY = {
    "flow_params": {"n_layers": 1, "hidden_features": 8},
    "energy_params": {"hidden_features": 8, "n_hidden": 1},
    "sampler_params": {"n_steps": 2},
}

# A numpy-typed value for every parameter that takes an int or a number; floats given as
# (numpy) ints where a float is expected, as scikit-learn's own ``tol``-like ones accept.
NUMPY_VALUES: dict[str, Any] = {
    "n_iter": np.int64(2),
    "batch_size": np.int32(16),
    "pretrain_iter": np.int64(1),
    "energy_l2": np.float32(0.25),
    "tilt": np.float32(0.5),
    "validation_fraction": np.float64(0.2),
    "n_iter_no_change": np.int64(3),
    "tol": np.float32(1e-3),
    "target_revision": np.float32(0.5),
    "flow_grad_clip": np.int64(1),
    "n_partition_samples": np.int64(16),
    "partition_temperatures": np.int16(3),
    "reconstruct_batch_size": np.int64(8),
    "checkpoint_every": np.uint8(1),
    "n_threads": np.int64(1),
    "random_state": np.int64(0),
    "verbose": np.int64(2),
    "flow_lr": np.float32(2**-10),
    "energy_lr": np.int64(1),
    "warmup_iter": np.int64(1),
    "energy_betas": (np.float32(0.5), np.float64(0.75)),
    "data_range": (np.int64(0), np.float32(1.0)),
    "column_types": ["auto", (np.float64(-5.0), np.int64(5))],
}


def numeric_parameters() -> set[str]:
    """The parameters whose rule (or ``"auto"`` default) is an int or a number."""
    ruled = {
        name
        for name, rule in PARAMETER_CONSTRAINTS.items()
        if re.search(r"integer|number|low < high", rule.description)
    }
    auto = {
        name
        for name, value in defaults.AUTO["table"].items()
        if not isinstance(value, str) and value is not None
    }
    return ruled | auto | {"random_state"}


def test_every_numeric_parameter_has_a_numpy_value_here() -> None:
    assert set(NUMPY_VALUES) == numeric_parameters()


@pytest.mark.parametrize("value", [0, 1, 2, 5, True, False, np.int64(2), np.bool_(True)])
def test_verbose_takes_a_non_negative_int_or_a_flag(value: Any) -> None:
    check_params({**CoopFlow().get_params(deep=False), "verbose": value})


@pytest.mark.parametrize("value", [-1, 1.0, "yes", None])
def test_verbose_refuses_what_scikit_learn_refuses(value: Any) -> None:
    message = f"verbose must be True, False or an integer >= 0; got {value!r}."
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        check_params({**CoopFlow().get_params(deep=False), "verbose": value})


@pytest.mark.parametrize(("name", "value"), NUMPY_VALUES.items(), ids=list(NUMPY_VALUES))
def test_a_numpy_value_passes_the_checks_and_clone(name: str, value: Any) -> None:
    model = CoopFlow(**{name: value})
    check_params(model.get_params(deep=False))
    assert repr(clone(model).get_params()[name]) == repr(value)  # value and numpy type


@pytest.mark.parametrize("verbose", [0, False])
def test_verbose_0_prints_nothing(verbose: Any, capsys: pytest.CaptureFixture[str]) -> None:
    CoopFlow(n_iter=2, batch_size=16, n_partition_samples=16, verbose=verbose, **TINY).fit(
        moons(64, random_state=0)
    )
    assert capsys.readouterr() == ("", "")


def test_verbose_1_is_a_progress_bar_and_2_adds_lines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    X = moons(64, random_state=0)
    common = {"n_iter": 4, "batch_size": 16, "n_partition_samples": 16, **TINY}
    common.update(checkpoint_dir=str(tmp_path), checkpoint_every=2)
    CoopFlow(verbose=1, **common).fit(X)
    out, err = capsys.readouterr()
    assert out == ""
    assert "CoopFlow: 100%" in err
    model = CoopFlow(verbose=np.int64(2), **common).fit(X)
    assert np.isfinite(model.log_partition_)  # estimated when first needed, with its line
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert lines[:2] == [
        f"CoopFlow: checkpoint of iteration {i}/4 written to {tmp_path / 'checkpoint.pt'}"
        for i in (2, 4)
    ]
    assert re.fullmatch(r"CoopFlow: log Z = \S+ ± \S+ \(importance, 16 samples, \S+ s\)", lines[2])
    assert len(lines) == 3
    assert "CoopFlow: 100%" in err


def test_numpy_scalars_train_the_model_their_python_values_train(tmp_path: Path) -> None:
    X = moons(64, random_state=0)
    table = {k: v for k, v in NUMPY_VALUES.items() if k not in ("verbose", "data_range")}
    table["n_partition_samples"], table["log_partition"] = np.int64(8), "ais"
    with_numpy = CoopFlow(**TINY, **table).fit(X)
    python = {
        k: tuple(map(float, v)) if k == "energy_betas" else v.item()
        for k, v in table.items()
        if k not in ("log_partition", "column_types")
    }
    python["column_types"] = ["auto", (-5.0, 5)]
    with_python = CoopFlow(**TINY, **python, log_partition="ais").fit(X)
    assert np.array_equal(
        with_numpy.sample(8, random_state=0), with_python.sample(8, random_state=0)
    )
    assert with_numpy.settings_ == with_python.settings_
    assert type(with_numpy.settings_["flow_lr"]) is float
    assert with_numpy.log_partition_ == with_python.log_partition_
    loaded = CoopFlow.load(with_numpy.save(tmp_path / "numpy.coopkit"))
    assert loaded.get_params()["batch_size"] == 16
    assert np.array_equal(loaded.sample(8, random_state=0), with_numpy.sample(8, random_state=0))


def test_grid_search_with_numpy_grids(tmp_path: Path) -> None:
    """Every numeric parameter as GridSearchCV hands it over from numpy grids
    (``np.arange``, ``np.logspace``): each candidate is cloned, set, fitted and scored,
    and the refitted best model saves and loads."""
    grid: dict[str, Any] = {
        "batch_size": np.arange(8, 17, 8),
        "flow_lr": np.logspace(-3, -2, 2),
        "energy_lr": np.logspace(-3, -3, 1, dtype=np.float32),
        "n_iter": np.arange(2, 3),
        "pretrain_iter": np.arange(1, 2),
        "warmup_iter": np.arange(1, 2),
        "energy_betas": [(np.float32(0.5), np.float64(0.75))],
        "energy_l2": np.logspace(-2, -2, 1, dtype=np.float32),
        "tilt": np.logspace(-1, -1, 1),
        "column_types": [["auto", (np.float64(-5.0), np.int64(5))]],
        "validation_fraction": np.linspace(0.2, 0.2, 1),
        "n_iter_no_change": np.arange(3, 4),
        "tol": np.logspace(-3, -3, 1),
        "target_revision": np.logspace(-1, -1, 1),
        "flow_grad_clip": np.arange(1, 2),
        "log_partition": ["ais"],
        "n_partition_samples": np.arange(8, 9),
        "partition_temperatures": np.arange(3, 4),
        "reconstruct_batch_size": np.arange(4, 5),
        "checkpoint_dir": [str(tmp_path)],
        "checkpoint_every": np.arange(1, 2),
        "n_threads": np.arange(1, 2),
        "random_state": np.arange(0, 1),
        "verbose": np.arange(2, 3),
    }
    gridded = {name for name in grid if name in NUMPY_VALUES}
    assert gridded == numeric_parameters() - {"data_range"}  # data_range: images only
    search = GridSearchCV(CoopFlow(**TINY), grid, cv=2, error_score="raise")
    search.fit(moons(64, random_state=0))
    assert len(search.cv_results_["params"]) == 4
    assert not np.isnan(search.cv_results_["mean_test_score"]).any()
    best = search.best_estimator_
    assert isinstance(best.get_params()["batch_size"], np.integer)
    assert best.n_iter_ == 3
    assert best.reconstruct(moons(4, random_state=1), n_iter=2).shape == (4, 2)
    loaded = CoopFlow.load(best.save(tmp_path / "best.coopkit"))
    assert loaded.get_params()["flow_lr"] == best.flow_lr
    assert np.array_equal(loaded.sample(4, random_state=0), best.sample(4, random_state=0))
