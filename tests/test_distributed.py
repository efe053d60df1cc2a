"""Training on torch.distributed: two gloo processes on the CPU against one process."""

from __future__ import annotations

import datetime
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp

from coopkit import CoopFlow
from coopkit.datasets import eight_gaussians
from coopkit.distributed import World, current_world

# The paper's loop (noise-free Langevin, no random draws inside the sampler): one
# process and two then see the very same numbers. Samplers that draw noise per chain
# draw it per rank, so their chains differ between the two set-ups.
PARAMS = {
    "flow": "realnvp",
    "sampler": "langevin",
    "energy_base": "uniform",
    "lr_schedule": "constant",
    "energy_betas": (0.5, 0.5),
    "warmup_iter": 100,
    "n_iter": 12,
    "batch_size": 32,
    "flow_lr": 1e-3,
    "energy_lr": 1e-3,
    "random_state": 0,
    "flow_params": {"n_layers": 2, "hidden_features": 16},
    "energy_params": {"hidden_features": 16, "n_hidden": 2},
    "sampler_params": {"n_steps": 5},
    "n_partition_samples": 256,
}


def _worker(rank: int, store: str, out: str, data_path: str | None) -> None:
    torch.set_num_threads(1)
    torch.distributed.init_process_group(
        "gloo",
        init_method=f"file://{store}",
        rank=rank,
        world_size=2,
        timeout=datetime.timedelta(seconds=60),
    )
    try:
        X = eight_gaussians(256, 0) if data_path is None else np.load(data_path, mmap_mode="r")
        model = CoopFlow(**PARAMS).fit(X)
        ddp = torch.nn.parallel.DistributedDataParallel
        assert model._trainer.world == World(rank, 2)
        assert isinstance(model._trainer.flow_loss, ddp)
        assert isinstance(model._trainer.energy_loss, ddp)
        assert model._trainer.local_batch_size == 16
        assert not isinstance(model.flow_, ddp)
        assert not isinstance(model.energy_, ddp)
        state = {
            "flow": model.flow_.state_dict(),
            "energy": model.energy_.state_dict(),
            "history": model.history_,
        }
        torch.save(state, f"{out}/rank{rank}.pt")
    finally:
        torch.distributed.destroy_process_group()


@pytest.mark.parametrize("memory_mapped", [False, True])
def test_two_processes_train_like_one_with_the_same_global_batch(
    tmp_path: Path, memory_mapped: bool
) -> None:
    """Also when each rank reads its share of every batch from a memory-mapped file."""
    data_path = None
    if memory_mapped:
        data_path = str(tmp_path / "data.npy")
        np.save(data_path, eight_gaussians(256, 0))
    args = (str(tmp_path / "store"), str(tmp_path), data_path)
    mp.spawn(_worker, args=args, nprocs=2, join=True)
    single = CoopFlow(**PARAMS).fit(eight_gaussians(256, 0))
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    for part, module in (("flow", single.flow_), ("energy", single.energy_)):
        for name, tensor in module.state_dict().items():
            assert torch.equal(ranks[0][part][name], ranks[1][part][name]), (
                f"ranks differ in {name}"
            )
            assert torch.allclose(ranks[0][part][name], tensor, rtol=1e-4, atol=1e-5), name
    assert np.allclose(
        ranks[0]["history"]["energy_data"], single.history_["energy_data"], rtol=1e-4, atol=1e-5
    )


def test_without_a_process_group_training_is_local() -> None:
    assert current_world() == World()
    assert current_world("off") == World()
    with pytest.raises(ValueError, match="distributed must be 'auto' or 'off'"):
        CoopFlow(distributed="yes", n_iter=1, batch_size=8).fit(eight_gaussians(16, 0))


def test_coopkit_fit_under_torchrun(tmp_path: Path) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        "-m",
        "coopkit.cli",
        "fit",
        "moons",
        "--out",
        "run",
        "--n-iter",
        "3",
        "--batch-size",
        "64",
        "--flow-param",
        "n_layers=2",
        "--sampler-param",
        "n_steps=3",
        "--quiet",
    ]
    result = subprocess.run(
        command, cwd=tmp_path, capture_output=True, text=True, timeout=300, env=env
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.count("model: ") == 1
    loaded = CoopFlow.load(tmp_path / "run" / "model.coopkit")
    assert loaded.n_iter_ == 3
