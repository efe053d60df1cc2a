r"""One row of an ablation table: a configuration trained on 2-D sets over several seeds.

Run as a module; every row of ``docs/guide/tuning.md`` names the command that made it::

    python -m benchmarks.ablation --datasets moons circles --seeds 0 1 2 \
        --method coopflow --set flow_lr=1e-3 --set 'sampler_params={"n_steps": 60}'

Each run trains one estimator on ``--train-size`` points for ``--n-iter`` iterations of
``--batch-size`` and scores ``--n-samples`` samples against as many held-out points
with :func:`coopkit.metrics.c2st`, :func:`~coopkit.metrics.sliced_wasserstein` and
:func:`~coopkit.metrics.mmd` (bandwidth: the held-out sample's median distance). The
methods are CoopFlow's revised samples (``coopflow``), the same flow trained alone by
maximum likelihood (``flow_alone``) and the short-run EBM from noise
(``short_run_ebm``); ``--set`` overrides any estimator parameter (values are read as
JSON, else kept as strings). One JSON line per run goes to ``--out``; a summary (mean
and standard deviation over seeds) is printed.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy.spatial.distance import pdist

from coopkit import CoopFlow, metrics
from coopkit.datasets import TOY_SETS, load_toy

METHODS: dict[str, dict[str, Any]] = {
    "coopflow": {},
    "flow_alone": {"proposal": "flow"},
    "short_run_ebm": {"proposal": "noise"},
}


@dataclass(frozen=True)
class ToyBudget:
    """Iterations, batch size, training points and scored samples of one 2-D run."""

    n_iter: int = 2000
    batch_size: int = 256
    train_size: int = 20_000
    n_samples: int = 5000


def method_params(method: str, n_iter: int) -> dict[str, Any]:
    """The estimator parameters that make ``method`` out of a budget of ``n_iter``."""
    if method == "flow_alone":
        return {"pretrain_iter": n_iter, "n_iter": 0}
    return {"n_iter": n_iter, **METHODS[method]}


def parse_setting(text: str) -> tuple[str, Any]:
    """``"key=value"`` with the value read as JSON when it parses, else as a string.

    Examples:
        >>> parse_setting("flow_lr=1e-3"), parse_setting("flow=nsf")
        (('flow_lr', 0.001), ('flow', 'nsf'))
    """
    key, sep, value = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"--set takes key=value; got {text!r}.")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def score(samples: np.ndarray, held_out: np.ndarray, seed: int) -> dict[str, float]:
    """C2ST, SWD and MMD of ``samples`` against ``held_out``."""
    bandwidth = float(np.median(pdist(held_out[:2000])))
    return {
        "c2st": metrics.c2st(samples, held_out, random_state=seed),
        "swd": metrics.sliced_wasserstein(samples, held_out, random_state=seed),
        "mmd": metrics.mmd(samples[:2000], held_out[:2000], bandwidth=bandwidth),
    }


def resolved_settings(model: CoopFlow) -> dict[str, Any]:
    """The fitted ``model.settings_`` as JSON values (tuples become lists)."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in model.settings_.items()}


def run_one(
    dataset: str,
    seed: int,
    method: str,
    settings: dict[str, Any],
    budget: ToyBudget,
    device: str = "auto",
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Train one model and score its samples (and, for CoopFlow, its proposals and the
    data's own floor); the JSON row and the samples by name."""
    train = load_toy(dataset, budget.train_size, random_state=seed)
    held_out = load_toy(dataset, budget.n_samples, random_state=10_000 + seed)
    params = {
        "batch_size": budget.batch_size,
        "n_partition_samples": 256,
        "device": device,
        **method_params(method, budget.n_iter),
        **settings,
    }
    model = CoopFlow(**params, random_state=seed)
    start = time.perf_counter()
    model.fit(train)
    seconds = time.perf_counter() - start
    samples = {
        method: model.sample(budget.n_samples, random_state=seed, revise=method != "flow_alone")
    }
    row: dict[str, Any] = {
        "dataset": dataset,
        "seed": seed,
        "method": method,
        "settings": settings,
        "resolved": resolved_settings(model),
        "seconds_per_iter": seconds / max(1, model.n_iter_),
        **score(samples[method], held_out, seed),
    }
    if method == "coopflow":
        samples["coopflow_proposals"] = model.sample(
            budget.n_samples, random_state=seed, revise=False
        )
        samples["reference"] = train[: budget.n_samples]
        row["proposals"] = score(samples["coopflow_proposals"], held_out, seed)
        row["floor"] = score(samples["reference"], held_out, seed)
    return row, samples


def summarise(rows: Sequence[dict[str, Any]]) -> str:
    """One line per data set: mean ± standard deviation over seeds of every score."""
    lines = []
    for dataset in dict.fromkeys(row["dataset"] for row in rows):
        mine = [row for row in rows if row["dataset"] == dataset]
        cells = []
        scores = ("c2st", "swd", "mmd", "frechet", "seconds_per_iter")
        for key in [key for key in scores if key in mine[0]]:
            values = [row[key] for row in mine]
            spread = statistics.stdev(values) if len(values) > 1 else 0.0
            cells.append(f"{key} {statistics.mean(values):.4f} ± {spread:.4f}")
        if "proposals" in mine[0]:
            values = [row["proposals"]["c2st"] for row in mine]
            cells.append(f"proposal c2st {statistics.mean(values):.4f}")
        lines.append(f"{dataset:16s} " + " | ".join(cells))
    return "\n".join(lines)


def record(
    runs: Iterable[dict[str, Any]], method: str, settings: dict[str, Any], out: Path | None
) -> list[dict[str, Any]]:
    """The rows of ``runs``, each appended to ``out`` as a JSON line as soon as it is
    made (when ``out`` is given); prints the method, the settings and :func:`summarise`."""
    rows = []
    for row in runs:
        rows.append(row)
        if out is not None:
            with out.open("a", encoding="utf-8") as file:
                file.write(json.dumps(row) + "\n")
    print(f"{method} {json.dumps(settings)}")
    print(summarise(rows))
    return rows


def main(argv: Sequence[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=list(TOY_SETS), choices=list(TOY_SETS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--method", default="coopflow", choices=list(METHODS))
    parser.add_argument("--set", dest="settings", action="append", type=parse_setting, default=[])
    parser.add_argument("--n-iter", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--train-size", type=int, default=20_000)
    parser.add_argument("--n-samples", type=int, default=5000)
    parser.add_argument("--out", type=Path, default=None, help="append JSON lines here")
    args = parser.parse_args(argv)
    settings = dict(args.settings)
    budget = ToyBudget(args.n_iter, args.batch_size, args.train_size, args.n_samples)
    runs = (
        run_one(dataset, seed, args.method, settings, budget)[0]
        for dataset in args.datasets
        for seed in args.seeds
    )
    return record(runs, args.method, settings, args.out)


if __name__ == "__main__":
    main()
