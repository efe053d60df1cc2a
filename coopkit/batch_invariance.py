"""Per-row outputs that do not depend on the batch: the fitted parts copied to float64.

In float32 a matrix multiply's rounding depends on how the linear-algebra library
blocks it, and so on which other rows share the batch: a row's score can differ by a
few parts in 10⁷ between scoring it alone and among twenty others, more than
scikit-learn's ``check_methods_subset_invariance`` allows (1e-7), and enough that
scoring in chunks (cross-validation, joblib, a DataLoader) gives results that depend
on the chunk size. In float64 the same rounding is ~1e-16 relative, so the
estimator's per-row methods (``score_samples``, ``flow_score_samples``,
``transform``, ``inverse_transform``) run on float64 copies of the flow and the
energy net, made for each call (a copy costs one pass over the weights; keeping none
means no copy can go stale after ``partial_fit`` or a resumed fit).
``python -m benchmarks.scoring_cost`` measures what the float64 arithmetic costs.

References:
    Xie et al., "A Tale of Two Flows: Cooperative Learning of Langevin Flow and
    Normalizing Flow Toward Energy-Based Model", ICLR 2022. https://arxiv.org/abs/2205.06924
"""

from __future__ import annotations

import copy

import torch
from torch import nn


def float64_device(device: torch.device) -> torch.device:
    """Where float64 arithmetic runs: ``device``, or the CPU for Apple's ``mps``, which
    has no float64."""
    return torch.device("cpu") if device.type == "mps" else device


def float64_copy(module: nn.Module, device: torch.device) -> nn.Module:
    """A copy of ``module`` whose floating-point parameters and buffers are float64, on
    :func:`float64_device` of ``device``; ``module`` itself is left as it is.

    Examples:
        >>> net = nn.Linear(3, 1)
        >>> exact = float64_copy(net, torch.device("cpu"))
        >>> exact.weight.dtype, net.weight.dtype
        (torch.float64, torch.float32)
    """
    return copy.deepcopy(module).to(device=float64_device(device), dtype=torch.float64)
