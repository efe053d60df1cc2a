from __future__ import annotations

import numpy as np
import pytest

from coopkit.data import ImageScaler, TableScaler, check_array, fit_scaler, infer_data_range


def test_table_scaler_standardises_and_inverts() -> None:
    X = np.random.RandomState(0).randn(50, 3) * [1.0, 5.0, 0.1] + 7
    scaler = fit_scaler(X)
    assert isinstance(scaler, TableScaler)
    V = scaler.to_model(X)
    assert np.allclose(V.mean(axis=0), 0)
    assert np.allclose(V.std(axis=0), 1)
    assert np.allclose(scaler.to_data(V), X)
    assert scaler.log_abs_det() == pytest.approx(-np.log(X.std(axis=0)).sum())
    low, high = scaler.model_bounds
    assert high == pytest.approx(np.abs(V).max() + 1) == -low


def test_constant_feature_keeps_unit_scale() -> None:
    scaler = fit_scaler(np.c_[np.arange(4.0), np.ones(4)])
    assert scaler.scale[1] == 1.0


@pytest.mark.parametrize(
    ("X", "expected"),
    [
        (np.random.RandomState(0).rand(4, 8, 8), (0.0, 1.0)),
        (np.arange(256, dtype=np.uint8).reshape(4, 8, 8), (0.0, 255.0)),
    ],
)
def test_data_range_is_inferred_when_unambiguous(X: np.ndarray, expected: tuple) -> None:
    assert infer_data_range(X) == expected


def test_ambiguous_range_asks_for_data_range() -> None:
    digits_like = np.random.RandomState(0).randint(0, 17, size=(4, 8, 8))
    with pytest.raises(ValueError, match=r"Pass data_range=\(low, high\)"):
        infer_data_range(digits_like)


def test_integer_images_dequantise_into_level_intervals() -> None:
    X = np.array([[[0, 16], [8, 3]]] * 2)
    scaler = fit_scaler(X, data_range=(0, 16))
    assert isinstance(scaler, ImageScaler)
    assert scaler.event_shape == (1, 2, 2)
    assert scaler.dequantize_width == pytest.approx(2 / 17)
    V = scaler.to_model(X)
    assert V.shape == (2, 1, 2, 2)
    assert V.min() == -1.0
    assert V.max() + scaler.dequantize_width == pytest.approx(1.0)
    centres = V + scaler.dequantize_width / 2
    assert np.allclose(scaler.to_data(centres), X)
    assert scaler.to_data(centres).shape == X.shape
    assert scaler.log_abs_det() == pytest.approx(4 * np.log(2 / 17))


def test_continuous_images_map_linearly_to_unit_interval() -> None:
    X = np.random.RandomState(0).rand(3, 2, 4, 4)
    scaler = fit_scaler(X, data_range=(0.0, 1.0))
    assert scaler.dequantize_width == 0.0
    assert np.allclose(scaler.to_model(X), 2 * X - 1)
    assert np.allclose(scaler.to_data(2 * X - 1), X)


def test_values_outside_data_range_are_rejected() -> None:
    with pytest.raises(ValueError, match="outside data_range"):
        fit_scaler(np.full((2, 4, 4), 3.0), data_range=(0, 1))


def test_check_array_accepts_bool_and_ints() -> None:
    assert check_array(np.ones((2, 2), dtype=bool)).shape == (2, 2)
    with pytest.raises(ValueError, match="Complex data not supported"):
        check_array(np.ones((2, 2), dtype=complex))
