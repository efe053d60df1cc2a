"""Image sets other than the digits, for the image defaults: CoopFlow given only
``n_iter``, ``batch_size`` and ``data_range`` against its flow alone, its short-run EBM
and a full-covariance Gaussian.

Run as a module; ``docs/guide/tuning.md`` ("Images") names the command::

    OMP_NUM_THREADS=1 python -m benchmarks.heldout_images --dataset patches --seeds 0

The sets are made from what scikit-learn ships, so nothing is downloaded:

* ``patches``: 8x8 greyscale patches of the two photographs of
  :func:`sklearn.datasets.load_sample_images`, 8-bit levels 0..255 (natural-image
  statistics: smooth gradients, edges, no empty background);
* ``digits16``: the 8x8 digits enlarged to 16x16 by bilinear interpolation and
  requantised to 0..16 (256 pixels, strokes two pixels wide).

Samples and held-out images are scored by :func:`coopkit.metrics.c2st` on their pixels
(rounded to levels) and the sliced Wasserstein distance, on as many samples as held-out
images.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks.ablation import parse_setting
from benchmarks.common import emit
from benchmarks.digits import NOISE_BASELINE
from coopkit import CoopFlow, metrics

N_HELD_OUT = 1000


def patches(seed: int = 0) -> tuple[np.ndarray, np.ndarray, tuple[float, float]]:
    """4000 training and 1000 held-out 8x8 grey patches (0..255) of the sample photos."""
    from sklearn.datasets import load_sample_images

    rng = np.random.default_rng(seed)
    grey = [image.mean(axis=2) for image in load_sample_images().images]
    drawn = []
    for _ in range(4000 + N_HELD_OUT):
        image = grey[rng.integers(len(grey))]
        row, column = rng.integers(image.shape[0] - 8), rng.integers(image.shape[1] - 8)
        drawn.append(image[row : row + 8, column : column + 8])
    levels = np.rint(np.stack(drawn))
    return levels[N_HELD_OUT:], levels[:N_HELD_OUT], (0.0, 255.0)


def digits16(seed: int = 0) -> tuple[np.ndarray, np.ndarray, tuple[float, float]]:
    """The digits split, enlarged to 16x16 (bilinear) and requantised to 0..16."""
    train, test, _, _ = metrics.digits_split()

    def enlarge(images: np.ndarray) -> np.ndarray:
        x = torch.as_tensor(images, dtype=torch.float32).unsqueeze(1)
        big = torch.nn.functional.interpolate(x, size=16, mode="bilinear", align_corners=False)
        return np.rint(big.squeeze(1).numpy()).clip(0, 16)

    return enlarge(train), enlarge(test), (0.0, 16.0)


DATASETS: dict[str, Callable[[int], tuple[np.ndarray, np.ndarray, tuple[float, float]]]] = {
    "patches": patches,
    "digits16": digits16,
}


def score(samples: np.ndarray, held_out: np.ndarray, seed: int) -> dict[str, float]:
    """C2ST and sliced Wasserstein distance on pixels rounded to levels."""
    x, y = np.rint(samples).reshape(len(samples), -1), held_out.reshape(len(held_out), -1)
    return {
        "c2st": metrics.c2st(x, y, random_state=seed),
        "swd": metrics.sliced_wasserstein(x, y, random_state=seed),
    }


def run(
    dataset: str,
    method: str,
    seed: int,
    n_iter: int,
    batch_size: int,
    settings: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One row: ``method`` on ``dataset`` for ``n_iter`` iterations of ``batch_size``,
    with the estimator parameters ``settings`` (``--set``) on top for the methods that
    fit a CoopFlow."""
    train, held_out, data_range = DATASETS[dataset](0)
    if method == "gaussian":
        flat = train.reshape(len(train), -1)
        rng = np.random.default_rng(seed)
        drawn = rng.multivariate_normal(flat.mean(axis=0), np.cov(flat.T), size=len(held_out))
        samples = np.clip(drawn, *data_range)
        row = {"dataset": dataset, "method": method, "seed": seed, "seconds": 0.0}
        return {**row, **score(samples, held_out, seed)}
    params: dict[str, Any] = {"data_range": data_range, "random_state": seed, **(settings or {})}
    if method == "flow_alone":
        params.update(n_iter=0, pretrain_iter=n_iter, batch_size=batch_size)
    elif method == "short_run_ebm":
        params.update(n_iter=n_iter, proposal="noise", **NOISE_BASELINE)
    else:
        params.update(n_iter=n_iter, batch_size=batch_size)
    model = CoopFlow(**params)
    start = time.perf_counter()
    model.fit(train)
    seconds = time.perf_counter() - start
    revise = method != "flow_alone"
    samples = model.sample(len(held_out), random_state=seed, revise=revise)
    row = {"dataset": dataset, "method": method, "seed": seed, "seconds": seconds}
    row.update(score(samples, held_out, seed), **({"settings": settings} if settings else {}))
    if method == "coopflow":
        proposals = model.sample(len(held_out), random_state=seed, revise=False)
        row["proposals"] = score(proposals, held_out, seed)
    return row


def main(argv: Sequence[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", required=True, choices=list(DATASETS))
    parser.add_argument(
        "--methods",
        nargs="+",
        default=["coopflow", "flow_alone", "short_run_ebm", "gaussian"],
        choices=["coopflow", "flow_alone", "short_run_ebm", "gaussian"],
    )
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--n-iter", type=int, default=400)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--set", dest="settings", action="append", type=parse_setting, default=[])
    parser.add_argument("--out", type=Path, default=None, help="append JSON lines here")
    args = parser.parse_args(argv)
    settings = dict(args.settings)
    return [
        emit(run(args.dataset, method, seed, args.n_iter, args.batch_size, settings), args.out)
        for seed in args.seeds
        for method in args.methods
    ]


if __name__ == "__main__":
    main()
