"""Pictures of what a model learned: sample panels and training curves (matplotlib).

Figures are built with matplotlib's object API (no pyplot, no display needed) and
written atomically: to a temporary file first, then renamed over the target.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from coopkit.files import atomic_path

if TYPE_CHECKING:
    from matplotlib.figure import Figure

CURVES = {
    "flow_nll": "flow NLL of revised samples",
    "energy_data": "mean energy of data",
    "energy_revised": "mean energy of revised samples",
    "revision": "size of the Langevin revision",
}


def image_grid(images: np.ndarray, n_columns: int | None = None) -> np.ndarray:
    """Tile ``(n, h, w)`` or ``(n, c, h, w)`` images into one ``(H, W[, c])`` array.

    Examples:
        >>> image_grid(np.zeros((6, 8, 8)), n_columns=3).shape
        (19, 28)
    """
    if images.ndim == 4:
        images = images.transpose(0, 2, 3, 1)
        if images.shape[-1] == 1:
            images = images[..., 0]
    n, h, w = images.shape[:3]
    cols = n_columns or math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    grid = np.full((rows * (h + 1) + 1, cols * (w + 1) + 1, *images.shape[3:]), np.nan)
    for i, image in enumerate(images):
        r, c = divmod(i, cols)
        grid[1 + r * (h + 1) : 1 + r * (h + 1) + h, 1 + c * (w + 1) : 1 + c * (w + 1) + w] = image
    return grid


def _save(figure: Figure, path: Path) -> Path:
    with atomic_path(path) as tmp:
        figure.savefig(tmp, dpi=120, bbox_inches="tight")
    return path


def save_panels(
    path: str | Path,
    panels: Sequence[tuple[str, np.ndarray]],
    value_range: tuple[float, float] | None = None,
    n_columns: int | None = None,
) -> Path:
    """One figure with a panel per ``(title, samples)``: image grids for images, scatter
    plots for 2-D tables. ``value_range`` fixes the grey scale of image panels and
    ``n_columns`` their grids' width (default: square grids).

    Examples:
        >>> import tempfile
        >>> out = Path(tempfile.mkdtemp())
        >>> images = np.random.default_rng(0).uniform(0, 16, size=(16, 8, 8))
        >>> points = np.random.default_rng(0).normal(size=(100, 2))
        >>> save_panels(out / "panels.png", [("images", images), ("points", points)]).name
        'panels.png'
    """
    from matplotlib.figure import Figure

    figure = Figure(figsize=(4 * len(panels), 4.2 if n_columns is None else 2.0))
    axes = figure.subplots(1, len(panels), squeeze=False)[0]
    for ax, (title, samples) in zip(axes, panels, strict=True):
        if samples.ndim == 2:
            ax.scatter(samples[:, 0], samples[:, 1], s=2, alpha=0.5)
            ax.set_aspect("equal")
        else:
            low, high = value_range or (float(samples.min()), float(samples.max()))
            ax.imshow(image_grid(samples, n_columns), cmap="gray_r", vmin=low, vmax=high)
            ax.set_axis_off()
        ax.set_title(title)
    return _save(figure, Path(path))


def save_training_curves(path: str | Path, history: Mapping[str, Sequence[float]]) -> Path:
    """The training curves of :attr:`CoopFlow.history_`, one panel per recorded quantity.

    Examples:
        >>> import tempfile
        >>> history = {"iteration": [0.0, 1.0, 2.0], "pretrain": [0.0, 0.0, 0.0],
        ...            "flow_nll": [2.0, 1.6, 1.5], "revision": [0.3, 0.2, 0.2]}
        >>> save_training_curves(Path(tempfile.mkdtemp()) / "training.png", history).name
        'training.png'
    """
    from matplotlib.figure import Figure

    names = [name for name in CURVES if history.get(name)]
    figure = Figure(figsize=(4 * len(names), 3.2))
    axes = figure.subplots(1, len(names), squeeze=False)[0]
    pretrain = np.asarray(history["pretrain"], dtype=bool)
    iterations = np.asarray(history["iteration"])
    for ax, name in zip(axes, names, strict=True):
        steps = iterations if len(history[name]) == len(iterations) else iterations[~pretrain]
        ax.plot(steps, history[name], linewidth=0.8)
        ax.set_title(CURVES[name])
        ax.set_xlabel("iteration")
    return _save(figure, Path(path))
