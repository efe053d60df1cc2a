"""Small built-in data sets: 2-D toy shapes and scikit-learn's 8x8 digits (no download)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def eight_gaussians(n: int, random_state: int | None = None) -> np.ndarray:
    """``(n, 2)`` points around eight centres on a circle of radius 2, noise 0.1.

    Examples:
        >>> eight_gaussians(500, random_state=0).shape
        (500, 2)
    """
    rng = np.random.RandomState(random_state)
    angles = np.arange(8) * np.pi / 4
    centres = 2.0 * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    return centres[rng.randint(8, size=n)] + 0.1 * rng.randn(n, 2)


def moons(n: int, random_state: int | None = None) -> np.ndarray:
    """``(n, 2)`` two interleaving half circles (scikit-learn's ``make_moons``, noise 0.05).

    Examples:
        >>> moons(500, random_state=0).shape
        (500, 2)
    """
    from sklearn.datasets import make_moons

    return make_moons(n, noise=0.05, random_state=random_state)[0]


def circles(n: int, random_state: int | None = None) -> np.ndarray:
    """``(n, 2)`` two concentric rings of radii 1 and 2, noise 0.05.

    Examples:
        >>> circles(500, random_state=0).shape
        (500, 2)
    """
    rng = np.random.RandomState(random_state)
    radius = rng.choice([1.0, 2.0], size=n)
    angle = rng.uniform(0, 2 * np.pi, size=n)
    ring = radius[:, None] * np.stack([np.cos(angle), np.sin(angle)], axis=1)
    return ring + 0.05 * rng.randn(n, 2)


def checkerboard(n: int, random_state: int | None = None) -> np.ndarray:
    """``(n, 2)`` points uniform on the black squares of a 4x4 board on [-2, 2]².

    Examples:
        >>> checkerboard(500, random_state=0).shape
        (500, 2)
    """
    rng = np.random.RandomState(random_state)
    x1 = rng.uniform(-2, 2, size=n)
    x2 = rng.uniform(0, 1, size=n) + rng.randint(-2, 2, size=n)
    x2 = x2 + (np.floor(x1) % 2 == np.floor(x2) % 2) * 1.0
    return np.stack([x1, (x2 + 2) % 4 - 2], axis=1)


def digits() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's digits as ``(1797, 8, 8)`` images with values 0..16, and labels.

    Examples:
        >>> images, labels = digits()
        >>> images.shape, labels.shape, float(images.max())
        ((1797, 8, 8), (1797,), 16.0)
    """
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return bunch.images, bunch.target


TOY_SETS: dict[str, Callable[[int, int | None], np.ndarray]] = {
    "eight_gaussians": eight_gaussians,
    "moons": moons,
    "circles": circles,
    "checkerboard": checkerboard,
}


def load_toy(name: str, n: int, random_state: int | None = None) -> np.ndarray:
    """``n`` samples of the 2-D toy set ``name`` (one of :data:`TOY_SETS`).

    Examples:
        >>> load_toy("circles", 5, random_state=0).shape
        (5, 2)
    """
    if name not in TOY_SETS:
        raise ValueError(f"Unknown toy data set {name!r}; choose one of {', '.join(TOY_SETS)}.")
    return TOY_SETS[name](n, random_state)
