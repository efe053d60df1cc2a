"""The sample-quality part of ``docs/benchmarks.md``: the per-seed rows of
``test_toy_quality`` and ``test_digits_quality`` as tables of mean ± standard deviation
over seeds, with an honest count of CoopFlow's wins."""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence
from typing import Any

TOY_SETS = ("eight_gaussians", "moons", "circles", "checkerboard")
BASELINES = {"flow_alone": "flow alone (ML)", "short_run_ebm": "short-run EBM (noise)"}
COLUMNS = {
    "floor": "data (floor)",
    "coopflow": "CoopFlow",
    "proposals": "CoopFlow, flow proposals",
    **BASELINES,
}
METRICS = {"c2st": "C2ST accuracy", "swd": "sliced Wasserstein", "mmd": "squared MMD"}
DIGITS_COLUMNS = {"floor": "data (floor)", "gaussian": "full-covariance Gaussian", **COLUMNS}
DIGITS_METRICS = {"c2st": "C2ST accuracy", "frechet": "Fréchet distance"}
SCORED = ("proposals", "floor", "gaussian")  # columns that CoopFlow's rows carry
C2ST_TARGET = 0.58


def values(rows: Sequence[dict[str, Any]], dataset: str, column: str, metric: str) -> list[float]:
    """The per-seed values of ``metric`` for one table cell.

    ``column`` is a method, or one of :data:`SCORED`, which CoopFlow's rows carry.

    Examples:
        >>> rows = [{"dataset": "moons", "method": "coopflow", "c2st": 0.5,
        ...          "proposals": {"c2st": 0.6}}]
        >>> values(rows, "moons", "proposals", "c2st"), values(rows, "moons", "coopflow", "c2st")
        ([0.6], [0.5])
    """
    if column in SCORED:
        return [r[column][metric] for r in rows if r["dataset"] == dataset and column in r]
    return [r[metric] for r in rows if r["dataset"] == dataset and r["method"] == column]


def cell(numbers: Sequence[float]) -> str:
    """``mean ± sd``, both rounded to the second significant digit of the spread (one
    digit more cannot be read from a few seeds, and wide tables stay readable); small
    figures in scientific notation; ``n/a`` when empty.

    Examples:
        >>> cell([0.5, 0.6]), cell([70.88, 60.1, 75.0]), cell([]), cell([8.111])
        ('0.550 ± 0.071', '68.7 ± 7.7', 'n/a', '8.111 ± 0')
        >>> cell([9.3e-05, 6e-4])
        '3.5e-04 ± 3.6e-04'
    """
    if not numbers:
        return "n/a"
    mean = statistics.mean(numbers)
    spread = statistics.stdev(numbers) if len(numbers) > 1 else 0.0
    if spread == 0:
        return f"{mean:.4g} ± 0"
    if max(abs(mean), spread) < 1e-2:
        return f"{mean:.1e} ± {spread:.1e}"
    decimals = max(0, 1 - math.floor(math.log10(spread)))
    return f"{mean:.{decimals}f} ± {spread:.{decimals}f}"


def wins(rows: Sequence[dict[str, Any]], dataset: str, metric: str) -> bool | None:
    """Whether CoopFlow's mean is below both baselines' means (``None``: not all ran)."""
    means = {}
    for column in ("coopflow", *BASELINES):
        numbers = values(rows, dataset, column, metric)
        if not numbers:
            return None
        means[column] = statistics.mean(numbers)
    return all(means["coopflow"] < means[b] for b in BASELINES)


