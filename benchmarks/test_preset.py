"""The CIFAR-10 preset (``CoopFlow.from_preset("cifar10-T30")``) trained for a fixed
number of iterations: seconds per iteration in float32, bfloat16 autocast and compiled,
``sample()`` images per second, and peak GPU memory of an iteration.

On a GPU the preset runs as it is: Flow++ (29.1M parameters), the ``conv`` EBM (17.1M),
T = 30, batch 28. The data are random 32x32x3 images, or the ``.npy`` file named by
``$COOPKIT_BENCH_DATA`` (``(n, 3, 32, 32)``, read memory-mapped), since speed does not
depend on content. With ``--device cpu`` the same code runs at a small size
(:data:`CPU_OVERRIDES`). Figures go to ``benchmark.extra_info``; no timing is asserted.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import pytest
import torch

from benchmarks.common import measure, parameter_count, seconds
from coopkit import CoopFlow

pytestmark = pytest.mark.gpu

PRESET = "cifar10-T30"
VARIANTS: dict[str, dict[str, Any]] = {
    "float32": {},
    "bfloat16": {"precision": "bfloat16"},
    "compile": {"compile": True},
}
# The preset at a size a CPU runs in seconds: same families, smaller nets, shorter chains.
CPU_OVERRIDES: dict[str, Any] = {
    "flow_params": {"hidden_channels": 8, "n_steps": 1, "n_components": 4, "attention": False},
    "energy_params": {"n_f": 8},
    "sampler_params": {"n_steps": 5},
    "batch_size": 8,
}
WARMUP_ITERATIONS = 2
SAMPLES = 64


def benchmark_images(n: int) -> np.ndarray:
    """``$COOPKIT_BENCH_DATA`` memory-mapped, or ``n`` random 8-bit images."""
    path = os.environ.get("COOPKIT_BENCH_DATA")
    if path:
        return np.load(path, mmap_mode="r")
    return np.random.default_rng(0).integers(0, 256, (n, 3, 32, 32), dtype=np.uint8)


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_preset_training_and_sampling(
    benchmark: Any, variant: str, device: torch.device, smoke: bool
) -> None:
    on_gpu = device.type == "cuda"
    overrides = {} if on_gpu else CPU_OVERRIDES
    model = CoopFlow.from_preset(
        PRESET,
        n_iter=WARMUP_ITERATIONS,
        device=str(device),
        n_partition_samples=64,
        random_state=0,
        **VARIANTS[variant],
        **overrides,
    )
    X = benchmark_images(4 * model.batch_size)
    model.fit(X)
    trainer = model._trainer
    batch = torch.as_tensor(model.scaler_.to_model(np.asarray(X[: model.batch_size])))
    batch = batch.to(device, torch.float32)
    if on_gpu:
        torch.cuda.reset_peak_memory_stats(device)
    rounds = 1 if smoke else 5
    iteration, _ = measure(benchmark, lambda: trainer.coop_step(batch), device, rounds)
    peak = torch.cuda.max_memory_allocated(device) / 2**20 if on_gpu else None
    n = 8 if smoke else SAMPLES
    model.sample(n, random_state=0)
    sampling = seconds(lambda: model.sample(n, random_state=0), device)
    benchmark.extra_info.update(
        {
            "kind": "preset",
            "preset": PRESET,
            "size": "paper" if on_gpu else "small (CPU)",
            "variant": variant,
            "device": str(device),
            "device_name": torch.cuda.get_device_name(device) if on_gpu else "cpu",
            "batch": model.batch_size,
            "langevin_steps": model.sampler_.n_steps,
            "flow_parameters": parameter_count(model.flow_),
            "energy_parameters": parameter_count(model.energy_),
            "seconds_per_iteration": iteration,
            "images_per_s": n / sampling,
            "peak_memory_mib": peak,
        }
    )
    assert np.isfinite(trainer.history["energy_data"]).all()
