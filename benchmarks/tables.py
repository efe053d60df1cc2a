"""Tables at equal CPU time: CoopFlow against its flow alone, its short-run EBM, a
full-covariance Gaussian and zuko's neural spline flow, each trained for the same CPU
seconds, on scikit-learn's shipped tables and wider synthetic ones.

Run as a module, one data set per call, each row appended to :data:`RESULTS`; the page
section "Tables at equal CPU time" is built from the rows
(``python -m benchmarks.row_sections``)::

    OMP_NUM_THREADS=1 python -m benchmarks.tables --dataset iris --seconds 15 \
        --seeds 0 1 2 --out benchmarks/results/tables.jsonl

Tables (70/30 split, the same for every seed): ``iris`` (4 columns), ``diabetes``
(10), ``classification20`` (``make_classification``, 20 columns, 10 informative),
``mixture50`` (a mixture of three 50-D Gaussians with random correlated covariances),
and ``wine`` (13) and ``breast_cancer`` (30), the two tables the issue was filed on,
kept out of every choice of default (run after them, as a check).
The 2-D sets of the equal-iteration page (:data:`coopkit.datasets.TOY_SETS`) are here
too, as there: 20,000 training points, 5,000 held out, batches of 256; their section is
"2-D sets at equal CPU time". Every method gets only ``n_iter`` (from the budget,
:func:`benchmarks.budget.fitted_for`) and ``batch_size`` (128 on tables), besides what
its name says: ``coopflow`` (the defaults),
``coopflow_tilt`` (``tilt="auto"``), ``flow_alone`` (maximum likelihood only),
``short_run_ebm`` (``proposal="noise"``), ``gaussian`` (no training) and ``zuko_nsf``
(zuko's ``NSF`` on the standardised rows, :func:`benchmarks.budget.zuko_nsf_at`). A row
holds the C2ST of as many samples as held-out rows against them
(:func:`coopkit.metrics.c2st`), their sliced Wasserstein distance, the seconds trained
and, for CoopFlow, the chosen tilt and the proposals' C2ST.

A lever is measured by naming it and the estimator parameters it sets, which every
method that is a ``CoopFlow`` then gets on top of its own; its rows carry the name and
the parameters, and the page section "Levers on tables" sets them beside the defaults::

    OMP_NUM_THREADS=1 python -m benchmarks.tables --dataset diabetes --seconds 10 \
        --methods coopflow --lever energy_l2=1 --params '{"energy_l2": 1.0}' \
        --out benchmarks/results/tables.jsonl
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks.budget import fitted_for, zuko_nsf_at
from benchmarks.common import cpu_model, emit
from benchmarks.quality_report import cell
from coopkit import CoopFlow, metrics
from coopkit.datasets import TOY_SETS, load_toy

RESULTS = Path(__file__).resolve().parent / "results" / "tables.jsonl"
TABLES = ("iris", "diabetes", "classification20", "mixture50", "wine", "breast_cancer")
DATASETS = (*TABLES, *TOY_SETS)
TOY_TRAIN, TOY_HELD_OUT = 20_000, 5_000


def batch_size(dataset: str) -> int:
    """Rows per batch on ``dataset``: 256 on the 2-D sets, as on the equal-iteration page."""
    return 256 if dataset in TOY_SETS else 128


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

    if dataset in TOY_SETS:
        X = load_toy(dataset, TOY_TRAIN + TOY_HELD_OUT, random_state=0).astype(np.float64)
        return X[:TOY_TRAIN], X[TOY_TRAIN:]
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


def estimator(
    method: str, n_iter: int, seed: int, batch: int, lever: dict[str, Any] | None = None
) -> CoopFlow:
    """``method``'s estimator for ``n_iter`` iterations of ``batch`` rows (the flow alone:
    as many maximum-likelihood iterations, ``pretrain_iter``), with the ``lever``'s
    parameters."""
    params = {"batch_size": batch, "random_state": seed, **METHODS[method], **(lever or {})}
    if method == "flow_alone":
        return CoopFlow(n_iter=0, pretrain_iter=n_iter, tilt=0.0, **params)
    return CoopFlow(n_iter=n_iter, **params)


def run_zuko(
    train: np.ndarray, test: np.ndarray, seconds: float, seed: int, batch: int
) -> dict[str, Any]:
    mean, std = train.mean(axis=0), train.std(axis=0) + 1e-12
    x = torch.as_tensor((train - mean) / std, dtype=torch.float32)
    _, flow, trained, n_iter = next(zuko_nsf_at(x, [seconds], seed, batch_size=batch))
    with torch.no_grad():
        drawn = flow().sample((len(test),)).double().numpy() * std + mean
    return {"seconds": trained, "n_iter": n_iter, **score(drawn, test, seed)}


def run(
    dataset: str,
    method: str,
    seconds: float,
    seed: int,
    lever: tuple[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """One row: ``method`` trained on ``dataset`` for ``seconds`` with ``seed``, and with
    the parameters of ``lever`` (its name and them) if it is a ``CoopFlow``."""
    train, test = load(dataset)
    row: dict[str, Any] = {
        "dataset": dataset,
        "method": method,
        "seed": seed,
        "budget": seconds,
        "cpu": cpu_model(),
    }
    if lever is not None:
        row.update(lever=lever[0], params=lever[1])
    if method == "gaussian":
        rng = np.random.default_rng(seed)
        drawn = rng.multivariate_normal(train.mean(axis=0), np.cov(train.T), size=len(test))
        return {**row, "seconds": 0.0, "n_iter": 0, **score(drawn, test, seed)}
    if method == "zuko_nsf":
        return {**row, **run_zuko(train, test, seconds, seed, batch_size(dataset))}
    params = lever and lever[1]
    make = lambda n_iter: estimator(method, n_iter, seed, batch_size(dataset), params)  # noqa: E731
    model, took = fitted_for(make, seconds, train)
    revise = method != "flow_alone"
    samples = model.sample(len(test), random_state=seed, revise=revise)
    row.update(seconds=took, n_iter=model.n_iter_, **score(samples, test, seed))
    if method.startswith("coopflow"):
        proposals = model.sample(len(test), random_state=seed, revise=False)
        row.update(tilt=model.tilt_, proposals=score(proposals, test, seed))
    return row


HEADING = "## Tables at equal CPU time"
TOY_HEADING = "## 2-D sets at equal CPU time"
TITLES = {
    "coopflow": "CoopFlow (defaults)",
    "coopflow_tilt": 'CoopFlow, tilt="auto"',
    "flow_alone": "its flow alone",
    "short_run_ebm": "its short-run EBM",
    "gaussian": "full-covariance Gaussian",
    "zuko_nsf": "zuko NSF",
}


HEADER = ["seeds", "C2ST", "sliced Wasserstein", "proposals' C2ST", "tilt", "CPU s"]


def cells(found: Sequence[dict[str, Any]]) -> list[str]:
    """The :data:`HEADER` cells of one method's rows ``found`` (one per seed)."""
    proposals = [r["proposals"]["c2st"] for r in found if "proposals" in r]
    tilts = ", ".join(f"{r['tilt']:.3g}" for r in found if "tilt" in r)
    return [
        str(len(found)),
        cell([r["c2st"] for r in found]),
        cell([r["distance"] for r in found]),
        cell(proposals) if proposals else "–",
        tilts or "–",
        cell([r["seconds"] for r in found]),
    ]


