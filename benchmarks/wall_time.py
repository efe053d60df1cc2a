r"""Digits at equal wall time: CoopFlow against its flow alone, its short-run EBM, a
full-covariance Gaussian and zuko's neural spline flow, each trained for the same
number of seconds.

Run as a module; ``docs/benchmarks.md`` ("Digits at equal wall time") names the command::

    OMP_NUM_THREADS=1 python -m benchmarks.wall_time --method coopflow --seconds 60 180 600 \
        --seeds 0 1 2 --out benchmarks/results/digits_wall_time.jsonl

A budget is CPU time of the training process (:mod:`benchmarks.budget`). Every run
trains on the 70% split of :func:`coopkit.metrics.digits_split` and scores 540
samples, rounded to the data's levels, against the 540 held-out digits with
:func:`coopkit.metrics.digits_c2st` and the digits Fréchet distance
(:func:`benchmarks.digits.score`). The estimator's methods get their iteration count
from the budget: two calibration fits (:func:`~benchmarks.budget.fitted_for`) give the
seconds per iteration and the fit's fixed cost, and the run then fits as many
iterations as the rest of the budget pays for; the row records the seconds the fit
really took (CPU seconds). ``zuko_nsf`` is the peer the issue names: zuko's ``NSF`` (4
transforms, 2 x 128 hidden) on the 64 pixels scaled to [0, 1) with uniform
dequantisation, Adam at 1e-3, batch 256, scored at each budget of one run.
``gaussian`` takes no training. zuko is a benchmark-only dependency (``coopkit[bench]``).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks.budget import fitted_for, zuko_nsf_at
from benchmarks.common import emit
from benchmarks.digits import N_SAMPLES, NOISE_BASELINE, gaussian_fit, score
from coopkit import CoopFlow, metrics
from coopkit.demo import DEMOS

LEVELS = 17
# Each method's settings beyond the budget. CoopFlow and the flow alone take the
# estimator's image defaults at the demo's batch size; the short-run EBM is the paper's
# conv net from noise, as in benchmarks.digits.
METHODS: dict[str, dict[str, Any]] = {
    "coopflow": {"batch_size": DEMOS["digits"]["batch_size"]},
    "flow_alone": {"batch_size": DEMOS["digits"]["batch_size"]},
    "short_run_ebm": {"proposal": "noise", **NOISE_BASELINE},
    "gaussian": {},
    "zuko_nsf": {},
}


def estimator(method: str, n_iter: int, seed: int) -> CoopFlow:
    """The estimator of ``method`` for ``n_iter`` iterations (the flow alone: as many
    maximum-likelihood iterations, ``pretrain_iter``)."""
    params = {"data_range": (0, 16), "random_state": seed, **METHODS[method]}
    if method == "flow_alone":
        return CoopFlow(n_iter=0, pretrain_iter=n_iter, **params)
    return CoopFlow(n_iter=n_iter, **params)


def run_estimator(method: str, seconds: float, seed: int) -> dict[str, Any]:
    """One row: ``method`` trained for ``seconds``, its samples scored (CoopFlow's
    proposals too)."""
    train, held_out, _, _ = metrics.digits_split()
    model, took = fitted_for(lambda n_iter: estimator(method, n_iter, seed), seconds, train)
    revise = method != "flow_alone"
    samples = model.sample(N_SAMPLES, random_state=seed, revise=revise)
    row = {"method": method, "seed": seed, "budget": seconds, "seconds": took}
    row.update(n_iter=model.n_iter_, **score(samples, held_out, seed))
    if method == "coopflow":
        row["proposals"] = score(
            model.sample(N_SAMPLES, random_state=seed, revise=False), held_out, seed
        )
    return row


def run_zuko(budgets: Sequence[float], seed: int) -> list[dict[str, Any]]:
    """zuko's NSF trained once for ``max(budgets)`` seconds and scored at each budget
    (scoring time not counted)."""
    train, held_out, _, _ = metrics.digits_split()
    x = torch.as_tensor(train.reshape(len(train), -1), dtype=torch.float32)

    def dequantize(batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return (batch + torch.rand(batch.shape, generator=generator)) / LEVELS

    rows = []
    for budget, flow, trained, n_iter in zuko_nsf_at(x, budgets, seed, dequantize=dequantize):
        with torch.no_grad():
            drawn = flow().sample((N_SAMPLES,)).numpy()
        levels = np.clip(np.floor(drawn * LEVELS), 0, LEVELS - 1).reshape(-1, 8, 8)
        row = {"method": "zuko_nsf", "seed": seed, "budget": budget, "seconds": trained}
        rows.append({**row, "n_iter": n_iter, **score(levels, held_out, seed)})
    return rows


def run(method: str, budgets: Sequence[float], seed: int) -> list[dict[str, Any]]:
    """The rows of ``method`` at every budget for one seed."""
    if method == "zuko_nsf":
        return run_zuko(budgets, seed)
    if method == "gaussian":
        train, held_out, _, _ = metrics.digits_split()
        row = {"method": "gaussian", "seed": seed, "budget": 0.0, "seconds": 0.0, "n_iter": 0}
        return [{**row, **score(gaussian_fit(train, N_SAMPLES, seed), held_out, seed)}]
    return [run_estimator(method, budget, seed) for budget in budgets]


def main(argv: Sequence[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", required=True, choices=list(METHODS))
    parser.add_argument("--seconds", nargs="+", type=float, default=[180.0])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--out", type=Path, default=None, help="append JSON lines here")
    args = parser.parse_args(argv)
    return [
        emit(row, args.out) for seed in args.seeds for row in run(args.method, args.seconds, seed)
    ]


if __name__ == "__main__":
    main()
