"""Training data larger than memory: memory-mapped arrays and torch Datasets.

``CoopFlow.fit`` copies an ordinary array to the device once. A ``np.memmap`` (as from
``np.load(path, mmap_mode="r")``) or a :class:`torch.utils.data.Dataset` is instead read
batch by batch: :class:`Rows` gives random access to its samples, :func:`summarize`
computes in one streaming pass what the scaling needs (range, integer levels, per-feature
moments), and :class:`DeviceBatches` is what the training loop indexes, each batch read,
scaled to model units and moved to the device when it is drawn. Memory then holds a few
batches, whatever the size of the data.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from coopkit.columns import MAX_LEVELS, Columns, lattice_of
from coopkit.data import (
    ImageScaler,
    Scaler,
    TableScaler,
    check_array,
    data_fingerprint,
    fit_scaler,
    infer_range,
)

SUMMARY_CHUNK = 1024


def is_streamed(X: Any) -> bool:
    """Whether ``fit`` reads ``X`` batch by batch instead of copying it.

    Examples:
        >>> dataset = torch.utils.data.TensorDataset(torch.zeros(3))
        >>> is_streamed(np.zeros((3, 2))), is_streamed(dataset)
        (False, True)
    """
    return isinstance(X, (np.memmap, Dataset))


def _sample_array(item: Any) -> np.ndarray:
    """One sample of a Dataset as an array: the item itself, or the first element of an
    ``(image, label)`` pair."""
    if isinstance(item, (tuple, list)):
        item = item[0]
    if isinstance(item, Tensor):
        item = item.detach().cpu().numpy()
    return np.asarray(item)


class Rows:
    """Random access to the samples of a memory-mapped array or a Dataset.

    ``shape`` and ``ndim`` are those of the whole data, ``(n, *sample_shape)``, as for an
    array, or of its rows ``index`` only (positions into ``X``). ``read(indices)`` returns
    ``(k, *sample_shape)`` samples, checked like ``fit`` checks an array (numbers, finite).

    Examples:
        >>> rows = Rows(torch.utils.data.TensorDataset(torch.arange(12.0).reshape(6, 2)))
        >>> rows.shape, rows.read(np.array([4, 1])).tolist()
        ((6, 2), [[8.0, 9.0], [2.0, 3.0]])
    """

    def __init__(
        self, X: np.memmap | Dataset, name: str = "X", index: np.ndarray | None = None
    ) -> None:
        self.X, self.name, self.index = X, name, index
        n = len(X) if index is None else len(index)  # type: ignore[arg-type]
        if n == 0:
            raise ValueError(f"{name} is empty: 0 samples while a minimum of 1 is required.")
        sample_shape = X.shape[1:] if isinstance(X, np.memmap) else _sample_array(X[0]).shape
        self.shape = (n, *sample_shape)
        self.ndim = len(self.shape)
        if self.ndim not in (2, 3, 4):
            raise ValueError(
                f"{name} must hold table rows (d,) or images (h, w) or (c, h, w); got samples "
                f"of shape {tuple(sample_shape)}."
            )

    def __len__(self) -> int:
        return self.shape[0]

    def read(self, indices: np.ndarray) -> np.ndarray:
        """The samples at ``indices``, ``(k, *sample_shape)``."""
        if self.index is not None:
            indices = self.index[indices]
        if isinstance(self.X, np.memmap):
            order = np.argsort(indices)
            block = np.empty((len(indices), *self.shape[1:]), dtype=self.X.dtype)
            block[order] = self.X[indices[order]]
        else:
            block = np.stack([_sample_array(self.X[int(i)]) for i in indices])
        return check_array(block, name=self.name)

    def chunks(self, size: int = SUMMARY_CHUNK) -> Iterator[np.ndarray]:
        """Consecutive blocks of at most ``size`` samples, in order."""
        for start in range(0, len(self), size):
            yield self.read(np.arange(start, min(start + size, len(self))))


@dataclass
class Summary:
    """What the scaling and the resume check need, from one pass over the data:
    value range, whether every value is an integer, per-feature sums and extremes
    (``(d,)`` arrays over the flattened sample), the fingerprint's totals, and for a
    table each column's distinct values while they are few enough to be levels
    (:func:`coopkit.columns.lattice_of`; ``None`` past that, and for images)."""

    shape: tuple[int, ...]
    low: float
    high: float
    integer: bool
    feature_sum: np.ndarray
    feature_square_sum: np.ndarray
    feature_min: np.ndarray
    feature_max: np.ndarray
    feature_integral: np.ndarray
    feature_levels: list[np.ndarray | None]

    @property
    def fingerprint(self) -> list[float]:
        """As :func:`coopkit.data.data_fingerprint` of the whole array."""
        return [
            *map(float, self.shape),
            float(self.feature_sum.sum()),
            float(self.feature_square_sum.sum()),
        ]


def summarize(rows: Rows, chunk: int = SUMMARY_CHUNK) -> Summary:
    """The :class:`Summary` of ``rows``, reading ``chunk`` samples at a time.

    Examples:
        >>> summary = summarize(Rows(torch.utils.data.TensorDataset(torch.tensor([[0.0], [2.0]]))))
        >>> summary.low, summary.high, summary.integer, summary.fingerprint
        (0.0, 2.0, True, [2.0, 1.0, 2.0, 4.0])
    """
    d = int(np.prod(rows.shape[1:]))
    total, square = np.zeros(d), np.zeros(d)
    low, high = np.full(d, np.inf), np.full(d, -np.inf)
    integral = np.ones(d, dtype=bool)
    table = len(rows.shape) == 2
    levels: list[np.ndarray | None] = [np.empty(0) if table else None] * d
    for block in rows.chunks(chunk):
        flat = block.reshape(len(block), d).astype(np.float64)
        total += flat.sum(axis=0)
        square += (flat**2).sum(axis=0)
        low, high = np.minimum(low, flat.min(axis=0)), np.maximum(high, flat.max(axis=0))
        integral &= np.all(flat == np.round(flat), axis=0)
        if table:
            levels = [_merged_levels(v, c) for v, c in zip(levels, flat.T, strict=True)]
    extremes = (float(low.min()), float(high.max()))
    return Summary(
        rows.shape, *extremes, bool(integral.all()), total, square, low, high, integral, levels
    )


def _merged_levels(seen: np.ndarray | None, column: np.ndarray) -> np.ndarray | None:
    """The distinct values of ``seen`` and ``column``, or ``None`` once there are more
    than a levels column can have."""
    if seen is None:
        return None
    merged = np.union1d(seen, column)
    return merged if len(merged) <= MAX_LEVELS else None


def scaler_from_summary(
    summary: Summary, data_range: tuple[float, float] | None, column_types: Any = "auto"
) -> Scaler:
    """The scaler ``fit_scaler`` would fit on the whole array, from its summary."""
    n = summary.shape[0]
    if len(summary.shape) == 2:
        low, high = summary.feature_min, summary.feature_max
        lattices = [
            None if values is None else lattice_of(values, n) for values in summary.feature_levels
        ]
        columns = Columns.detect(low, high, summary.feature_integral, column_types, lattices)
        mean = summary.feature_sum / n
        std = np.sqrt(np.maximum(summary.feature_square_sum / n - mean**2, 0.0))
        return TableScaler.from_moments(mean, std, low, high, columns)
    if data_range is None:
        data_range = infer_range(summary.low, summary.high, summary.integer)
    return ImageScaler.checked(
        tuple(summary.shape[1:]), data_range, (summary.low, summary.high), summary.integer
    )


class DeviceBatches:
    """What the training loop indexes: ``batches[indices]`` is those samples, scaled to
    model units, as a float32 tensor on ``device``; ``len`` is the number of samples."""

    def __init__(self, rows: Rows, scaler: Scaler, device: torch.device) -> None:
        self.rows, self.scaler, self.device = rows, scaler, device

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, indices: Tensor) -> Tensor:
        block = self.rows.read(indices.cpu().numpy())
        model_units = self.scaler.to_model(block.astype(np.float64))
        return torch.as_tensor(model_units, dtype=torch.float32).to(self.device)


@dataclass
class TrainingData:
    """``fit``'s view of ``X``: its shape ``(n, *sample_shape)`` (and ``ndim``), its
    fingerprint (for resuming), the scaler it implies for a ``data_range`` and a
    ``column_types``, and its
    samples in model units on a device, all at once (``Tensor``) or batch by batch
    (:class:`DeviceBatches`)."""

    shape: tuple[int, ...]
    fingerprint: list[float]
    fit_scaler: Callable[[tuple[float, float] | None, Any], Scaler]
    on_device: Callable[[Scaler, torch.device], Tensor | DeviceBatches]

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __len__(self) -> int:
        return self.shape[0]


def sample_count(X: Any) -> int:
    """The number of samples of an array (checked), a memory-mapped array or a Dataset."""
    return len(Rows(X)) if is_streamed(X) else len(check_array(X))


def read_rows(X: Any, indices: np.ndarray) -> np.ndarray:
    """The samples of ``X`` (an array, a memory-mapped array or a Dataset) at
    ``indices``, as a checked array."""
    if is_streamed(X):
        return Rows(X, index=indices).read(np.arange(len(indices)))
    return check_array(X)[indices]


def split_rows(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Positions of the training and the validation rows among ``n``: a random
    ``fraction`` of them (rounded, at least 1 and leaving 2 to train on) is held out,
    drawn with ``seed``; both sorted.

    Examples:
        >>> train, validation = split_rows(10, 0.2, seed=0)
        >>> len(train), len(validation), sorted([*train, *validation]) == list(range(10))
        (8, 2, True)
    """
    m = min(max(1, round(fraction * n)), n - 2)
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[m:]), np.sort(order[:m])


def training_data(X: Any, rows: np.ndarray | None = None) -> TrainingData:
    """:class:`TrainingData` for an array (checked, then copied to the device in ``fit``)
    or, read batch by batch, a memory-mapped array or a Dataset; of its ``rows`` only
    (positions) when given."""
    if is_streamed(X):
        rows = Rows(X, index=rows)
        summary = summarize(rows)
        return TrainingData(
            rows.shape,
            summary.fingerprint,
            partial(scaler_from_summary, summary),
            lambda scaler, device: DeviceBatches(rows, scaler, device),
        )
    array = check_array(X)
    if rows is not None:
        array = array[rows]

    def on_device(scaler: Scaler, device: torch.device) -> Tensor:
        return torch.as_tensor(scaler.to_model(array), dtype=torch.float32, device=device)

    return TrainingData(
        array.shape,
        data_fingerprint(array),
        partial(fit_scaler, array),
        on_device,
    )
