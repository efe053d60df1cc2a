"""The tilt chosen on held-out rows (``tilt="auto"``), against the model as trained, its
flow alone and a Gaussian, on real tables and on the digits.

Run as a module, one data set and seed per call, each row appended to
``benchmarks/results/tilt.jsonl``; ``docs/guide/likelihood.md`` names the command::

    OMP_NUM_THREADS=1 python -m benchmarks.tilt --dataset wine --seeds 0 1 2 --out FILE

Methods (every one given only ``n_iter``, ``batch_size`` and, for images, ``data_range``
besides what its name says):

* ``trained``: CoopFlow's defaults, the model as trained (``tilt=1``);
* ``auto``: ``tilt="auto"``, chosen on 10% of the training rows;
* ``auto_l2``: ``tilt="auto"`` and ``energy_l2=0.1``, a penalty on the energy's scale;
* ``trained_l2``: ``energy_l2=0.1`` at ``tilt=1``;
* ``flow_alone``: the same flow trained alone by maximum likelihood;
* ``gaussian``: a full-covariance Gaussian fitted to the training rows.

Each row holds the C2ST of as many samples as held-out rows against them
(:func:`coopkit.metrics.c2st`, or :func:`~coopkit.metrics.digits_c2st` on the digits), a
distance (sliced Wasserstein; Fréchet on the digits), the held-out rows' mean
log-density (``score_samples``; the flow's for ``flow_alone``) with the number that fall
outside the model's box (scored ``-inf``, left out of the mean), the chosen tilt and
whether ``log Z`` is reliable, and the process CPU seconds of ``fit``.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import emit
from coopkit import CoopFlow, metrics

TABLES = ("iris", "wine", "diabetes", "breast_cancer")
METHODS: dict[str, dict[str, Any]] = {
    "trained": {},
    "auto": {"tilt": "auto"},
    "auto_l2": {"tilt": "auto", "energy_l2": 0.1},
    "trained_l2": {"energy_l2": 0.1},
    "flow_alone": {},
}


def load(dataset: str) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Training rows, held-out rows and the budget: a table split 70/30 (the same split
    for every seed), or the digits split."""
    if dataset == "digits":
        train, test, _, _ = metrics.digits_split()
        return train, test, {"n_iter": 400, "batch_size": 256, "data_range": (0, 16)}
    import sklearn.datasets
    from sklearn.model_selection import train_test_split

    X = getattr(sklearn.datasets, f"load_{dataset}")().data.astype(np.float64)
    train, test = train_test_split(X, test_size=0.3, random_state=0)
    return train, test, {"n_iter": 400, "batch_size": 128}


def score(dataset: str, samples: np.ndarray, test: np.ndarray, seed: int) -> dict[str, float]:
    """C2ST and a distance of ``samples`` against ``test``."""
    if dataset == "digits":
        levels = np.rint(samples)
        return {
            "c2st": metrics.digits_c2st(levels, test, random_state=seed),
            "distance": metrics.digits_frechet_distance(levels, test),
        }
    return {
        "c2st": metrics.c2st(samples, test, random_state=seed),
        "distance": metrics.sliced_wasserstein(samples, test, random_state=seed),
    }


def held_out_density(scores: np.ndarray) -> dict[str, float]:
    """Mean of the finite held-out log-densities and the number that are not."""
    finite = np.isfinite(scores)
    return {"log_density": float(scores[finite].mean()), "outside": int((~finite).sum())}


def run(dataset: str, method: str, seed: int, n_iter: int | None = None) -> dict[str, Any]:
    """One row: ``method`` on ``dataset`` with ``seed`` (and ``n_iter`` iterations
    instead of the data set's budget)."""
    train, test, budget = load(dataset)
    if n_iter is not None:
        budget["n_iter"] = n_iter
    row: dict[str, Any] = {"dataset": dataset, "method": method, "seed": seed}
    if method == "gaussian":
        rng = np.random.default_rng(seed)
        flat = train.reshape(len(train), -1)
        drawn = rng.multivariate_normal(flat.mean(axis=0), np.cov(flat.T), size=len(test))
        return {**row, **score(dataset, drawn.reshape(test.shape), test, seed), "seconds": 0.0}
    params = {**budget, **METHODS[method], "random_state": seed}
    if method == "flow_alone":
        params.update(pretrain_iter=params.pop("n_iter"), n_iter=0, tilt=0.0)
    start = time.process_time()
    model = CoopFlow(**params).fit(train)
    row["seconds"] = time.process_time() - start
    samples = model.sample(len(test), random_state=seed, revise=method != "flow_alone")
    row.update(score(dataset, samples, test, seed))
    density: Callable[[np.ndarray], np.ndarray] = (
        model.flow_score_samples if method == "flow_alone" else model.score_samples
    )
    row.update(held_out_density(density(test)))
    info = model.log_partition_info_
    row.update(tilt=model.tilt_, reliable=info["reliable"], ess=info["ess"])
    if model.tilt_info_ is not None:
        row["tilt_curve"] = {k: model.tilt_info_[k] for k in ("tilts", "held_out", "ess_by_tilt")}
    return row


def main(argv: Sequence[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", required=True, choices=[*TABLES, "digits"])
    parser.add_argument(
        "--methods", nargs="+", default=[*METHODS, "gaussian"], choices=[*METHODS, "gaussian"]
    )
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--n-iter", type=int, default=None, help="instead of the budget")
    parser.add_argument("--out", type=Path, default=None, help="append JSON lines here")
    args = parser.parse_args(argv)
    return [
        emit(run(args.dataset, method, seed, args.n_iter), args.out)
        for seed in args.seeds
        for method in args.methods
    ]


if __name__ == "__main__":
    main()
