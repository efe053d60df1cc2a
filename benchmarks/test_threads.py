"""Intra-op threads and a busy neighbour: ``fit`` with 1 and 2 torch threads, alone and
beside another process that keeps one core busy.

On a small machine shared with other work, torch's intra-op threads wait for each other
at every operation; when one of them has lost its core to another process, every
operation waits for it. The benchmark times the same ``fit`` (2-D MLP with the table
defaults; digits with the demo's conv EBM and Glow) with ``torch.set_num_threads(1)``
and ``(2)``, first alone and then beside a busy process (a Python loop), the four runs
alternating round after round. It records each median and the ratios that matter:
two threads over one, alone and beside the busy process. CPU only; it needs 2 cores.
Nothing about timing is asserted.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext

import pytest
import torch

from benchmarks.common import measure
from coopkit import CoopFlow
from coopkit.datasets import eight_gaussians
from coopkit.demo import DEMOS
from coopkit.metrics import digits_split
from coopkit.threads import torch_threads

THREADS = (1, 2)


@contextmanager
def busy_process() -> Iterator[None]:
    """Another process that keeps one core busy while the block runs."""
    process = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.5)
        yield
    finally:
        process.kill()
        process.wait()


def fit_seconds(fit: Callable[[], object], n_threads: int) -> float:
    with torch_threads(n_threads):
        start = time.perf_counter()
        fit()
        return time.perf_counter() - start


def problem(name: str, n_iter: int) -> Callable[[], object]:
    """A ``fit`` of ``n_iter`` iterations on the named problem, ready to call."""
    if name == "mlp-2d":
        X = eight_gaussians(2000, 0)
        params = {"energy": "mlp", "n_iter": n_iter, "batch_size": 256}
    else:
        X = digits_split()[0]
        params = {**DEMOS["digits"], "n_iter": n_iter}
    params.update(random_state=0, n_partition_samples=256)
    return lambda: CoopFlow(**params).fit(X)


@pytest.mark.parametrize("name", ["mlp-2d", "digits"])
def test_fit_threads_beside_a_busy_process(
    benchmark: object, name: str, device: torch.device, smoke: bool
) -> None:
    if device.type != "cpu" or (os.cpu_count() or 1) < 2:
        pytest.skip("threads and a busy neighbour matter on a CPU with at least 2 cores")
    rounds = 1 if smoke else 2
    fit = problem(name, n_iter=2 if smoke else {"mlp-2d": 30, "digits": 6}[name])
    if not smoke:
        fit_seconds(fit, 1)
    times: dict[str, list[float]] = {}

    def run_rounds() -> None:
        for _ in range(rounds):
            for neighbour in ("alone", "busy"):
                with busy_process() if neighbour == "busy" else nullcontext():
                    for n in THREADS:
                        times.setdefault(f"{neighbour}_{n}", []).append(fit_seconds(fit, n))

    measure(benchmark, run_rounds, device, 1)
    medians = {key: statistics.median(values) for key, values in times.items()}
    benchmark.extra_info.update(
        {
            "kind": "threads",
            "problem": name,
            "rounds": rounds,
            **{f"{key}_s": value for key, value in medians.items()},
            "two_over_one_alone": medians["alone_2"] / medians["alone_1"],
            "two_over_one_busy": medians["busy_2"] / medians["busy_1"],
            "busy_over_alone_1": medians["busy_1"] / medians["alone_1"],
            "busy_over_alone_2": medians["busy_2"] / medians["alone_2"],
        }
    )
