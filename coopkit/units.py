"""The conversions a fitted CoopFlow's methods share: rows in data units to model
units and back, and how many rows they evaluate at once.

:class:`ModelUnitsMixin` gives :class:`~coopkit.CoopFlow` these private helpers; the
sampling, scoring and reconstruction mixins call them on the estimator.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from sklearn.utils.validation import check_is_fitted

from coopkit.batch_invariance import float64_device
from coopkit.data import check_array, check_shape
from coopkit.validation import seed_from

# Samples evaluated at once without gradients (sampling, scores, log Z): 4 training
# batches, which fit in memory by construction (a Flow++ with self-attention at 32x32
# needs 16 MB per image for its attention maps alone), within these bounds.
_CHUNK = (256, 1024)


class ModelUnitsMixin:
    """``_to_model``, ``_to_data``, ``_chunk`` and ``_generator`` for a fitted CoopFlow."""

    @property
    def _chunk(self) -> int:
        return min(_CHUNK[1], max(_CHUNK[0], 4 * int(self.batch_size)))

    def _generator(self, random_state: Any) -> torch.Generator:
        return torch.Generator().manual_seed(seed_from(random_state))

    def _to_model(self, X: Any, name: str = "X", exact: bool = False) -> torch.Tensor:
        """``X`` checked and in model units; in float64 where ``exact`` (for the float64
        parts of :mod:`coopkit.batch_invariance`)."""
        check_is_fitted(self)
        X = check_array(X, name=name)
        check_shape(X, self.scaler_, name=name)
        V = self.scaler_.to_model(X) + 0.5 * np.asarray(self.scaler_.dequantize_width)
        if exact:
            return torch.as_tensor(V, dtype=torch.float64, device=float64_device(self.device_))
        return torch.as_tensor(V, dtype=torch.float32, device=self.device_)

    def _to_data(self, V: torch.Tensor) -> np.ndarray:
        return self.scaler_.to_data(V.detach().cpu().double().numpy())
