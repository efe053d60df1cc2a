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


@dataclass(frozen=True)
class Columns:
    """Per column of a ``(n, d)`` table: whether it is ``integer`` and its bounds
    ``low``, ``high`` in data units (``(d,)`` arrays; ``±inf`` where unbounded)."""

    integer: np.ndarray
    low: np.ndarray
    high: np.ndarray

    @classmethod
    def detect(
        cls,
        minimum: np.ndarray,
        maximum: np.ndarray,
        integral: np.ndarray,
        column_types: str | Sequence[Any] = "auto",
    ) -> Columns:
        """The columns of a table whose columns span ``minimum``..``maximum`` and hold
        only whole numbers where ``integral`` (``(d,)`` arrays), as ``column_types``
        says (the module's rules).

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
        integer, low, high = np.zeros(d, bool), np.full(d, -math.inf), np.full(d, math.inf)
        for j, spec in enumerate(specs):
            if spec == "auto":
                spec = "integer" if integral[j] else _detected_range(minimum[j], maximum[j])
            if spec == "integer":
                integer[j], low[j], high[j] = True, minimum[j], maximum[j]
            elif spec != "float":
                low[j], high[j] = (float(v) for v in spec)
                if minimum[j] < low[j] or maximum[j] > high[j]:
                    raise ValueError(
                        f"column {j} has values in [{minimum[j]:g}, {maximum[j]:g}], outside "
                        f"its column_types range {tuple(spec)}; pass a range that holds them."
                    )
        return cls(integer, low, high)

    @classmethod
    def unconstrained(cls, d: int) -> Columns:
        """``d`` continuous, unbounded columns (``column_types="float"``)."""
        return cls(np.zeros(d, dtype=bool), np.full(d, -math.inf), np.full(d, math.inf))

    @property
    def any_integer(self) -> bool:
        return bool(self.integer.any())

    @property
    def constrained(self) -> bool:
        """Whether any column is an integer or bounded (else a scaler needs none)."""
        bounded = np.isfinite(self.low).any() or np.isfinite(self.high).any()
        return self.any_integer or bool(bounded)

    def restore(self, X: np.ndarray) -> np.ndarray:
        """Samples ``(n, d)`` in data units in their columns' own form: whole numbers in
        integer columns, every column within its bounds."""
        X = np.where(self.integer, np.floor(X), X)
        return np.clip(X, self.low, self.high)

    def describe(self) -> list[dict[str, Any]]:
        """Per column, its ``type`` (``"integer"`` or ``"float"``) and ``bounds``
        (``settings_["column_types"]``)."""
        return [
            {"type": "integer" if i else "float", "bounds": (float(lo), float(hi))}
            for i, lo, hi in zip(self.integer, self.low, self.high, strict=True)
        ]

    def to_dict(self) -> dict[str, list[Any]]:
        return {
            "integer": self.integer.tolist(),
            "low": self.low.tolist(),
            "high": self.high.tolist(),
        }

    @classmethod
    def from_dict(cls, state: dict[str, list[Any]]) -> Columns:
        return cls(
            np.asarray(state["integer"], dtype=bool),
            np.asarray(state["low"], dtype=np.float64),
            np.asarray(state["high"], dtype=np.float64),
        )


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
