from __future__ import annotations

from pathlib import Path

import numpy as np

from coopkit.plots import image_grid, save_panels, save_training_curves


def test_image_grid_places_each_image() -> None:
    images = np.arange(3 * 2 * 2, dtype=float).reshape(3, 2, 2)
    grid = image_grid(images, n_columns=2)
    assert grid.shape == (7, 7)
    assert np.array_equal(grid[1:3, 4:6], images[1])
    assert np.array_equal(grid[4:6, 1:3], images[2])
    assert np.isnan(grid[4:6, 4:6]).all()


def test_figures_are_written_as_png(tmp_path: Path) -> None:
    history = {
        "iteration": [0.0, 1.0, 2.0],
        "pretrain": [1.0, 0.0, 0.0],
        "flow_nll": [3.0, 2.0, 1.0],
        "energy_data": [0.1, 0.2],
    }
    panels = save_panels(tmp_path / "p.png", [("a", np.zeros((4, 8, 8))), ("b", np.zeros((10, 2)))])
    curves = save_training_curves(tmp_path / "c.png", history)
    for path in (panels, curves):
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
