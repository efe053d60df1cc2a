"""Where a sampler's time goes beyond its gradient passes (issue 28, item 3).

:mod:`benchmarks.test_sampler_overhead` gives one ratio per sampler and net: the
sampler call's time over its floor, as many plain forward and input-gradient backward
passes of the energy net as the call evaluates gradients. This module says what the
rest is. Under ``torch.profiler`` it records the self CPU time of every operator in one
sampler call and in its floor, and the difference per operator is the sampler's own
work: the proposal's noise and arithmetic, the acceptance ratio, the select, the
bookkeeping. The profiler adds a fixed cost to every operator it records, which weighs
on the sampler's many small operators more than on the net's few large ones, so the
wall-clock ratio beside the table is timed without it (alternating rounds, medians).

Run as ``python -m benchmarks.sampler_profile [--samplers mala hmc] [--rounds R]
[--compile-step] [--out FILE]``: one row per sampler is appended to ``FILE`` (default
:data:`RESULTS`) and :func:`profile_section` builds the page's table from the rows. One
torch thread.
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from unittest import mock

import torch
from torch.profiler import ProfilerActivity, profile

from benchmarks.common import machine_facts, seconds
from benchmarks.test_sampler_overhead import TABLE, Problem, sampler_and_floor
from coopkit.samplers import mala
from coopkit.samplers.base import Metropolis
from coopkit.threads import torch_threads

RESULTS = Path(__file__).resolve().parent / "results" / "sampler_profile.jsonl"
HEADING = "## Where the samplers' time goes"
TOP_OPERATORS = 8


def operator_times(call: Callable[[], Any], rounds: int) -> dict[str, list[float]]:
    """``{operator: [self CPU seconds, calls]}`` in one ``call()``, averaged over ``rounds``
    (after one profiled warm-up, which pays the profiler's own start-up)."""
    for _ in range(2):
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(rounds):
                call()
    return {
        event.key: [event.self_cpu_time_total * 1e-6 / rounds, event.count / rounds]
        for event in prof.key_averages()
        if event.self_cpu_time_total > 0
    }


def wall_times(
    call: Callable[[], Any], reference: Callable[[], Any], rounds: int
) -> tuple[float, float]:
    """Median seconds of ``call`` and of ``reference``, timed alternately after warm-up."""
    cpu = torch.device("cpu")
    pairs = [(seconds(call, cpu), seconds(reference, cpu)) for _ in range(2 + rounds)][2:]
    return statistics.median(p[0] for p in pairs), statistics.median(p[1] for p in pairs)


@contextmanager
def compiled_step(enabled: bool) -> Iterator[None]:
    """With ``enabled``, MALA's acceptance ratio and its select (all of a transition's
    element-wise work but the proposal's two fused multiply-adds and the draws, which
    take the sampler's generator) run ``torch.compile``d, fused into a few kernels."""
    if not enabled:
        yield
        return
    with (
        mock.patch.object(mala, "log_acceptance", torch.compile(mala.log_acceptance)),
        mock.patch.object(Metropolis, "keep", torch.compile(Metropolis.keep)),
    ):
        yield


def measure(
    sampler_name: str, problem: Problem = TABLE, rounds: int = 30, compile_step: bool = False
) -> dict[str, Any]:
    """The row of one sampler on ``problem``: wall times of the call and its floor, and
    the self CPU time of each operator in each; ``compile_step``: see
    :func:`compiled_step`."""
    with compiled_step(compile_step):
        return measure_calls(sampler_name, problem, rounds) | {"compile_step": compile_step}


def measure_calls(sampler_name: str, problem: Problem, rounds: int) -> dict[str, Any]:
    """:func:`measure`'s row, with the sampler as it is installed."""
    cpu = torch.device("cpu")
    _, run_sampler, run_floor, passes = sampler_and_floor(problem, sampler_name, cpu)
    sampler_s, floor_s = wall_times(run_sampler, run_floor, rounds)
    return {
        "sampler": sampler_name,
        "net": problem.name,
        "batch": problem.batch,
        "gradient_evaluations": passes,
        "sampler_s": sampler_s,
        "floor_s": floor_s,
        "sampler_ops": operator_times(run_sampler, rounds),
        "floor_ops": operator_times(run_floor, rounds),
        "rounds": rounds,
        **machine_facts(cpu),
    }


def excess(row: dict[str, Any]) -> list[tuple[str, float, float]]:
    """``(operator, seconds, calls)`` the sampler spends on each operator beyond its
    floor, per call, largest time first.

    Examples:
        >>> excess({"sampler_ops": {"aten::mm": [3.0, 60], "aten::randn": [1.0, 30]},
        ...         "floor_ops": {"aten::mm": [2.5, 60]}})
        [('aten::randn', 1.0, 30), ('aten::mm', 0.5, 0)]
    """
    sampler_ops, floor_ops = row["sampler_ops"], row["floor_ops"]
    rows = []
    for name in set(sampler_ops) | set(floor_ops):
        (s_time, s_calls), (f_time, f_calls) = (
            ops.get(name, (0, 0)) for ops in (sampler_ops, floor_ops)
        )
        rows.append((name, s_time - f_time, s_calls - f_calls))
    return sorted(rows, key=lambda item: -item[1])


def short_name(operator: str) -> str:
    """The profiler's name of ``operator``, without ``aten::`` and compiled graphs' hashes.

    Examples:
        >>> short_name("aten::where"), short_name("## Call CompiledFxGraph f2x3 ##")
        ('where', 'compiled graph')
    """
    if operator.startswith("## Call CompiledFxGraph"):
        return "compiled graph"
    return operator.removeprefix("aten::")


def profile_section(rows: Sequence[dict[str, Any]]) -> list[str]:
    """The page's table: per sampler, the wall-clock ratio to the floor, how many
    operators the call runs beyond the floor's and what they cost, and the operators
    that take the most of it."""
    if not rows:
        return ["Not measured yet: run `python -m benchmarks.sampler_profile`."]
    lines = [
        "One call of each sampler on the 2-D table net (`mlp-2d`, batch 256, one thread),",
        "against its floor. The call and floor times and their ratio are wall-clock,",
        "alternating rounds, medians, without the profiler. The rest is from",
        "`torch.profiler`: the operators the call runs beyond the floor's (per gradient",
        "evaluation), their mean self CPU time each, and, among the operators the call",
        f"runs more often than the floor, the {TOP_OPERATORS} with the most self time beyond",
        "the floor's (ms per call; the net's own operators run as often in both, and their",
        "difference between two profiles is noise).",
        "The profiler adds a fixed cost to every operator, so its figures overstate",
        "the small ones. Command: `python -m benchmarks.sampler_profile`; the row",
        '"step compiled" adds `--samplers mala --compile-step` (MALA\'s acceptance',
        "ratio and select through `torch.compile`).",
        "",
        "On a net this small an operator costs a few microseconds whatever it computes",
        "(256 × 2 numbers), so a sampler's excess is the number of operators it runs, not",
        "their arithmetic; on the image nets the same operators are under a tenth of a",
        "call (the table above). Compiling MALA's step trades its element-wise operators",
        "for the compiled regions' guards and wrappers, which cost more at this size.",
        "",
        "| sampler | call (ms) | floor (ms) | ratio | extra operators per gradient |"
        " µs each | where the extra time goes (ms per call) |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        ops = excess(row)
        extra = [op for op in ops if op[2] > 0]
        extra_calls = sum(calls for _, _, calls in extra)
        each = 1e6 * sum(s for _, s, _ in extra) / extra_calls if extra_calls else float("nan")
        top = ", ".join(
            f"`{short_name(name)}` {1e3 * seconds_:.2f}"
            for name, seconds_, _ in extra[:TOP_OPERATORS]
        )
        cells = [
            row["sampler"] + (", step compiled" if row.get("compile_step") else ""),
            f"{1e3 * row['sampler_s']:.1f}",
            f"{1e3 * row['floor_s']:.1f}",
            f"{row['sampler_s'] / row['floor_s']:.2f}",
            f"{extra_calls / row['gradient_evaluations']:.0f}",
            f"{each:.1f}",
            top,
        ]
        lines.append(f"| {' | '.join(cells)} |")
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samplers", nargs="+", default=["langevin", "mala", "hmc"])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--compile-step", action="store_true", help=compiled_step.__doc__)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    with torch_threads(1):
        for name in args.samplers:
            row = measure(name, rounds=args.rounds, compile_step=args.compile_step)
            with args.out.open("a") as handle:
                handle.write(json.dumps(row) + "\n")
            print("\n".join(profile_section([row])[-1:]))


if __name__ == "__main__":
    main()
