"""Input validation and scaling between data units and model units.

Tables ``(n, d)`` are standardised per feature; their integer columns are dequantised
as pixels are, and samples return to their columns' own form (:mod:`coopkit.columns`).
Images ``(n, h, w)`` or ``(n, c, h, w)``
are mapped linearly from their ``data_range`` to [-1, 1], the range of coopkit's image
flows and of the released CoopFlow code. Integer-valued images are dequantised: level
``k`` of ``L`` levels becomes the interval ``[k, k + 1) / L`` of [0, 1), and training
draws a fresh uniform point in it for every batch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np

from coopkit.columns import Columns, lattice_of

Kind = Literal["table", "image"]


def check_array(X: object, *, name: str = "X") -> np.ndarray:
    """``X`` as a finite floating array of 2 to 4 dimensions with at least one sample.

    Raises:
        TypeError: for non-numeric data.
        ValueError: for empty data, the wrong number of dimensions, NaN or inf.

    Examples:
        >>> check_array([[0, 1], [2, 3]])
        array([[0, 1],
               [2, 3]])
        >>> try:
        ...     check_array([[0.0, np.nan]])
        ... except ValueError as exc:
        ...     print(exc)
        X contains 1 NaN or infinite value(s); remove or impute them first.
    """
    if hasattr(X, "toarray") or hasattr(X, "tocsr"):
        raise TypeError(
            f"Sparse input is not supported: {name} is a sparse matrix; pass a dense array "
            f"({name}.toarray())."
        )
    try:
        array = np.asarray(X)
    except Exception as exc:
        raise TypeError(f"{name} could not be converted to a numeric array: {exc}") from exc
    if array.dtype != object and not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
        raise TypeError(
            f"{name} must hold numbers; got dtype {array.dtype}. Convert it first, for example "
            f"with np.asarray({name}, dtype=float)."
        )
    if np.iscomplexobj(array):
        raise ValueError(
            f"Complex data not supported: {name} has dtype {array.dtype}; pass real values."
        )
    if array.ndim not in (2, 3, 4):
        raise ValueError(
            f"{name} must be a table (n_samples, n_features) or images (n, h, w) or "
            f"(n, c, h, w); got an array with {array.ndim} dimension(s), shape {array.shape}. "
            "Reshape your data: X.reshape(1, -1) for a single sample, X.reshape(-1, 1) for a "
            "single feature."
        )
    if array.shape[0] == 0:
        raise ValueError(
            f"{name} is empty: 0 sample(s) (shape={array.shape}) while a minimum of 1 is required."
        )
    if array.size == 0:
        raise ValueError(
            f"{name} is empty: 0 feature(s) (shape={array.shape}) while a minimum of 1 is required."
        )
    if array.dtype == object:
        try:
            array = array.astype(np.float64)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"{name} must hold numbers; {exc}") from exc
    if not np.isfinite(array).all():
        bad = int((~np.isfinite(array)).sum())
        raise ValueError(
            f"{name} contains {bad} NaN or infinite value(s); remove or impute them first."
        )
    return array


def _is_integer_valued(array: np.ndarray) -> bool:
    return bool(np.issubdtype(array.dtype, np.integer) or array.dtype == bool) or bool(
        np.all(array == np.round(array))
    )


def infer_data_range(array: np.ndarray) -> tuple[float, float]:
    """``(0, 1)`` for data within [0, 1], ``(0, 255)`` for 8-bit integer images.

    Raises:
        ValueError: when the range is ambiguous, asking for ``data_range``.

    Examples:
        >>> infer_data_range(np.array([[0.0, 0.25], [0.5, 1.0]]))
        (0.0, 1.0)
        >>> infer_data_range(np.array([[0, 17], [3, 200]], dtype=np.uint8))
        (0.0, 255.0)
    """
    return infer_range(float(array.min()), float(array.max()), _is_integer_valued(array))


def infer_range(low: float, high: float, integer: bool) -> tuple[float, float]:
    """:func:`infer_data_range` from the values' extremes and whether all are integers.

    Examples:
        >>> infer_range(0.0, 200.0, True)
        (0.0, 255.0)
    """
    if low >= 0 and high <= 1:
        return (0.0, 1.0)
    if integer and low >= 0 and 127 < high <= 255:
        return (0.0, 255.0)
    raise ValueError(
        f"Cannot infer the range of the image values (they lie in [{low:g}, {high:g}]). "
        "Pass data_range=(low, high), for example data_range=(0, 16) for scikit-learn's digits."
    )


@dataclass
class TableScaler:
    """Per-feature standardisation ``(x - mean) / scale`` of ``(n, d)`` tables.

    ``model_bounds`` is the box, in model units, that samplers keep chains in by default:
    the largest standardised value seen in ``fit`` plus ``bounds_margin`` standard
    deviations. It is the table analogue of the released code's clamp of pixels to
    [-1, 1]: without it, a flow that learns from its own revised samples can feed on
    its own tails and drift away from the data. ``columns`` says which columns are
    discrete, integers or levels (dequantised: ``dequantize_width`` is their interval's
    width in model units, 0 elsewhere) and the bounds that ``to_data`` restores
    (``None``: every column continuous and unbounded).

    Examples:
        >>> scaler = TableScaler.fit(np.array([[0.5, 10.5], [2.5, 30.5]]))
        >>> scaler.to_model(np.array([[1.5, 20.5]]))
        array([[0., 0.]])
        >>> scaler.to_data(np.array([[1.0, 1.0]]))
        array([[ 2.5, 30.5]])
        >>> scaler.model_bounds
        (-2.0, 2.0)
    """

    bounds_margin: ClassVar[float] = 1.0

    mean: np.ndarray
    scale: np.ndarray
    model_bounds: tuple[float, float]
    kind: Kind = "table"
    columns: Columns | None = None

    @classmethod
    def fit(cls, X: np.ndarray, column_types: str | Sequence[Any] = "auto") -> TableScaler:
        """The scaling of the table ``X`` ``(n, d)``; a constant feature keeps scale 1.
        ``column_types`` describes the columns (:class:`~coopkit.columns.Columns`)."""
        integral = np.all(np.round(X) == X, axis=0)
        lattices = [lattice_of(np.unique(column), len(X)) for column in X.T]
        columns = Columns.detect(X.min(axis=0), X.max(axis=0), integral, column_types, lattices)
        return cls.from_moments(
            X.mean(axis=0), X.std(axis=0), X.min(axis=0), X.max(axis=0), columns
        )

    @classmethod
    def from_moments(
        cls,
        mean: np.ndarray,
        std: np.ndarray,
        minimum: np.ndarray,
        maximum: np.ndarray,
        columns: Columns,
    ) -> TableScaler:
        """The scaling of a table with these per-column moments and extremes; the box
        holds every value and, in discrete columns, the top of its interval."""
        scale = np.where(std > 0, std, 1.0)
        top = maximum + columns.step
        reach = float((np.maximum(top - mean, mean - minimum) / scale).max()) + cls.bounds_margin
        return cls(mean, scale, (-reach, reach), columns=columns if columns.constrained else None)

    @property
    def dequantize_width(self) -> float | tuple[float, ...]:
        """Per column, the width of a value's interval in model units in discrete
        columns (integer or levels), 0 in continuous ones; 0 when none is discrete."""
        if self.columns is None or not self.columns.discrete:
            return 0.0
        return tuple((self.columns.step / self.scale).tolist())

    @property
    def input_shape(self) -> tuple[int, ...]:
        """One sample's shape, ``(d,)``."""
        return (self.mean.shape[0],)

    @property
    def event_shape(self) -> tuple[int, ...]:
        """One sample's shape in model units, ``(d,)``."""
        return self.input_shape

    def to_model(self, X: np.ndarray) -> np.ndarray:
        """Model units ``(n, d)`` of data ``(n, d)``."""
        return (X - self.mean) / self.scale

    def described(self) -> dict[str, object]:
        """What ``settings_`` reports of the scaling: per column its type and bounds."""
        columns = self.columns or Columns.unconstrained(len(self.mean))
        return {"column_types": columns.describe()}

    def to_data(self, V: np.ndarray) -> np.ndarray:
        """Data units of model-unit values ``(n, d)``, in the columns' own form."""
        X = V * self.scale + self.mean
        return X if self.columns is None else self.columns.restore(X)

    def log_abs_det(self) -> float:
        """``log |det ∂v/∂x|`` of the data → model map, per sample."""
        return float(-np.log(self.scale).sum())


