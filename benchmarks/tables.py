"""Tables at equal CPU time: CoopFlow against its flow alone, its short-run EBM, a
full-covariance Gaussian and zuko's neural spline flow, each trained for the same CPU
seconds, on scikit-learn's shipped tables and wider synthetic ones.

Run as a module, one data set per call, each row appended to :data:`RESULTS`; the page
section "Tables at equal CPU time" is built from the rows
(``python -m benchmarks.row_sections``)::

    OMP_NUM_THREADS=1 python -m benchmarks.tables --dataset iris --seconds 15 \
        --seeds 0 1 2 --out benchmarks/results/tables.jsonl

Data sets (70/30 split, the same for every seed): ``iris`` (4 columns), ``diabetes``
(10), ``classification20`` (``make_classification``, 20 columns, 10 informative) and
``mixture50`` (a mixture of three 50-D Gaussians with random correlated covariances).
Every method gets only ``n_iter`` (from the budget, :func:`benchmarks.budget.fitted_for`)
and ``batch_size=128``, besides what its name says: ``coopflow`` (the defaults),
``coopflow_tilt`` (``tilt="auto"``), ``flow_alone`` (maximum likelihood only),
``short_run_ebm`` (``proposal="noise"``), ``gaussian`` (no training) and ``zuko_nsf``
(zuko's ``NSF`` on the standardised rows, :func:`benchmarks.budget.zuko_nsf_at`). A row
holds the C2ST of as many samples as held-out rows against them
(:func:`coopkit.metrics.c2st`), their sliced Wasserstein distance, the seconds trained
and, for CoopFlow, the chosen tilt and the proposals' C2ST.
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
from benchmarks.quality_report import cell
from coopkit import CoopFlow, metrics

RESULTS = Path(__file__).resolve().parent / "results" / "tables.jsonl"
DATASETS = ("iris", "diabetes", "classification20", "mixture50")
BATCH_SIZE = 128
METHODS: dict[str, dict[str, Any]] = {
    "coopflow": {},
    "coopflow_tilt": {"tilt": "auto"},
    "flow_alone": {},
    "short_run_ebm": {"proposal": "noise"},
    "gaussian": {},
    "zuko_nsf": {},
}


def load(dataset: str) -> tuple[np.ndarray, np.ndarray]:
    """Training and held-out rows of ``dataset``."""
    import sklearn.datasets
    from sklearn.model_selection import train_test_split

    if dataset == "classification20":
        X, _ = sklearn.datasets.make_classification(
            600, n_features=20, n_informative=10, random_state=0
        )
    elif dataset == "mixture50":
        X = correlated_mixture(600, 50, np.random.default_rng(0))
    else:
        X = getattr(sklearn.datasets, f"load_{dataset}")().data
    train, test = train_test_split(X.astype(np.float64), test_size=0.3, random_state=0)
    return train, test


def correlated_mixture(n: int, d: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` rows of an equal mixture of three ``d``-D Gaussians, means 3 apart on
    average, each with covariance ``A Aᵀ / d`` for its own Gaussian ``A``."""
    means = rng.normal(0.0, 3.0 / np.sqrt(2 * d), (3, d))
    factors = rng.normal(size=(3, d, d)) / np.sqrt(d)
    component = rng.integers(3, size=n)
    noise = rng.normal(size=(n, d))
    return means[component] + np.einsum("nij,nj->ni", factors[component], noise)


def score(samples: np.ndarray, test: np.ndarray, seed: int) -> dict[str, float]:
    return {
        "c2st": metrics.c2st(samples, test, random_state=seed),
        "distance": metrics.sliced_wasserstein(samples, test, random_state=seed),
    }


def estimator(method: str, n_iter: int, seed: int) -> CoopFlow:
    """``method``'s estimator for ``n_iter`` iterations (the flow alone: as many
    maximum-likelihood iterations, ``pretrain_iter``)."""
    params = {"batch_size": BATCH_SIZE, "random_state": seed, **METHODS[method]}
    if method == "flow_alone":
        return CoopFlow(n_iter=0, pretrain_iter=n_iter, tilt=0.0, **params)
    return CoopFlow(n_iter=n_iter, **params)


