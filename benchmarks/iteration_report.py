"""The training-iteration part of ``docs/benchmarks.md``: one cooperative iteration
against its floor, from ``test_iteration_overhead``'s rows, and the figures of the
change that brought it down (hand-written: they compare two versions of the code)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

TARGET_RATIO = 1.10

INTRODUCTION = (
    "Time of one cooperative iteration (`CoopTrainer.coop_step` on a fixed batch) "
    "divided by the time of its floor, the parts no implementation can skip, each run "
    "alone on copies of the same nets: the flow's inverse on the batch's latent codes; "
    "as many forward and input-gradient passes of the energy net as the sampler calls it "
    "(T = 30 Langevin steps); one forward and backward pass of the energy net on data "
    "and samples together, and its Adam step; one forward (`log_prob`) and backward pass "
    "of the flow on the batch it learns from, and its Adam step. Everything else is "
    "overhead: drawing latent codes and dequantisation noise, the sampler's own "
    "bookkeeping, the flow's gradient clipping, the finiteness checks, the warm-up "
    "schedules and the history. Target: at most 1.10. The two are timed back to back in "
    "every round after warm-up; the ratio is the median of the rounds' ratios (the "
    "medians of the two times are shown beside it). `mlp-2d, realnvp`: the paper's "
    "algorithm on the 2-D moons (Langevin in data space, the flow learning from the "
    'revised samples; the `"auto"` table defaults revise by gradient-free pCN moves in '
    "the flow's latent space, which this floor does not describe); `conv-8x8, glow`: the "
    "digits demo's settings."
)

# Ratios of three runs each of `python -m pytest benchmarks/test_iteration_overhead.py
# --device cpu`, before and after the change, run alternately on one machine.
BEFORE_AFTER: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {}
CHANGE = ""


def iteration_table(rows: Sequence[dict[str, Any]]) -> list[str]:
    """The measured table, one row per problem.

    Examples:
        >>> row = {"problem": "p", "flow_parameters": 10, "energy_parameters": 2000,
        ...        "batch": 8, "energy_calls": 30, "iteration_s": 0.0105,
        ...        "floor_s": 0.01, "ratio": 1.049}
        >>> iteration_table([row])[-1]
        '| `p` | 10 / 2,000 | 8 | 30 | 10.5 | 10.0 | 1.05 | yes |'
    """
    header = [
        "problem",
        "parameters (flow / energy)",
        "batch",
        "energy calls",
        "iteration (ms)",
        "floor (ms)",
        "ratio",
        f"≤ {TARGET_RATIO:.2f}?",
    ]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in rows:
        cells = [
            f"`{r['problem']}`",
            f"{r['flow_parameters']:,} / {r['energy_parameters']:,}",
            str(r["batch"]),
            str(r["energy_calls"]),
            f"{1e3 * r['iteration_s']:.1f}",
            f"{1e3 * r['floor_s']:.1f}",
            f"{r['ratio']:.2f}",
            "yes" if r["ratio"] <= TARGET_RATIO else "**no**",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def before_after_table() -> list[str]:
    """The hand-written comparison of the ratios before and after the change."""
    if not BEFORE_AFTER:
        return []
    lines = [
        "| problem | before: ratio per run | after: ratio per run |",
        "|---|---|---|",
    ]
    for problem, (before, after) in BEFORE_AFTER.items():
        shown = [", ".join(f"{r:.3f}" for r in runs) for runs in (before, after)]
        lines.append(f"| `{problem}` | {shown[0]} | {shown[1]} |")
    return ["### Before and after", "", CHANGE, "", *lines]


def iteration_section(rows: Sequence[dict[str, Any]]) -> list[str]:
    """The whole section: what is measured, the run's table, the change's figures."""
    if not rows:
        return ["No training-iteration benchmark ran."]
    lines = [INTRODUCTION, "", *iteration_table(rows)]
    comparison = before_after_table()
    return [*lines, "", *comparison] if comparison else lines
