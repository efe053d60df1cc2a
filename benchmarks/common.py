"""What the benchmark modules share: careful timing, the problem sizes, sample files.

Timing: every measured call is bracketed by ``torch.cuda.synchronize`` on a GPU (CUDA
calls return before the work is done), warmed up first by the caller, repeated, and
summarised by its median. A ratio of two timings is measured with the two functions
run alternately, round after round, so that load from elsewhere on a shared machine
hits both alike.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from coopkit.demo import DEMOS

LANGEVIN_STEPS = 30
TRAIN_BATCH = 28
OVERHEAD_BATCH = 64


def synchronize(device: torch.device) -> None:
    """Wait for the work queued on ``device`` (a no-op on the CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def seconds(fn: Callable[[], Any], device: torch.device) -> float:
    """Wall-clock seconds of one call of ``fn``, synchronised on ``device``.

    Examples:
        >>> seconds(lambda: sum(range(1000)), torch.device("cpu")) < 1.0
        True
    """
    synchronize(device)
    start = time.perf_counter()
    fn()
    synchronize(device)
    return time.perf_counter() - start


def measure_rounds(
    benchmark: Any,
    target: Callable[[], Any],
    device: torch.device,
    rounds: int,
    reference: Callable[[], Any] | None = None,
) -> tuple[list[float], list[float]]:
    """Seconds of ``target`` in each round, and of ``reference``, run just before it in
    the same round (empty without ``reference``).

    ``target`` runs under pytest-benchmark's ``pedantic`` (its statistics land in the
    ``--benchmark-json`` file); ``reference`` runs in the untimed setup of every round,
    so the two alternate. With ``--benchmark-disable`` each runs once. Warm up before.
    """
    target_times: list[float] = []
    reference_times: list[float] = []

    def setup() -> None:
        if reference is not None:
            reference_times.append(seconds(reference, device))

    benchmark.pedantic(
        lambda: target_times.append(seconds(target, device)), setup=setup, rounds=rounds
    )
    return target_times, reference_times


def measure(
    benchmark: Any,
    target: Callable[[], Any],
    device: torch.device,
    rounds: int,
    reference: Callable[[], Any] | None = None,
) -> tuple[float, float | None]:
    """Median seconds of ``target`` (and of ``reference``), timed as
    :func:`measure_rounds` times them.

    Returns:
        ``(target_median, reference_median)``, the second ``None`` without ``reference``.
    """
    target_times, reference_times = measure_rounds(benchmark, target, device, rounds, reference)
    reference_median = statistics.median(reference_times) if reference_times else None
    return statistics.median(target_times), reference_median


@dataclass(frozen=True)
class ImageScale:
    """One size of the image benchmarks (throughput, and the paper net's sampler overhead).

    Attributes:
        name: ``"paper"`` (GPU), ``"small"`` (CPU stand-in) or ``"smoke"``.
        event_shape: ``(c, h, w)`` of the images.
        n_f: width of the ``conv`` energy net.
        flow_params: parameters of the ``glow`` flow.
        sample_size: images drawn by each timed ``sample()`` call.
        reconstruct_size: images reconstructed together when measuring ``reconstruct``.
        rounds: timed repetitions of each measurement.
    """

    name: str
    event_shape: tuple[int, int, int]
    n_f: int
    flow_params: Mapping[str, int] = field(default_factory=dict)
    sample_size: int = 64
    reconstruct_size: int = 8
    rounds: int = 3


PAPER = ImageScale(
    "paper",
    (3, 32, 32),
    n_f=128,
    flow_params={"n_scales": 3, "n_steps": 16, "hidden_channels": 512},
    sample_size=256,
    reconstruct_size=64,
    rounds=5,
)
SMALL = ImageScale("small", (3, 16, 16), n_f=16, flow_params={"hidden_channels": 32})
SMOKE = ImageScale(
    "smoke",
    (3, 8, 8),
    n_f=8,
    flow_params={"hidden_channels": 8},
    sample_size=8,
    reconstruct_size=2,
    rounds=1,
)


def image_scale(device: torch.device, smoke: bool) -> ImageScale:
    """The paper's sizes on a GPU; on a CPU a small stand-in (tiny for the smoke run)."""
    if device.type == "cuda":
        return PAPER
    return SMOKE if smoke else SMALL


@dataclass(frozen=True)
class QualityBudget:
    """Training iterations and sample sizes of the quality benchmarks."""

    toy_iter: int
    digits_iter: int
    toy_samples: int
    toy_train: int
    toy_seeds: int
    digits_seeds: int
    partition_temperatures: int


FULL_BUDGET = QualityBudget(
    toy_iter=2000,
    digits_iter=DEMOS["digits"]["n_iter"],
    toy_samples=5000,
    toy_train=20_000,
    toy_seeds=3,
    digits_seeds=3,
    partition_temperatures=1000,
)
SMOKE_BUDGET = QualityBudget(
    toy_iter=10,
    digits_iter=3,
    toy_samples=200,
    toy_train=2000,
    toy_seeds=1,
    digits_seeds=1,
    partition_temperatures=5,
)


def cpu_model() -> str:
    """The CPU's model name from ``/proc/cpuinfo`` (``platform.processor()`` elsewhere)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_facts(device: torch.device) -> dict[str, Any]:
    """What the benchmark figures depend on: CPU, cores, threads, torch, GPU."""
    return {
        "cpu_model": cpu_model(),
        "logical_cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "device": str(device),
        "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
    }


def save_samples(folder: Path | None, name: str, samples: np.ndarray) -> None:
    """Write ``samples`` to ``folder/name.npy`` for ``benchmarks/report.py`` (no-op
    without a folder)."""
    if folder is None:
        return
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / f"{name}.npy", samples)


def parameter_count(module: torch.nn.Module) -> int:
    """Number of parameters of ``module``.

    Examples:
        >>> parameter_count(torch.nn.Linear(3, 2))
        8
    """
    return sum(p.numel() for p in module.parameters())


def emit(row: dict[str, Any], out: Path | None) -> dict[str, Any]:
    """Print ``row`` as one JSON line and append it to ``out`` (when given); ``row``."""
    line = json.dumps(row)
    print(line, flush=True)
    if out is not None:
        with out.open("a", encoding="utf-8") as file:
            file.write(line + "\n")
    return row
