"""Options, the ``gpu`` marker and the fixtures of ``pytest benchmarks/``.

``--device`` (or ``COOPKIT_BENCH_DEVICE``): ``auto`` (default) runs on CUDA when present
and skips the ``gpu``-marked benchmarks otherwise; ``cpu`` runs everything on the CPU,
the ``gpu``-marked benchmarks at a small size; ``cuda`` insists on a GPU.
``--benchmark-disable`` (pytest-benchmark) makes the run a smoke test: every benchmark
runs once, on tiny sizes and training budgets.
``--bench-artifacts DIR`` (or ``COOPKIT_BENCH_ARTIFACTS``): the quality benchmarks write
their samples there, for ``benchmarks/report.py`` to draw.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from benchmarks.common import (
    FULL_BUDGET,
    SMOKE_BUDGET,
    ImageScale,
    QualityBudget,
    image_scale,
    machine_facts,
)

DEVICES = ("auto", "cpu", "cuda")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("coopkit benchmarks")
    group.addoption(
        "--device",
        default=os.environ.get("COOPKIT_BENCH_DEVICE", "auto"),
        help="auto (CUDA if present, else skip the gpu benchmarks), cpu (gpu benchmarks at "
        "a small size) or cuda; default $COOPKIT_BENCH_DEVICE or auto.",
    )
    group.addoption(
        "--bench-artifacts",
        default=os.environ.get("COOPKIT_BENCH_ARTIFACTS"),
        help="folder for the quality benchmarks' samples (.npy), read by benchmarks/report.py.",
    )


def _device_option(config: pytest.Config) -> str:
    option = config.getoption("device")
    if option not in DEVICES:
        raise pytest.UsageError(
            f"--device / COOPKIT_BENCH_DEVICE must be one of {', '.join(DEVICES)}; got {option!r}."
        )
    if option == "cuda" and not torch.cuda.is_available():
        raise pytest.UsageError(
            "--device cuda was asked for, but no CUDA device is available; use --device cpu."
        )
    return option


def pytest_configure(config: pytest.Config) -> None:
    # torch.compile's own use of a deprecated torch.jit API; not coopkit's to fix.
    config.addinivalue_line(
        "filterwarnings", "ignore:`torch.jit.script_method` is deprecated:DeprecationWarning"
    )
    config.addinivalue_line(
        "markers",
        "gpu: benchmark at the paper's GPU sizes; skipped without CUDA unless --device cpu "
        "(or COOPKIT_BENCH_DEVICE=cpu), which runs it on the CPU at a small size.",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if _device_option(config) != "auto" or torch.cuda.is_available():
        return
    skip = pytest.mark.skip(
        reason="no CUDA device; --device cpu (or COOPKIT_BENCH_DEVICE=cpu) runs the gpu "
        "benchmarks on the CPU at a small size"
    )
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


def _device(config: pytest.Config) -> torch.device:
    option = _device_option(config)
    if option == "auto":
        option = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(option)


def pytest_benchmark_update_machine_info(config: pytest.Config, machine_info: dict) -> None:
    """Add the facts ``benchmarks/report.py`` prints to the JSON's ``machine_info``."""
    machine_info["coopkit"] = machine_facts(_device(config))


@pytest.fixture(scope="session")
def device(pytestconfig: pytest.Config) -> torch.device:
    """Where the benchmarks run: ``--device``, with ``auto`` meaning CUDA when present."""
    return _device(pytestconfig)


@pytest.fixture(scope="session")
def smoke(pytestconfig: pytest.Config) -> bool:
    """``True`` under ``--benchmark-disable``: run each benchmark once, at tiny sizes."""
    return bool(pytestconfig.getoption("benchmark_disable"))


@pytest.fixture(scope="session")
def scale(device: torch.device, smoke: bool) -> ImageScale:
    """The size of the image benchmarks on this device (see :func:`image_scale`)."""
    return image_scale(device, smoke)


@pytest.fixture(scope="session")
def budget(smoke: bool) -> QualityBudget:
    """Training iterations and sample sizes of the quality benchmarks."""
    return SMOKE_BUDGET if smoke else FULL_BUDGET


@pytest.fixture(scope="session")
def artifacts(pytestconfig: pytest.Config) -> Path | None:
    """Folder for the samples that ``benchmarks/report.py`` draws, or ``None``."""
    folder = pytestconfig.getoption("bench_artifacts")
    return Path(folder) if folder else None
