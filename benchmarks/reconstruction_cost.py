"""What reconstruction and inpainting cost, and what they reach (issue 30).

Two tasks, each on its model trained here with a fixed seed:

* ``table``: inpainting 20 rows × 4 completions of the default table model
  (``CoopFlow(n_iter=30, batch_size=128)`` on two moons), column 0 observed; quality is
  the C2ST of the completed rows against as many held-out rows, and the RMSE of the
  completed column against the truth, of each completion and of their mean.
* ``digits``: reconstructing and inpainting (4×4 centre masked, 4 completions) 64
  held-out digits with the demo's model (``coopkit.demo.DEMOS["digits"]``); quality is
  the reconstruction's mean squared error per image (model units), and for inpainting
  the RMSE of the completed pixels (0..16), of each completion and of their mean, and
  the digits C2ST of the completed images against the rest of the held-out digits.

A completion drawn from the model given the observed entries has about √2 times the
error of the conditional mean, which the mean of the completions estimates: the RMSE of
the mean is the fair comparison of a sampler with a fit.

``--methods now`` times what the estimator does by default; ``--methods before`` the
optimisation through the Langevin flow as it was (200 Adam iterations, no early stop),
and ``--methods paper`` the same with today's early stop. Run as ``python -m
benchmarks.reconstruction_cost --task T --methods M [--seed S] [--out FILE]``: rows are
appended to ``FILE`` (default :data:`RESULTS`); :func:`reconstruction_section` builds
the page's table from them. One torch thread.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks.common import machine_facts
from benchmarks.quality_report import cell
from coopkit import CoopFlow, metrics
from coopkit.datasets import moons
from coopkit.demo import DEMOS
from coopkit.threads import torch_threads

RESULTS = Path(__file__).resolve().parent / "results" / "reconstruction.jsonl"
HEADING = "## Reconstruction and inpainting"
# method set -> (reconstruct's arguments, inpaint's arguments)
METHODS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "now": ({}, {}),
    "paper": ({"method": "gradient"}, {"method": "optimize"}),
    "before": ({"method": "gradient", "tol": 0.0}, {"method": "optimize", "tol": 0.0}),
}
DIGITS_MASK = np.ones((8, 8))
DIGITS_MASK[2:6, 2:6] = 0


def timed(call: Callable[[], Any]) -> tuple[Any, float]:
    """``call()`` and its wall time in seconds."""
    start = time.perf_counter()
    result = call()
    return result, time.perf_counter() - start


def completion_errors(completed: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """RMSE of every completion ``(n, k, m)`` and of their mean against ``truth (n, m)``.

    Examples:
        >>> completion_errors(np.array([[[1.0], [3.0]]]), np.array([[2.0]]))
        {'rmse': 1.0, 'rmse_of_mean': 0.0}
    """
    each = np.sqrt(np.mean((completed - truth[:, None]) ** 2))
    of_mean = np.sqrt(np.mean((completed.mean(axis=1) - truth) ** 2))
    return {"rmse": float(each), "rmse_of_mean": float(of_mean)}


def table_rows(methods: str, seed: int, n_iter: int = 30) -> list[dict[str, Any]]:
    """The ``table`` task's row for the method set ``methods``."""
    model = CoopFlow(n_iter=n_iter, batch_size=128, random_state=seed).fit(moons(2000, 0))
    X, held_out = moons(20, random_state=5), moons(80, random_state=7)
    completed, seconds = timed(
        lambda: model.inpaint(X, [1, 0], random_state=seed, **METHODS[methods][1])
    )
    row = {
        "task": "table inpaint",
        "seconds": seconds,
        "c2st": metrics.c2st(completed.reshape(-1, 2), held_out),
        **completion_errors(completed[:, :, 1:], X[:, 1:]),
    }
    return [row]


def digits_rows(methods: str, seed: int, n_iter: int | None = None) -> list[dict[str, Any]]:
    """The ``digits`` task's rows (reconstruct, inpaint) for the method set ``methods``."""
    train, test, _, _ = metrics.digits_split()
    settings = {**DEMOS["digits"], **({} if n_iter is None else {"n_iter": n_iter})}
    model = CoopFlow(random_state=seed, **settings).fit(train)
    X, rest = test[:64], test[64:]
    recon_args, inpaint_args = METHODS[methods]
    (_, error), recon_seconds = timed(
        lambda: model.reconstruct(X, return_error=True, random_state=seed, **recon_args)
    )
    completed, inpaint_seconds = timed(
        lambda: model.inpaint(X, DIGITS_MASK, random_state=seed, **inpaint_args)
    )
    hole = ~DIGITS_MASK.astype(bool)
    images = np.rint(completed.reshape(-1, 8, 8))
    return [
        {"task": "digits reconstruct", "seconds": recon_seconds, "error": float(error.mean())},
        {
            "task": "digits inpaint",
            "seconds": inpaint_seconds,
            **completion_errors(completed[:, :, hole], X[:, hole]),
            "c2st": metrics.digits_c2st(images, rest),
        },
    ]


def measure(task: str, methods: str, seed: int, n_iter: int | None = None) -> list[dict[str, Any]]:
    """The rows of ``task`` ("table" or "digits") for ``methods``, with the machine."""
    build = table_rows if task == "table" else digits_rows
    rows = build(methods, seed) if n_iter is None else build(methods, seed, n_iter)
    facts = machine_facts(torch.device("cpu"))
    return [{**row, "methods": methods, "seed": seed, **facts} for row in rows]


def reconstruction_section(rows: Sequence[dict[str, Any]]) -> list[str]:
    """The page's table: per task and method set, seconds and quality, mean ± sd over
    the seeds."""
    if not rows:
        return ["No reconstruction rows yet (`python -m benchmarks.reconstruction_cost`)."]
    lines = [
        "One torch thread, the demo's digits model and the default table model "
        "(`python -m benchmarks.reconstruction_cost --task T --methods M`). `now` is the "
        "default (`reconstruct`: fixed point; `inpaint`: conditional sampling); `paper` "
        "the optimisation through the Langevin flow with today's early stop; `before` "
        "the same for 200 iterations without one, as it ran before. Error: mean squared "
        "error per image in model units; RMSE of the completed entries in data units, of each "
        "completion and of the mean of the 4.",
        "",
        "| task | methods | seeds | seconds | error | RMSE | RMSE of the mean | C2ST |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for task in dict.fromkeys(r["task"] for r in rows):
        for methods in METHODS:
            chosen = [r for r in rows if r["task"] == task and r["methods"] == methods]
            if not chosen:
                continue
            cells = [
                cell([r[key] for r in chosen]) if key in chosen[0] else "–"
                for key in ("seconds", "error", "rmse", "rmse_of_mean", "c2st")
            ]
            lines.append(f"| {task} | {methods} | {len(chosen)} | {' | '.join(cells)} |")
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", choices=("table", "digits"), required=True)
    parser.add_argument("--methods", choices=tuple(METHODS), default="now")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    with torch_threads(1):
        rows = measure(args.task, args.methods, args.seed)
    with args.out.open("a") as out:
        out.writelines(json.dumps(row) + "\n" for row in rows)
    print("\n".join(reconstruction_section(rows)))


if __name__ == "__main__":
    main()