def table_lines(first: str, header: Sequence[str], body: list[list[str]]) -> list[str]:
    """A markdown table whose columns are ``first`` then ``header``."""
    lines = ["| " + " | ".join([first, *header]) + " |", "|" + "---|" * (len(header) + 1)]
    return lines + ["| " + " | ".join(row) + " |" for row in body]


def tables_section(rows: Sequence[dict[str, Any]], datasets: Sequence[str] = TABLES) -> list[str]:
    """The page section of ``datasets``: per data set and method, C2ST and distance
    (mean ± sd over seeds), CPU seconds, and which method has the lowest mean C2ST
    (rows of levers are left to :func:`levers_section`)."""
    rows = [r for r in rows if "lever" not in r and r["dataset"] in datasets]
    if not rows:
        return ["No run of these data sets yet (`python -m benchmarks.tables --dataset D`)."]
    held_out = "5,000 held-out points" if datasets[0] in TOY_SETS else "held-out rows"
    lines = [
        "`OMP_NUM_THREADS=1 python -m benchmarks.tables --dataset D --seconds S` (rows in "
        "`benchmarks/results/tables.jsonl`): every method trained for the same CPU seconds, "
        f"C2ST and sliced Wasserstein distance of as many samples as {held_out} against "
        "them, on one thread of "
        + ", ".join(sorted({r.get("cpu", "an unrecorded CPU") for r in rows}))
        + ". The best mean C2ST of each data set is in bold.",
    ]
    for dataset in dict.fromkeys(r["dataset"] for r in rows):
        here = [r for r in rows if r["dataset"] == dataset]
        found = {m: [r for r in here if r["method"] == m] for m in TITLES}
        found = {m: rs for m, rs in found.items() if rs}
        best = min(found, key=lambda m: np.mean([r["c2st"] for r in found[m]]))
        body = []
        for method, these in found.items():
            row = [TITLES[method], *cells(these)]
            row[2] = f"**{row[2]}**" if method == best else row[2]
            body.append(row)
        lines += ["", f"**{dataset}** ({here[0]['budget']:g} CPU s each)", ""]
        lines += table_lines("method", HEADER, body)
    return lines


