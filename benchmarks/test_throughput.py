"""Throughput at the paper's sizes: ``sample()`` images per second, seconds per training
iteration at batch 28, and peak GPU memory of a training iteration and of ``reconstruct``.

At the paper's sizes (32x32x3 images, the ``conv`` energy net with ``n_f=128``, a
``glow`` flow with 3 scales of 16 steps and 512 hidden channels, T = 30 Langevin steps)
on a GPU, each in float32, in bfloat16 autocast (``precision="bfloat16"``) and with
``torch.compile`` (``compile=True``). Without a GPU, ``--device cpu`` runs the same
benchmarks at a small size (see :data:`benchmarks.common.SMALL`); peak memory is only
measured on CUDA. Figures go to ``benchmark.extra_info``; no timing is asserted.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from benchmarks.common import (
    TRAIN_BATCH,
    ImageScale,
    measure,
    parameter_count,
    seconds,
)
from coopkit import CoopFlow, registry
from coopkit.training import CoopTrainer, TrainingConfig

pytestmark = pytest.mark.gpu

VARIANTS: dict[str, dict[str, Any]] = {
    "float32": {},
    "bfloat16": {"precision": "bfloat16"},
    "compile": {"compile": True},
}
RECONSTRUCT_ITER = 5
WARMUP_ITERATIONS = 2


def images(scale: ImageScale, n: int, seed: int) -> np.ndarray:
    """``(n, c, h, w)`` random images in [0, 1] (speed does not depend on content)."""
    return np.random.RandomState(seed).uniform(0, 1, size=(n, *scale.event_shape))


def fitted_model(scale: ImageScale, device: torch.device, variant: str) -> CoopFlow:
    """A CoopFlow of the scale's size after one training iteration."""
    return CoopFlow(
        flow="glow",
        energy="conv",
        flow_params=dict(scale.flow_params),
        energy_params={"n_f": scale.n_f},
        n_iter=1,
        batch_size=TRAIN_BATCH,
        data_range=(0.0, 1.0),
        n_partition_samples=TRAIN_BATCH,
        device=str(device),
        random_state=0,
        **VARIANTS[variant],
    ).fit(images(scale, 2 * TRAIN_BATCH, seed=0))


def peak_memory(device: torch.device) -> float | None:
    """Peak CUDA memory allocated since the last reset, in MiB (``None`` on the CPU)."""
    if device.type != "cuda":
        return None
    return torch.cuda.max_memory_allocated(device) / 2**20


def reset_peak_memory(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def describe(scale: ImageScale, device: torch.device, variant: str) -> dict[str, Any]:
    return {
        "scale": scale.name,
        "event_shape": list(scale.event_shape),
        "n_f": scale.n_f,
        "flow_params": dict(scale.flow_params),
        "variant": variant,
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "rounds": scale.rounds,
    }


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_sample_throughput(
    benchmark: Any, variant: str, device: torch.device, scale: ImageScale
) -> None:
    model = fitted_model(scale, device, variant)
    n = scale.sample_size
    first = model.sample(n, random_state=0)
    median, _ = measure(benchmark, lambda: model.sample(n, random_state=0), device, scale.rounds)
    benchmark.extra_info.update(
        {
            "kind": "sample",
            **describe(scale, device, variant),
            "images": n,
            "seconds": median,
            "images_per_s": n / median,
            "flow_parameters": parameter_count(model.flow_),
            "energy_parameters": parameter_count(model.energy_),
        }
    )
    assert first.shape == (n, *scale.event_shape)


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_training_iteration(
    benchmark: Any, variant: str, device: torch.device, scale: ImageScale
) -> None:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        flow = registry.resolve("flow", "glow").factory(scale.event_shape, **scale.flow_params)
        energy = registry.resolve("energy", "conv").factory(scale.event_shape, n_f=scale.n_f)
    sampler = registry.resolve("sampler", "langevin").factory(bounds=(-1.0, 1.0))
    config = TrainingConfig(n_iter=1, batch_size=TRAIN_BATCH, **VARIANTS[variant])
    trainer = CoopTrainer(
        flow.to(device), energy.to(device), sampler, config, torch.Generator().manual_seed(0)
    )
    data = torch.as_tensor(images(scale, 4 * TRAIN_BATCH, seed=0), dtype=torch.float32)
    data = (2 * data - 1).to(device)
    trainer.initialize(data)
    batch = data[:TRAIN_BATCH]
    for _ in range(WARMUP_ITERATIONS):
        seconds(lambda: trainer.coop_step(batch), device)
    reset_peak_memory(device)
    median, _ = measure(benchmark, lambda: trainer.coop_step(batch), device, scale.rounds)
    benchmark.extra_info.update(
        {
            "kind": "train",
            **describe(scale, device, variant),
            "batch": TRAIN_BATCH,
            "langevin_steps": sampler.n_steps,
            "seconds_per_iteration": median,
            "peak_memory_mib": peak_memory(device),
        }
    )
    assert np.isfinite(trainer.history["energy_data"]).all()


@pytest.mark.parametrize("variant", ["float32", "bfloat16"])
def test_reconstruct(benchmark: Any, variant: str, device: torch.device, scale: ImageScale) -> None:
    if not hasattr(CoopFlow, "reconstruct"):
        pytest.skip("CoopFlow.reconstruct does not exist yet")
    model = fitted_model(scale, device, variant)
    X = images(scale, scale.reconstruct_size, seed=1)
    first = model.reconstruct(X, n_iter=1)
    reset_peak_memory(device)
    median, _ = measure(
        benchmark, lambda: model.reconstruct(X, n_iter=RECONSTRUCT_ITER), device, scale.rounds
    )
    benchmark.extra_info.update(
        {
            "kind": "reconstruct",
            **describe(scale, device, variant),
            "images": len(X),
            "reconstruct_iter": RECONSTRUCT_ITER,
            "seconds": median,
            "peak_memory_mib": peak_memory(device),
        }
    )
    assert first.shape == X.shape
