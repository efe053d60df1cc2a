"""Small data sets the tests share."""

from __future__ import annotations

import numpy as np


def two_blobs(n: int, seed: int) -> np.ndarray:
    """Two Gaussian blobs at (-2, 0) and (2, 0), standard deviation 0.3."""
    rng = np.random.default_rng(seed)
    centres = np.where(rng.random(n) < 0.5, -2.0, 2.0)
    return np.column_stack([centres, np.zeros(n)]) + 0.3 * rng.standard_normal((n, 2))