LEVERS_HEADING = "## Levers on tables"


def levers_section(rows: Sequence[dict[str, Any]]) -> list[str]:
    """The page section of levers: per data set, each method a lever was measured on,
    its rows with the defaults (same budget) and with each lever's parameters."""
    levered = [r for r in rows if "lever" in r]
    if not levered:
        return ["No lever measured (`python -m benchmarks.tables --lever NAME --params ...`)."]
    lines = [
        "`OMP_NUM_THREADS=1 python -m benchmarks.tables --dataset D --seconds S --methods M "
        "--lever NAME --params JSON`: the methods of the tables above with the estimator "
        "parameters of the last column on top of their own, at the same CPU seconds.",
    ]
    for dataset in dict.fromkeys(r["dataset"] for r in levered):
        here = [r for r in levered if r["dataset"] == dataset]
        body = []
        for method in dict.fromkeys(r["method"] for r in here):
            budget = next(r["budget"] for r in here if r["method"] == method)
            plain = [
                r
                for r in rows
                if (r["dataset"], r["method"], r["budget"]) == (dataset, method, budget)
                and "lever" not in r
            ]
            groups = [("defaults", "–", plain)] + [
                (name, f"`{json.dumps(these[0]['params'])}`", these)
                for name in dict.fromkeys(r["lever"] for r in here if r["method"] == method)
                for these in [[r for r in here if (r["method"], r["lever"]) == (method, name)]]
            ]
            body += [[TITLES[method], name, *cells(g), params] for name, params, g in groups if g]
        lines += ["", f"**{dataset}**", ""]
        lines += table_lines("method", ["lever", *HEADER, "parameters"], body)
    return lines


def main(argv: Sequence[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", required=True, choices=DATASETS)
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--out", type=Path, default=None, help="append JSON lines here")
    parser.add_argument("--lever", default=None, help="a name for the --params measured")
    parser.add_argument("--params", type=json.loads, default=None, help="a JSON object")
    args = parser.parse_args(argv)
    if (args.lever is None) != (args.params is None):
        parser.error("--lever and --params go together: a lever's name and its parameters.")
    lever = None if args.lever is None else (args.lever, args.params)
    return [
        emit(run(args.dataset, method, args.seconds, seed, lever), args.out)
        for seed in args.seeds
        for method in args.methods
    ]


if __name__ == "__main__":
    main()
