from __future__ import annotations

import math

import numpy as np
import pytest

from coopkit import CoopFlow
from coopkit.columns import MAX_LEVELS, Columns, is_column_types, lattice_of
from coopkit.data import fit_scaler, scaler_from_dict, scaler_to_dict
from coopkit.streaming import Rows, scaler_from_summary, summarize

FAST = {"n_iter": 20, "batch_size": 64, "random_state": 0, "flow_params": {"n_layers": 2}}


@pytest.fixture(scope="module")
def mixed() -> np.ndarray:
    """A table of a float column, a count column, a 0/1 column and the 0/1 column
    standardised (two levels that are not whole numbers)."""
    rng = np.random.default_rng(0)
    real = rng.normal(3.0, 2.0, 300)
    counts = rng.poisson(4.0, 300).astype(float)
    flags = (rng.random(300) < 0.3).astype(float)
    return np.c_[real, counts, flags, (flags - flags.mean()) / flags.std()]


def detect(X: np.ndarray, column_types: object = "auto") -> Columns:
    integral = np.all(np.round(X) == X, axis=0)
    return Columns.detect(X.min(0), X.max(0), integral, column_types)


def test_each_kind_of_column_is_detected() -> None:
    X = np.array([[-1.5, 0.25, 2.5, 1.0, 3.0], [2.0, 0.75, 4.0, 0.0, 9.0]])
    kinds = [(c["type"], c["bounds"]) for c in detect(X).describe()]
    assert kinds == [
        ("float", (-math.inf, math.inf)),
        ("float", (0.0, 1.0)),
        ("float", (0.0, math.inf)),
        ("integer", (0.0, 1.0)),
        ("integer", (3.0, 9.0)),
    ]


def test_few_evenly_spaced_values_are_levels() -> None:
    ratings = np.tile([0.0, 0.25, 0.5, 1.0], 10)[:, None]
    ((origin, step),) = [lattice_of(np.unique(c), len(c)) for c in ratings.T]
    assert (origin, step) == (0.0, 0.25)
    assert Columns.detect(
        ratings.min(0), ratings.max(0), np.array([False]), "auto", [(origin, step)]
    ).describe() == [{"type": "levels", "bounds": (0.0, 1.0), "step": 0.25}]
    assert lattice_of(np.array([0.0, 0.3, 1.0]), 100) is None  # uneven
    assert lattice_of(np.array([0.5, 1.5]), 7) is None  # under four rows a level
    assert lattice_of(np.arange(MAX_LEVELS + 1) / 2, 1000) is None  # too many


def test_column_types_override_the_detection() -> None:
    X = np.array([[0.0, 1.0, 2.5], [4.0, 3.0, 4.0]])
    kinds = detect(X, ["float", "auto", (-10.0, 10.0)]).describe()
    assert [c["type"] for c in kinds] == ["float", "integer", "float"]
    assert kinds[0]["bounds"] == (-math.inf, math.inf)
    assert kinds[2]["bounds"] == (-10.0, 10.0)
    assert not detect(X, "float").constrained


