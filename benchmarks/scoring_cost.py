"""What batch-invariant scoring costs (issue 38): ``score_samples`` of 10,000 rows in
float64 (:mod:`coopkit.batch_invariance`, what the estimator does now) against the same
energies in float32 on the fitted parts (what it did before), for the table and the
image defaults. ``log Z`` is estimated before the timing, so neither side pays for it.

Run as ``python -m benchmarks.scoring_cost [--rounds R] [--out FILE]``: one row per data
kind and precision is appended to ``FILE`` (default :data:`RESULTS`), and
:func:`scoring_cost_section` turns the rows into the page's table.
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
from coopkit import CoopFlow
from coopkit.datasets import eight_gaussians
from coopkit.inference import chunked
from coopkit.threads import torch_threads

RESULTS = Path(__file__).resolve().parent / "results" / "scoring_cost.jsonl"
HEADING = "## What batch-invariant scoring costs"
N_ROWS = 10_000


def fitted(kind: str, n_iter: int) -> tuple[CoopFlow, np.ndarray]:
    """A model of ``kind`` ("table" or "image") with its default networks, trained for
    ``n_iter`` iterations, and :data:`N_ROWS` rows to score (8×8 images in 0..16)."""
    if kind == "table":
        model = CoopFlow(n_iter=n_iter, batch_size=64, random_state=0)
        return model.fit(eight_gaussians(2000, 0)), eight_gaussians(N_ROWS, 1)
    images = np.random.default_rng(0).integers(0, 17, size=(N_ROWS, 8, 8))
    model = CoopFlow(n_iter=n_iter, batch_size=64, data_range=(0, 16), random_state=0)
    return model.fit(images[:2000]), images


def float32_scores(model: CoopFlow) -> Callable[[np.ndarray], np.ndarray]:
    """The float32 computation ``score_samples`` made before it moved to float64."""

    def scores(X: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            energies = chunked(model._model_energy(), model._to_model(X), model._chunk)
        return -energies.double().numpy() - model.log_partition_

    return scores


def median_seconds(call: Callable[[np.ndarray], np.ndarray], X: np.ndarray, rounds: int) -> float:
    """The median wall time of ``call(X)`` over ``rounds`` calls, after one warm-up."""
    call(X)
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        call(X)
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def measure(kind: str, rounds: int, n_iter: int = 20) -> list[dict[str, Any]]:
    """One row per precision for ``kind``: seconds to score :data:`N_ROWS` rows, and the
    largest difference between a row scored alone and in the full batch."""
    model, X = fitted(kind, n_iter)
    model.log_partition_  # noqa: B018  (estimated once, outside the timing)
    rows = []
    for precision, call in (("float32", float32_scores(model)), ("float64", model.score_samples)):
        alone = np.concatenate([call(X[i : i + 1]) for i in range(20)])
        rows.append(
            {
                "kind": kind,
                "precision": precision,
                "n_rows": len(X),
                "seconds": median_seconds(call, X, rounds),
                "alone_vs_batch": float(np.max(np.abs(alone - call(X)[:20]))),
                "threads": torch.get_num_threads(),
                **machine_facts(model.device_),
            }
        )
    return rows


def scoring_cost_section(rows: Sequence[dict[str, Any]]) -> list[str]:
    """The page's table: per data kind, float32 and float64 seconds, their ratio, and the
    alone-versus-batch difference of each."""
    if not rows:
        return ["No scoring-cost rows yet (`python -m benchmarks.scoring_cost`)."]
    lines = [
        f"`score_samples` of {rows[0]['n_rows']:,} rows, median of the rounds, "
        f"{rows[0]['threads']} thread(s); `python -m benchmarks.scoring_cost`. The last two "
        "columns are the largest difference between a row scored alone and the same row "
        "scored among all of them (scikit-learn's tolerance is 1e-7).",
        "",
        "| data | float32 (before) s | float64 (now) s | ratio | float32 alone vs batch "
        "| float64 alone vs batch |",
        "|---|---|---|---|---|---|",
    ]
    for kind in dict.fromkeys(r["kind"] for r in rows):
        by = {r["precision"]: r for r in rows if r["kind"] == kind}
        before, now = by["float32"], by["float64"]
        lines.append(
            f"| {kind} defaults | {before['seconds']:.3f} | {now['seconds']:.3f} | "
            f"{now['seconds'] / before['seconds']:.2f} | {before['alone_vs_batch']:.2g} | "
            f"{now['alone_vs_batch']:.2g} |"
        )
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    with torch_threads(args.threads):
        rows = [row for kind in ("table", "image") for row in measure(kind, args.rounds)]
    with args.out.open("a") as out:
        out.writelines(json.dumps(row) + "\n" for row in rows)
    print("\n".join(scoring_cost_section(rows)))


if __name__ == "__main__":
    main()