def metric_table(
    rows: Sequence[dict[str, Any]],
    metric: str,
    datasets: Sequence[str] = TOY_SETS,
    columns: dict[str, str] = COLUMNS,
) -> list[str]:
    header = ["data set", *columns.values(), "CoopFlow below both?"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for dataset in datasets:
        verdict = wins(rows, dataset, metric)
        if verdict is None:
            continue
        cells = [cell(values(rows, dataset, column, metric)) for column in columns]
        lines.append(
            f"| {dataset} | " + " | ".join([*cells, "yes" if verdict else "**no**"]) + " |"
        )
    return lines


def timing_table(rows: Sequence[dict[str, Any]], datasets: Sequence[str] = TOY_SETS) -> list[str]:
    header = ["data set", *(COLUMNS[m] for m in ("coopflow", *BASELINES))]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for dataset in datasets:
        cells = [
            cell(
                [r["seconds_per_iter"] for r in rows if (r["dataset"], r["method"]) == (dataset, m)]
            )
            for m in ("coopflow", *BASELINES)
        ]
        if "n/a" not in cells:
            lines.append(f"| {dataset} | " + " | ".join(cells) + " |")
    return lines


def verdict_line(rows: Sequence[dict[str, Any]]) -> str:
    """How many (data set, metric) comparisons CoopFlow wins, and the C2ST target."""
    decided = [
        (dataset, metric, wins(rows, dataset, metric)) for dataset in TOY_SETS for metric in METRICS
    ]
    decided = [d for d in decided if d[2] is not None]
    won = [f"{d} ({m})" for d, m, w in decided if w]
    over = [
        d
        for d in TOY_SETS
        if values(rows, d, "coopflow", "c2st")
        and statistics.mean(values(rows, d, "coopflow", "c2st")) > C2ST_TARGET
    ]
    target = (
        f"CoopFlow's mean C2ST is at most {C2ST_TARGET} on every set."
        if not over
        else f"CoopFlow's mean C2ST is above {C2ST_TARGET} on: {', '.join(over)}."
    )
    return (
        f"**CoopFlow's mean is below both baselines' in {len(won)} of {len(decided)} 2-D "
        f"comparisons**: {', '.join(won) or 'none'}. {target}"
    )


def toy_section(rows: Sequence[dict[str, Any]]) -> list[str]:
    """The 2-D tables, from ``test_toy_quality``'s per-seed rows."""
    if not rows:
        return ["No 2-D quality benchmark ran."]
    seeds = sorted({r["seed"] for r in rows})
    first = rows[0]
    lines: list[str] = [
        f"2-D sets: every method with its defaults for {first['iterations']} iterations of "
        f"batch 256 on 20,000 points, seeds {', '.join(map(str, seeds))} (a seed sets the data, "
        "the initialisation and the batches); scored with as many samples as held-out "
        "points. Cells are mean ± standard deviation over the seeds; lower is better.",
        "",
        verdict_line(rows),
    ]
    for metric, title in METRICS.items():
        lines += ["", f"### {title} (2-D)", "", *metric_table(rows, metric)]
    lines += ["", "### Seconds per iteration (2-D)", "", *timing_table(rows)]
    return lines


def digits_section(rows: Sequence[dict[str, Any]]) -> list[str]:
    """The digits tables, from ``test_digits_quality``'s per-seed rows."""
    if not rows:
        return ["No digits quality benchmark ran."]
    seeds = sorted({r["seed"] for r in rows})
    c2st = {c: values(rows, "digits", c, "c2st") for c in ("coopflow", "gaussian")}
    below_gaussian = all(c2st.values()) and statistics.mean(c2st["coopflow"]) < statistics.mean(
        c2st["gaussian"]
    )
    won = [m for m in DIGITS_METRICS if wins(rows, "digits", m)]
    coopflow = next((r for r in rows if r["method"] == "coopflow"), rows[0])
    resolved = ", ".join(f"{k}={v!r}" for k, v in coopflow["resolved"].items())
    lines = [
        'Digits: every method with the settings of `coopkit.demo.DEMOS["digits"]` as they '
        f"were at the time of the run (CoopFlow resolved them to {resolved}) for "
        f"{rows[0]['iterations']} iterations, trained on the 70% split of "
        f"`coopkit.metrics.digits_split`, seeds {', '.join(map(str, seeds))}; 540 samples, "
        "rounded to the data's integer levels, against the 540 held-out digits. *Full-"
        "covariance Gaussian*: a Gaussian fitted to the training digits, clipped to [0, 16].",
        "",
        f"**CoopFlow's mean is below both baselines' on {len(won)} of {len(DIGITS_METRICS)} "
        f"digits metrics** ({', '.join(won) or 'none'}); its mean C2ST is "
        f"{'below' if below_gaussian else '**not below**'} the Gaussian fit's.",
    ]
    for metric, title in DIGITS_METRICS.items():
        table = metric_table(rows, metric, ("digits",), DIGITS_COLUMNS)
        lines += ["", f"### {title} (digits)", "", *table]
    lines += ["", "### Seconds per iteration (digits)", "", *timing_table(rows, ("digits",))]
    return lines


def rows_of(benchmarks: Iterable[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    """The ``extra_info`` of every run of ``kind`` (``"toy_quality"``,
    ``"digits_quality"``) in a pytest-benchmark JSON."""
    return [b["extra_info"] for b in benchmarks if b["extra_info"].get("kind") == kind]