@dataclass
class ImageScaler:
    """Linear map of images from ``data_range`` to [-1, 1], with dequantisation.

    ``input_shape`` is one sample's shape as given, ``(h, w)`` or ``(c, h, w)``;
    ``event_shape`` is always ``(c, h, w)``. For integer-valued data with levels
    ``low .. high``, ``to_model`` returns the lower edge of each level's interval and
    ``dequantize_width`` its width in model units; a sample's value ``v`` maps back to
    the level whose interval holds it, as a float (``v`` at an interval's centre maps
    to the integer, up to rounding).

    Examples:
        >>> X = np.array([[[0, 8, 16]]])  # one 1x3 image with levels 0..16
        >>> scaler = ImageScaler.fit(X, data_range=(0, 16))
        >>> scaler.event_shape, scaler.integer
        ((1, 1, 3), True)
        >>> V = scaler.to_model(X)  # lower edges of the levels' intervals in [-1, 1]
        >>> np.allclose(scaler.to_data(V + scaler.dequantize_width / 2), X)  # the centres
        True
    """

    input_shape: tuple[int, ...]
    data_range: tuple[float, float]
    integer: bool
    kind: Kind = "image"
    model_bounds: tuple[float, float] = (-1.0, 1.0)

    @classmethod
    def fit(cls, X: np.ndarray, data_range: tuple[float, float] | None) -> ImageScaler:
        """The scaling of the images ``X``; ``data_range=None`` infers it
        (:func:`infer_data_range`). A ValueError if ``X`` leaves the range."""
        if data_range is None:
            data_range = infer_data_range(X)
        extremes = (float(X.min()), float(X.max()))
        return cls.checked(tuple(X.shape[1:]), data_range, extremes, _is_integer_valued(X))

    @classmethod
    def checked(
        cls,
        input_shape: tuple[int, ...],
        data_range: tuple[float, float],
        extremes: tuple[float, float],
        integer: bool,
    ) -> ImageScaler:
        """The scaling of images of ``input_shape`` whose values span ``extremes``; a
        ValueError if ``data_range`` is not a range or does not hold them."""
        low, high = (float(v) for v in data_range)
        if not low < high:
            raise ValueError(f"data_range must be (low, high) with low < high; got {data_range}.")
        if extremes[0] < low or extremes[1] > high:
            raise ValueError(
                f"X has values in [{extremes[0]:g}, {extremes[1]:g}], outside data_range="
                f"({low:g}, {high:g}). Pass the range that holds the data."
            )
        return cls(input_shape, (low, high), integer)

    @property
    def event_shape(self) -> tuple[int, ...]:
        """One sample's shape in model units, ``(c, h, w)`` (``c = 1`` for ``(h, w)`` input)."""
        return self.input_shape if len(self.input_shape) == 3 else (1, *self.input_shape)

    @property
    def _span(self) -> float:
        low, high = self.data_range
        return high - low + 1 if self.integer else high - low

    @property
    def dequantize_width(self) -> float:
        """Width of one level's interval in model units; 0 for continuous data."""
        return 2.0 / self._span if self.integer else 0.0

    def to_model(self, X: np.ndarray) -> np.ndarray:
        """Model units ``(n, c, h, w)`` of data shaped ``(n, *input_shape)``."""
        V = 2.0 * (X - self.data_range[0]) / self._span - 1.0
        return V.reshape(len(X), *self.event_shape)

    def described(self) -> dict[str, object]:
        """What ``settings_`` reports of the scaling: nothing beyond the parameters."""
        return {}

    def to_data(self, V: np.ndarray) -> np.ndarray:
        """Data units, shaped ``(n, *input_shape)``, of model-unit images ``(n, c, h, w)``."""
        low, high = self.data_range
        X = (V + 1.0) / 2.0 * self._span + low
        if self.integer:
            X = X - 0.5
        return np.clip(X, low, high).reshape(len(V), *self.input_shape)

    def log_abs_det(self) -> float:
        """``log |det ∂v/∂x|`` of the data → model map, per sample."""
        return math.prod(self.event_shape) * math.log(2.0 / self._span)