def run_zuko(train: np.ndarray, test: np.ndarray, seconds: float, seed: int) -> dict[str, Any]:
    mean, std = train.mean(axis=0), train.std(axis=0) + 1e-12
    x = torch.as_tensor((train - mean) / std, dtype=torch.float32)
    _, flow, trained, n_iter = next(zuko_nsf_at(x, [seconds], seed, batch_size=BATCH_SIZE))
    with torch.no_grad():
        drawn = flow().sample((len(test),)).double().numpy() * std + mean
    return {"seconds": trained, "n_iter": n_iter, **score(drawn, test, seed)}


def run(dataset: str, method: str, seconds: float, seed: int) -> dict[str, Any]:
    """One row: ``method`` trained on ``dataset`` for ``seconds`` with ``seed``."""
    train, test = load(dataset)
    row: dict[str, Any] = {"dataset": dataset, "method": method, "seed": seed, "budget": seconds}
    if method == "gaussian":
        rng = np.random.default_rng(seed)
        drawn = rng.multivariate_normal(train.mean(axis=0), np.cov(train.T), size=len(test))
        return {**row, "seconds": 0.0, "n_iter": 0, **score(drawn, test, seed)}
    if method == "zuko_nsf":
        return {**row, **run_zuko(train, test, seconds, seed)}
    make = lambda n_iter: estimator(method, n_iter, seed)  # noqa: E731
    model, took = fitted_for(make, seconds, train)
    revise = method != "flow_alone"
    samples = model.sample(len(test), random_state=seed, revise=revise)
    row.update(seconds=took, n_iter=model.n_iter_, **score(samples, test, seed))
    if method.startswith("coopflow"):
        proposals = model.sample(len(test), random_state=seed, revise=False)
        row.update(tilt=model.tilt_, proposals=score(proposals, test, seed))
    return row


HEADING = "## Tables at equal CPU time"
TITLES = {
    "coopflow": "CoopFlow (defaults)",
    "coopflow_tilt": 'CoopFlow, tilt="auto"',
    "flow_alone": "its flow alone",
    "short_run_ebm": "its short-run EBM",
    "gaussian": "full-covariance Gaussian",
    "zuko_nsf": "zuko NSF",
}


def tables_section(rows: Sequence[dict[str, Any]]) -> list[str]:
    """The page section: per data set and method, C2ST and distance (mean ± sd over
    seeds), CPU seconds and iterations, and which method has the lowest mean C2ST."""
    if not rows:
        return ["No tables benchmark ran (`python -m benchmarks.tables`)."]
    header = ["method", "seeds", "C2ST", "sliced Wasserstein", "proposals' C2ST", "tilt", "CPU s"]
    lines = [
        "`OMP_NUM_THREADS=1 python -m benchmarks.tables --dataset D --seconds S` (rows in "
        "`benchmarks/results/tables.jsonl`): every method trained for the same CPU seconds "
        "on 70% of the rows, C2ST and sliced Wasserstein distance of as many samples as "
        "held-out rows against them. The best mean C2ST of each data set is in bold.",
    ]
    for dataset in dict.fromkeys(r["dataset"] for r in rows):
        here = [r for r in rows if r["dataset"] == dataset]
        means = {
            m: np.mean([r["c2st"] for r in here if r["method"] == m])
            for m in TITLES
            if any(r["method"] == m for r in here)
        }
        best = min(means, key=means.__getitem__)
        lines += ["", f"**{dataset}** ({here[0]['budget']:g} CPU s each)", ""]
        lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for method in means:
            found = [r for r in here if r["method"] == method]
            c2st = cell([r["c2st"] for r in found])
            proposals = [r["proposals"]["c2st"] for r in found if "proposals" in r]
            tilts = ", ".join(f"{r['tilt']:.3g}" for r in found if "tilt" in r)
            lines.append(
                "| "
                + " | ".join(
                    [
                        TITLES[method],
                        str(len(found)),
                        f"**{c2st}**" if method == best else c2st,
                        cell([r["distance"] for r in found]),
                        cell(proposals) if proposals else "–",
                        tilts or "–",
                        cell([r["seconds"] for r in found]),
                    ]
                )
                + " |"
            )
    return lines


def main(argv: Sequence[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", required=True, choices=DATASETS)
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--out", type=Path, default=None, help="append JSON lines here")
    args = parser.parse_args(argv)
    return [
        emit(run(args.dataset, method, args.seconds, seed), args.out)
        for seed in args.seeds
        for method in args.methods
    ]


if __name__ == "__main__":
    main()