@pytest.mark.parametrize(
    ("column_types", "message"),
    [(["auto"], "has 1 entries but X has 3 columns"), (["auto", "auto", (3.0, 5.0)], "column 2")],
)
def test_a_wrong_override_is_refused_with_the_fix(column_types: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        detect(np.array([[0.0, 1.0, 2.5], [4.0, 3.0, 4.0]]), column_types)


def test_what_column_types_accepts() -> None:
    assert is_column_types("auto")
    assert is_column_types(["integer", (0, np.float64(1.5)), "float", (0.0, math.inf)])
    for bad in ["integer", [], ["ints"], [(1.0, 0.0)], [(0.0, 1.0, 2.0)], (0.0, 1.0), [(True, 2)]]:
        assert not is_column_types(bad), bad


def test_the_scaler_dequantises_integer_columns_and_restores_them(mixed: np.ndarray) -> None:
    scaler = fit_scaler(mixed)
    width = np.asarray(scaler.dequantize_width)
    step = np.ptp(mixed[:, 3])
    stds = mixed.std(axis=0)
    np.testing.assert_allclose(width, [0.0, 1 / stds[1], 1 / stds[2], step / stds[3]])
    V = scaler.to_model(mixed)
    rng = np.random.default_rng(1)
    for u in (0.0, 0.5, 0.999):  # anywhere in an integer's interval maps back to it
        np.testing.assert_allclose(scaler.to_data(V + u * width), mixed, atol=1e-9)
    top = (V + width).max()  # the box holds the dequantised data
    assert top < scaler.model_bounds[1]
    far = scaler.to_data(rng.normal(0.0, 5.0, (500, 4)))
    assert far[:, 1].min() == 0.0
    assert far[:, 1].max() == mixed[:, 1].max()
    assert set(np.unique(far[:, 2])) == {0.0, 1.0}
    np.testing.assert_allclose(np.unique(far[:, 3]), np.unique(mixed[:, 3]))


def test_a_saved_scaler_keeps_its_columns(mixed: np.ndarray) -> None:
    scaler = fit_scaler(mixed)
    again = scaler_from_dict(scaler_to_dict(scaler))
    assert again.described() == scaler.described()
    assert again.dequantize_width == scaler.dequantize_width


def test_a_scaler_saved_before_levels_existed_still_loads(mixed: np.ndarray) -> None:
    state = scaler_to_dict(fit_scaler(mixed[:, :3]))
    columns = state["columns"]
    state["columns"] = {
        "integer": [s > 0 for s in columns["step"]],
        "low": columns["low"],
        "high": columns["high"],
    }
    again = scaler_from_dict(state)
    assert again.described() == fit_scaler(mixed[:, :3]).described()


def test_a_streamed_table_gets_the_columns_of_the_array(mixed: np.ndarray, tmp_path) -> None:
    path = tmp_path / "mixed.npy"
    np.save(path, mixed)
    streamed = scaler_from_summary(summarize(Rows(np.load(path, mmap_mode="r"))), None)
    array = fit_scaler(mixed)
    assert streamed.described() == array.described()
    np.testing.assert_allclose(streamed.model_bounds, array.model_bounds)


def test_a_mixed_table_round_trips_with_its_types(mixed: np.ndarray) -> None:
    model = CoopFlow(**FAST).fit(mixed)
    kinds = model.settings_["column_types"]
    assert [c["type"] for c in kinds] == ["float", "integer", "integer", "levels"]
    assert kinds[2]["bounds"] == (0.0, 1.0)
    assert kinds[3]["step"] == pytest.approx(np.ptp(mixed[:, 3]))
    samples = model.sample(400, random_state=0)
    assert not np.all(samples[:, 0] == np.round(samples[:, 0]))
    assert np.all(samples[:, 1] == np.round(samples[:, 1]))
    assert samples[:, 1].min() >= 0
    assert samples[:, 1].max() <= mixed[:, 1].max()
    assert set(np.unique(samples[:, 2])) == {0.0, 1.0}
    np.testing.assert_allclose(np.unique(samples[:, 3]), np.unique(mixed[:, 3]))
    np.testing.assert_allclose(model.inverse_transform(model.transform(mixed)), mixed, atol=1e-6)
    proposals = model.sample(50, random_state=0, revise=False)
    assert np.all(proposals[:, 1:3] == np.round(proposals[:, 1:3]))


def test_float_column_types_train_on_the_values_as_given(mixed: np.ndarray) -> None:
    model = CoopFlow(**FAST, column_types="float").fit(mixed)
    assert {c["type"] for c in model.settings_["column_types"]} == {"float"}
    samples = model.sample(100, random_state=0)
    assert not np.all(samples[:, 1] == np.round(samples[:, 1]))


def test_a_loaded_model_reports_and_restores_its_columns(mixed: np.ndarray, tmp_path) -> None:
    model = CoopFlow(**FAST).fit(mixed)
    loaded = CoopFlow.load(model.save(tmp_path / "mixed.coopkit"))
    assert loaded.settings_["column_types"] == model.settings_["column_types"]
    np.testing.assert_array_equal(
        loaded.sample(20, random_state=3), model.sample(20, random_state=3)
    )