Scaler = TableScaler | ImageScaler


def scaler_to_dict(scaler: Scaler) -> dict[str, object]:
    """Plain values (lists, floats, strings) that :func:`scaler_from_dict` rebuilds from.

    Examples:
        >>> scaler_to_dict(fit_scaler(np.zeros((2, 4, 4)), data_range=(0, 1)))
        {'kind': 'image', 'input_shape': [4, 4], 'data_range': [0.0, 1.0], 'integer': True}
    """
    if isinstance(scaler, TableScaler):
        state = {
            "kind": "table",
            "mean": scaler.mean.tolist(),
            "scale": scaler.scale.tolist(),
            "model_bounds": list(scaler.model_bounds),
        }
        return state if scaler.columns is None else {**state, "columns": scaler.columns.to_dict()}
    return {
        "kind": "image",
        "input_shape": list(scaler.input_shape),
        "data_range": list(scaler.data_range),
        "integer": scaler.integer,
    }


def scaler_from_dict(state: dict[str, object]) -> Scaler:
    """The scaler that :func:`scaler_to_dict` described.

    Examples:
        >>> scaler = fit_scaler(np.array([[0.0, 1.0], [2.0, 5.0]]))
        >>> scaler_from_dict(scaler_to_dict(scaler)).to_model(np.array([[1.0, 3.0]]))
        array([[0., 0.]])
    """
    if state["kind"] == "table":
        low, high = state["model_bounds"]  # type: ignore[misc]
        return TableScaler(
            np.asarray(state["mean"], dtype=np.float64),
            np.asarray(state["scale"], dtype=np.float64),
            (float(low), float(high)),
            columns=Columns.from_dict(state["columns"]) if "columns" in state else None,  # type: ignore[arg-type]
        )
    low, high = state["data_range"]  # type: ignore[misc]
    return ImageScaler(
        tuple(state["input_shape"]),  # type: ignore[arg-type]
        (float(low), float(high)),
        bool(state["integer"]),
    )


