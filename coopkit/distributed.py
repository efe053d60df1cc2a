"""Multi-process training on PyTorch's own engine (``torch.distributed``).

When a process group is initialised (as under ``torchrun``), every rank holds the same
data and the same seed; each trains on its shard of every global batch (chosen by a
:class:`~torch.utils.data.DistributedSampler`), revises its own proposals with Langevin
locally, and :class:`~torch.nn.parallel.DistributedDataParallel` averages the gradients.
Random draws that must agree with a single process (latent codes, dequantisation noise)
are drawn for the whole global batch on every rank, which then keeps its own part.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
from torch import Tensor, nn


@dataclass(frozen=True)
class World:
    """This process's ``rank`` among ``size`` processes (``World()`` is one process).

    Examples:
        >>> World().is_main, World(rank=1, size=4).is_main
        (True, False)
    """

    rank: int = 0
    size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def current_world(mode: str = "auto") -> World:
    """The process group's world when one is initialised and ``mode`` is ``"auto"``.

    Examples:
        >>> current_world("off")
        World(rank=0, size=1)
    """
    if mode == "off" or not torch.distributed.is_available():
        return World()
    if not torch.distributed.is_initialized():
        return World()
    return World(torch.distributed.get_rank(), torch.distributed.get_world_size())


def init_from_environment() -> World:
    """Join the process group that ``torchrun`` describes in the environment
    (``WORLD_SIZE`` > 1): NCCL when CUDA is available, gloo otherwise; on CUDA each
    process takes the GPU of its ``LOCAL_RANK``. Does nothing outside ``torchrun``."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not torch.distributed.is_initialized():
        if torch.cuda.is_available():
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        torch.distributed.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return current_world()


def is_main_process() -> bool:
    """True outside a process group, and on rank 0 inside one."""
    return current_world().is_main


def wrap(module: nn.Module, world: World, device: torch.device) -> nn.Module:
    """``module`` in :class:`~torch.nn.parallel.DistributedDataParallel` when there is
    more than one process; ``module`` itself otherwise."""
    if world.size == 1:
        return module
    device_ids = (
        [device.index if device.index is not None else 0] if device.type == "cuda" else None
    )
    return nn.parallel.DistributedDataParallel(module, device_ids=device_ids)


def mean_across(values: Tensor, world: World) -> Tensor:
    """The mean of ``values`` over all ranks (``values`` itself for one process).

    Examples:
        >>> mean_across(torch.tensor([1.0, 3.0]), World())
        tensor([1., 3.])
    """
    if world.size == 1:
        return values
    summed = values.clone()
    torch.distributed.all_reduce(summed)
    return summed / world.size
