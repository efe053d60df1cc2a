"""The "Tilt chosen on held-out rows" part of ``docs/benchmarks.md``, from the rows that
``python -m benchmarks.tilt`` appends to :data:`RESULTS`: per data set and method, C2ST,
the distance and the held-out log-density (mean ± standard deviation over seeds), the
chosen tilts and whether ``log Z`` was reliable."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.quality_report import cell
from benchmarks.wall_time_report import load

RESULTS = Path(__file__).resolve().parent / "results" / "tilt.jsonl"
HEADING = "## Tilt chosen on held-out rows"
TITLES = {
    "trained": "CoopFlow as trained (tilt 1, the default)",
    "auto": 'tilt="auto"',
    "auto_l2": 'tilt="auto", energy_l2=0.1',
    "trained_l2": "tilt 1, energy_l2=0.1",
    "flow_alone": "its flow alone",
    "gaussian": "full-covariance Gaussian",
}


def method_row(found: Sequence[dict[str, Any]], title: str) -> list[str]:
    """One table row from the per-seed rows of one method on one data set.

    Examples:
        >>> rows = [{"c2st": 0.6, "distance": 2.0, "log_density": -3.0, "outside": 0,
        ...          "tilt": 0.0, "reliable": True, "seconds": 9.0}] * 2
        >>> method_row(rows, "m")
        ['m', '2', '0.6 ± 0', '2 ± 0', '-3 ± 0', '0, 0', '2 of 2', '9 ± 0']
    """
    densities = [r["log_density"] for r in found if "log_density" in r]
    tilts = ", ".join(f"{r['tilt']:.3g}" for r in found if "tilt" in r)
    reliable = [r["reliable"] for r in found if "reliable" in r]
    return [
        title,
        str(len(found)),
        cell([r["c2st"] for r in found]),
        cell([r["distance"] for r in found]),
        cell(densities) if densities else "–",
        tilts or "–",
        f"{sum(reliable)} of {len(reliable)}" if reliable else "–",
        cell([r["seconds"] for r in found]),
    ]


def tilt_section(rows: Sequence[dict[str, Any]]) -> list[str]:
    """The section: one table per data set, methods in :data:`TITLES` order."""
    if not rows:
        return ["No tilt benchmark ran (`python -m benchmarks.tilt`)."]
    header = [
        "method",
        "seeds",
        "C2ST",
        "distance",
        "held-out log-density",
        "tilt per seed",
        "log Z reliable",
        "CPU s",
    ]
    lines = [
        "`python -m benchmarks.tilt --dataset D --seeds 0 1 2` (rows in "
        "`benchmarks/results/tilt.jsonl`): scikit-learn's tables split 70/30 (400 "
        "iterations of batch 128) and the digits split (400 of 256), C2ST and a distance "
        "(sliced Wasserstein; Fréchet on the digits) of as many samples as held-out rows, "
        "and the held-out rows' mean log-density under the model's `score_samples` (the "
        "flow's own for the flow alone), in data units. A log Z that is not reliable makes "
        "its log-density meaningless ([Likelihood](guide/likelihood.md#a-tilt-chosen-on-"
        "held-out-rows)).",
    ]
    for dataset in dict.fromkeys(r["dataset"] for r in rows):
        lines += ["", f"**{dataset}**", ""]
        lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for method, title in TITLES.items():
            found = [r for r in rows if r["dataset"] == dataset and r["method"] == method]
            if found:
                lines.append("| " + " | ".join(method_row(found, title)) + " |")
    return lines


def main() -> None:
    print("\n".join([HEADING, "", *tilt_section(load(RESULTS))]))


if __name__ == "__main__":
    main()
