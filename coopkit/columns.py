r"""Integer and bounded table columns: detected, dequantised for training, restored.

A table's columns are often counts, ratings, ages or 0/1 flags. A flow is a density on
:math:`\mathbb R^d`; fitted to integers as they are, it piles its mass onto a lattice
and its likelihood grows without bound. As for image pixels (:mod:`coopkit.data`), an
integer column is *dequantised*: value :math:`k` stands for the interval
:math:`[k, k + 1)`, training draws a fresh uniform point in it for every batch, and a
sample :math:`x` maps back to :math:`\lfloor x \rfloor`. The flow's likelihood of the
dequantised data is a lower bound on the discrete one (Theis, van den Oord & Bethge,
2016).

With ``column_types="auto"`` each column is described from its values:

* **integer** when every value is a whole number: dequantised, and its samples are
  whole numbers in the range seen in ``fit`` (a 0/1 flag stays 0 or 1, a rating 1..5
  stays in 1..5);
* **levels** when its values are few and evenly spaced but not whole numbers (a 0/1
  flag after standardising, a rating coded 0, 0.25, .., 1): at most
  :data:`MAX_LEVELS` distinct values, at least :data:`ROWS_PER_LEVEL` rows for each,
  every gap a whole multiple of the smallest. Such a column is an integer column in
  units of its spacing: value :math:`v` stands for :math:`[v, v + \delta)`, and its
  samples are its own levels;
* **float** otherwise: continuous, bounded below by 0 when no value is negative and
  within [0, 1] when every value lies there (proportions); samples are clipped to the
  bounds.

``column_types`` overrides it: ``"float"`` for every column continuous and unbounded
(no detection), or one entry per column: ``"auto"``, ``"float"`` (unbounded),
``"integer"`` or a ``(low, high)`` range of a continuous column (``±inf`` for an open
side).

References:
    Xie, Zhu, Li & Li, "A Tale of Two Flows: Cooperative Learning of Langevin Flow and
    Normalizing Flow Toward Energy-Based Model", ICLR 2022.
    https://arxiv.org/abs/2205.06924

    Theis, van den Oord & Bethge, "A note on the evaluation of generative models",
    ICLR 2016. https://arxiv.org/abs/1511.01844

Examples:
    >>> X = np.array([[0.5, 3, 1], [1.5, 0, 0], [2.25, 7, 1]])
    >>> columns = Columns.detect(X.min(0), X.max(0), np.all(X == np.round(X), axis=0))
    >>> columns.describe()[1:]
    [{'type': 'integer', 'bounds': (0.0, 7.0)}, {'type': 'integer', 'bounds': (0.0, 1.0)}]
    >>> columns.restore(np.array([[-0.3, 3.9, 1.7]]))
    array([[0., 3., 1.]])
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

COLUMN_TYPES = ("auto", "float", "integer")
MAX_LEVELS = 16
ROWS_PER_LEVEL = 4
Lattice = tuple[float, float]


@dataclass(frozen=True)
class Columns:
    """Per column of a ``(n, d)`` table: the spacing ``step`` of its values (1 in an
    integer column, the levels' spacing in a levels column, 0 in a continuous one),
    the ``origin`` its values are whole multiples of ``step`` from, and its bounds
    ``low``, ``high`` in data units (``(d,)`` arrays; ``±inf`` where unbounded)."""

    step: np.ndarray
    origin: np.ndarray
    low: np.ndarray
    high: np.ndarray

    @classmethod
    def detect(
        cls,
        minimum: np.ndarray,
        maximum: np.ndarray,
        integral: np.ndarray,
        column_types: str | Sequence[Any] = "auto",
        lattices: Sequence[Lattice | None] | None = None,
    ) -> Columns:
        """The columns of a table whose columns span ``minimum``..``maximum`` and hold
        only whole numbers where ``integral`` (``(d,)`` arrays), as ``column_types``
        says (the module's rules); ``lattices`` has, per column, the ``(origin, step)``
        of its levels (:func:`lattice_of`) or ``None``.

        Raises:
            ValueError: a list of the wrong length, or a range that does not hold its
                column's values.
        """
        d = len(minimum)
        specs = [column_types] * d if isinstance(column_types, str) else list(column_types)
        if len(specs) != d:
            raise ValueError(
                f"column_types has {len(specs)} entries but X has {d} columns; give one "
                "entry per column ('auto', 'float', 'integer' or (low, high)), or 'auto'."
            )
        lattices = lattices or [None] * d
        step, origin = np.zeros(d), np.zeros(d)
        low, high = np.full(d, -math.inf), np.full(d, math.inf)
        for j, spec in enumerate(specs):
            if spec == "auto" and not integral[j] and lattices[j] is not None:
                (origin[j], step[j]), low[j], high[j] = lattices[j], minimum[j], maximum[j]
                continue
            if spec == "auto":
                spec = "integer" if integral[j] else _detected_range(minimum[j], maximum[j])
            if spec == "integer":
                step[j], low[j], high[j] = 1.0, minimum[j], maximum[j]
            elif spec != "float":
                low[j], high[j] = (float(v) for v in spec)
                if minimum[j] < low[j] or maximum[j] > high[j]:
                    raise ValueError(
                        f"column {j} has values in [{minimum[j]:g}, {maximum[j]:g}], outside "
                        f"its column_types range {tuple(spec)}; pass a range that holds them."
                    )
        return cls(step, origin, low, high)

    @classmethod
    def unconstrained(cls, d: int) -> Columns:
        """``d`` continuous, unbounded columns (``column_types="float"``)."""
        return cls(np.zeros(d), np.zeros(d), np.full(d, -math.inf), np.full(d, math.inf))

    @property
    def discrete(self) -> bool:
        """Whether any column is dequantised (an integer or a levels column)."""
        return bool((self.step > 0).any())

    @property
    def constrained(self) -> bool:
        """Whether any column is discrete or bounded (else a scaler needs none)."""
        bounded = np.isfinite(self.low).any() or np.isfinite(self.high).any()
        return self.discrete or bool(bounded)

    def restore(self, X: np.ndarray) -> np.ndarray:
        """Samples ``(n, d)`` in data units in their columns' own form: the value whose
        interval holds it in a discrete column, every column within its bounds."""
        discrete = self.step > 0
        spacing = np.where(discrete, self.step, 1.0)
        # A value at its level, in floating point, may sit a hair below it.
        floored = self.origin + spacing * np.floor((X - self.origin) / spacing + 1e-9)
        # The top level as seen, not as origin + k·step rounds it.
        floored = np.where(np.abs(floored - self.high) < 1e-6 * spacing, self.high, floored)
        return np.clip(np.where(discrete, floored, X), self.low, self.high)

    def describe(self) -> list[dict[str, Any]]:
        """Per column, its ``type`` (``"integer"``, ``"levels"`` or ``"float"``) and
        ``bounds``, and a levels column's ``step`` (``settings_["column_types"]``)."""
        described = []
        for step, origin, lo, hi in zip(self.step, self.origin, self.low, self.high, strict=True):
            bounds = {"bounds": (float(lo), float(hi))}
            if step == 1 and origin == 0:
                described.append({"type": "integer", **bounds})
            elif step > 0:
                described.append({"type": "levels", **bounds, "step": float(step)})
            else:
                described.append({"type": "float", **bounds})
        return described

    def to_dict(self) -> dict[str, list[Any]]:
        return {name: getattr(self, name).tolist() for name in ("step", "origin", "low", "high")}

    @classmethod
    def from_dict(cls, state: dict[str, list[Any]]) -> Columns:
        """The columns ``to_dict`` gave (or an older save's, which had ``integer``)."""
        if "integer" in state:
            step = np.asarray(state["integer"], dtype=np.float64)
            state = {**state, "step": step.tolist(), "origin": np.zeros_like(step).tolist()}
        return cls(*(np.asarray(state[n], np.float64) for n in ("step", "origin", "low", "high")))


def lattice_of(values: np.ndarray, n_rows: int) -> Lattice | None:
    """``(origin, step)`` when the sorted distinct ``values`` of a column of ``n_rows``
    rows are levels (the module's rule), else ``None``.

    Examples:
        >>> lattice_of(np.array([-0.5, 0.5, 2.5]), 100), lattice_of(np.array([0.0, 0.3, 1.0]), 100)
        ((-0.5, 1.0), None)
    """
    k = len(values)
    if not 2 <= k <= MAX_LEVELS or k * ROWS_PER_LEVEL > n_rows:
        return None
    gaps = np.diff(values)
    step = float(gaps.min())
    multiples = gaps / step
    if not np.allclose(multiples, np.round(multiples), rtol=0, atol=1e-6):
        return None
    return float(values[0]), step


def _detected_range(minimum: float, maximum: float) -> str | tuple[float, float]:
    """A continuous column's detected bounds: [0, 1], [0, inf) or none (``"float"``)."""
    if minimum < 0:
        return "float"
    return (0.0, 1.0) if maximum <= 1 else (0.0, math.inf)


def is_column_types(value: Any) -> bool:
    """Whether ``value`` is a valid ``column_types``: ``"auto"``, ``"float"``, or a list
    of ``"auto"``, ``"float"``, ``"integer"`` and ``(low, high)`` ranges."""
    if isinstance(value, str):
        return value in ("auto", "float")
    if not isinstance(value, (list, tuple)) or not value:
        return False
    return all(_is_column_spec(spec) for spec in value)


def _is_column_spec(spec: Any) -> bool:
    if isinstance(spec, str):
        return spec in COLUMN_TYPES
    return (
        isinstance(spec, (list, tuple))
        and len(spec) == 2
        and all(isinstance(v, (int, float, np.number)) and not isinstance(v, bool) for v in spec)
        and float(spec[0]) < float(spec[1])
    )