def fit_scaler(
    X: np.ndarray,
    data_range: tuple[float, float] | None = None,
    column_types: str | Sequence[Any] = "auto",
) -> Scaler:
    """The scaler for ``X``: a table for 2-D arrays (with ``column_types``), images for
    3-D and 4-D ones (with ``data_range``).

    Examples:
        >>> type(fit_scaler(np.zeros((5, 3)))).__name__
        'TableScaler'
        >>> fit_scaler(np.zeros((5, 8, 8)), data_range=(0, 16)).event_shape
        (1, 8, 8)
    """
    if X.ndim == 2:
        return TableScaler.fit(X, column_types)
    return ImageScaler.fit(X, data_range)


def check_shape(X: np.ndarray, scaler: Scaler, *, name: str = "X") -> None:
    """Raise a ValueError when one sample of ``X`` is not shaped as in ``fit``.

    Examples:
        >>> scaler = fit_scaler(np.zeros((5, 3)))
        >>> check_shape(np.zeros((2, 3)), scaler)  # fine: nothing happens
        >>> try:
        ...     check_shape(np.zeros((2, 4)), scaler)
        ... except ValueError as exc:
        ...     print(exc)
        X has 4 features, but CoopFlow is expecting 3 features as input.
    """
    if tuple(X.shape[1:]) == scaler.input_shape:
        return
    if X.ndim == 2 and len(scaler.input_shape) == 1:
        raise ValueError(
            f"{name} has {X.shape[1]} features, but CoopFlow is expecting "
            f"{scaler.input_shape[0]} features as input."
        )
    raise ValueError(
        f"{name} has samples of shape {tuple(X.shape[1:])}, but the model was fitted on "
        f"samples of shape {scaler.input_shape}."
    )


def data_kind(shape: tuple[int, ...]) -> Kind:
    """The kind of data of ``shape`` (``(n, *sample_shape)``), which picks its ``"auto"``
    settings and its scaler: ``"table"`` for ``(n, d)``, ``"image"`` otherwise.

    Examples:
        >>> data_kind((100, 2)), data_kind((100, 28, 28))
        ('table', 'image')
    """
    return "table" if len(shape) == 2 else "image"


def data_fingerprint(X: np.ndarray) -> list[float]:
    """Shape and two moments of ``X``: enough to tell a checkpoint's data from other data
    (``fit(X, resume=...)`` refuses a checkpoint of other data).

    Examples:
        >>> data_fingerprint(np.full((2, 3), 2.0))
        [2.0, 3.0, 12.0, 24.0]
    """
    values = np.asarray(X, dtype=np.float64)
    return [*map(float, values.shape), float(values.sum()), float((values**2).sum())]
