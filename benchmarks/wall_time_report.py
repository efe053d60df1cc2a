"""The "Digits at equal wall time" part of ``docs/benchmarks.md``, from the rows that
``python -m benchmarks.wall_time`` appends to :data:`RESULTS`: a table per budget (mean
± standard deviation over seeds), an honest count of CoopFlow's wins at the demo's
budget, and the curve of C2ST against training time."""

from __future__ import annotations

import json
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.quality_report import cell

RESULTS = Path(__file__).resolve().parent / "results" / "digits_wall_time.jsonl"
DEMO_BUDGET = 180.0
TARGET = 0.75
TITLES = {
    "coopflow": "CoopFlow (image defaults), revised samples",
    "proposals": "CoopFlow, its flow's proposals",
    "flow_alone": "its flow alone (maximum likelihood)",
    "short_run_ebm": "its short-run EBM from noise (conv net)",
    "gaussian": "full-covariance Gaussian",
    "zuko_nsf": "zuko NSF (pixels / 17, uniform dequantisation)",
}
PEERS = ("flow_alone", "short_run_ebm", "gaussian", "zuko_nsf")


def load(path: Path = RESULTS) -> list[dict[str, Any]]:
    """The rows of ``path`` (none when it does not exist)."""
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def scores(rows: Sequence[dict[str, Any]], method: str, budget: float, key: str) -> list[float]:
    """Per-seed ``key`` of ``method`` at ``budget`` (the Gaussian at any budget; CoopFlow's
    proposals as ``method="proposals"``).

    Examples:
        >>> rows = [{"method": "coopflow", "budget": 60, "c2st": 0.7, "proposals": {"c2st": 0.8}}]
        >>> scores(rows, "proposals", 60, "c2st"), scores(rows, "coopflow", 60, "c2st")
        ([0.8], [0.7])
    """
    if method == "proposals":
        return [
            r["proposals"][key] for r in rows if r["method"] == "coopflow" and r["budget"] == budget
        ]
    return [
        r[key]
        for r in rows
        if r["method"] == method and (method == "gaussian" or r["budget"] == budget)
    ]


def budget_table(rows: Sequence[dict[str, Any]], budget: float) -> list[str]:
    """The table of every method at ``budget`` seconds."""
    header = ["method", "seeds", "seconds trained", "iterations", "C2ST", "Fréchet"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for method, title in TITLES.items():
        c2st = scores(rows, method, budget, "c2st")
        if not c2st:
            continue
        source = "coopflow" if method == "proposals" else method
        cells = [
            title,
            str(len(c2st)),
            cell(scores(rows, source, budget, "seconds")),
            cell(scores(rows, source, budget, "n_iter")),
            cell(c2st),
            cell(scores(rows, method, budget, "frechet")),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def verdict(rows: Sequence[dict[str, Any]], budget: float = DEMO_BUDGET) -> list[str]:
    """One line per peer: is CoopFlow's mean C2ST lower, and by how much; the target."""
    mine = scores(rows, "coopflow", budget, "c2st")
    if not mine:
        return [f"CoopFlow was not run at {budget:g} s."]
    mean = statistics.mean(mine)
    lines = []
    wins = 0
    for peer in PEERS:
        theirs = scores(rows, peer, budget, "c2st")
        if not theirs:
            lines.append(f"* {TITLES[peer]}: not run.")
            continue
        won = mean < statistics.mean(theirs)
        wins += won
        lines.append(
            f"* {TITLES[peer]}: CoopFlow's C2ST {mean:.3f} against {statistics.mean(theirs):.3f}"
            f", {'lower' if won else 'not lower'}."
        )
    met = "met" if mean <= TARGET else "not met"
    head = f"At {budget:g} s CoopFlow's revised samples beat {wins} of {len(PEERS)} peers on C2ST"
    return [f"{head}; the target C2ST ≤ {TARGET} is {met}.", "", *lines]


def draw_curve(rows: Sequence[dict[str, Any]], path: Path) -> None:
    """C2ST against seconds of training, mean and spread over seeds, per method."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6.4, 5.0), dpi=150)
    for method in ("coopflow", "proposals", "flow_alone", "short_run_ebm", "zuko_nsf"):
        source = "coopflow" if method == "proposals" else method
        budgets = sorted({r["budget"] for r in rows if r["method"] == source})
        points = [(b, scores(rows, method, b, "c2st")) for b in budgets]
        points = [(b, s) for b, s in points if s]
        if not points:
            continue
        means = [statistics.mean(s) for _, s in points]
        spreads = [statistics.stdev(s) if len(s) > 1 else 0.0 for _, s in points]
        x = [b / 60 for b, _ in points]
        axes.errorbar(x, means, yerr=spreads, marker="o", capsize=3, label=TITLES[method])
    gaussian = scores(rows, "gaussian", 0.0, "c2st")
    if gaussian:
        axes.axhline(
            statistics.mean(gaussian), color="grey", linestyle=":", label=TITLES["gaussian"]
        )
    axes.axhline(TARGET, color="black", linewidth=0.8, linestyle="--", label=f"target {TARGET}")
    axes.set_xscale("log")
    minutes = sorted({r["budget"] / 60 for r in rows if r["budget"] > 0})
    axes.set_xticks(minutes, labels=[f"{m:g}" for m in minutes])
    axes.set_xlabel("minutes of training (CPU time, one thread)")
    axes.set_ylabel("C2ST accuracy (0.5 = indistinguishable)")
    axes.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    plt.close(figure)


def wall_time_section(rows: Sequence[dict[str, Any]], images: Path) -> list[str]:
    """The section's lines; draws the curve into ``images``."""
    if not rows:
        return ["No wall-time comparison was measured (`python -m benchmarks.wall_time`)."]
    draw_curve(rows, images / "digits-wall-time.png")
    budgets = sorted({r["budget"] for r in rows if r["method"] != "gaussian"})
    lines = [
        "Each method trained for the same CPU time on the 70% split of the digits, 540 "
        "samples rounded to levels scored against the 540 held-out digits; one thread per "
        "run (CPU seconds of one thread are the wall time of an idle core; two runs went "
        "side by side on the 2-core machine, and CPU time, unlike wall time, does not grow "
        "with such sharing). Reproduce a row with "
        "`OMP_NUM_THREADS=1 python -m benchmarks.wall_time --method METHOD --seconds 60 180 "
        "--seeds 0 1 2` (methods: coopflow, flow_alone, short_run_ebm, gaussian, zuko_nsf).",
        "",
        *verdict(rows),
        "",
        "![C2ST against training time](img/benchmarks/digits-wall-time.png)",
        "",
        "The *seconds trained* column is the CPU time each fit really took, calibration "
        "excluded: a run whose calibration overestimated the cost of an iteration trained "
        "for less than its budget, one that underestimated it for more. Digits rows "
        "elsewhere on this page name the settings they were measured with.",
    ]
    if (images / "digits-demo-samples.png").is_file():
        lines += [
            "",
            "![coopkit demo: training digits, the flow's proposals, the revised samples]"
            "(img/benchmarks/digits-demo-samples.png)",
        ]
    for budget in budgets:
        lines += ["", f"### {budget:g} seconds", "", *budget_table(rows, budget)]
    return lines


HEADING = "## Digits at equal wall time"
