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

# The ratios of three runs each of `COOPKIT_BENCH_DEVICE=cpu OMP_NUM_THREADS=1 python -m
# pytest benchmarks/test_iteration_overhead.py`, with `coopkit/training.py` before and
# after commit 2cb9129, run alternately (before, after, before, ...) on one machine.
BEFORE_AFTER: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "mlp-2d, realnvp": ((1.086, 1.090, 1.086), (1.061, 1.059, 1.062)),
    "conv-8x8, glow": ((0.989, 1.011, 1.015), (1.007, 1.025, 1.050)),
}
CHANGE = (
    "The iteration before and after commit 2cb9129, three runs each, alternately, on a "
    "2-core Intel Xeon shared with other jobs, one torch thread. Before, a GPU iteration "
    "waited for the device nine times: the four finiteness checks (the energy's loss, "
    "its gradient norm, the flow's loss, its gradient norm) one by one, then each of "
    "the four recorded tensors copied to the CPU by itself, and the row once more after "
    "averaging across processes. Now it waits twice: for the energy's loss and "
    "gradient norm before its step (the flow must not see the samples of a diverged "
    "energy: image flows refuse non-finite pixels), then for the flow's together with "
    "the whole history row. The energy's gradient norm no longer goes through "
    "`clip_grad_norm_` with an infinite bound, which scaled every gradient by 1, and the "
    "flow's clipping takes the optimiser's parameter list instead of walking the module "
    "tree again. Training is bit-identical. On the table net the iteration lost about "
    "a quarter of what it spends above the floor (callgrind, instructions per call: "
    "iteration 290.5M before, 288.9M after, floor 283.2M); what is left is mostly the "
    "sampler's own steps (its clamps and bookkeeping, about 5% over its gradient "
    "passes) and the flow's gradient clipping, which the algorithm asks for. On digits "
    "the trainer's own work is a few tenths of a percent of a 250 ms iteration, below "
    "the run-to-run spread of these timings."
)


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
