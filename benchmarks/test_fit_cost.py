"""What ``fit`` costs beyond its training (issue 39): the CIFAR-10 preset fitted for one
iteration, against the first score after it, which is where ``log Z`` is now estimated
(4096 importance draws through both nets).

On a GPU the preset runs at the paper's size; with ``--device cpu`` at the small size of
:data:`benchmarks.test_preset.CPU_OVERRIDES`. Figures go to ``benchmark.extra_info``:
``fit_s`` (one iteration of training and everything ``fit`` does around it) and
``first_score_s`` (one image scored, ``log Z`` included); nothing is asserted about time.
"""

from __future__ import annotations

import time
from typing import Any

import torch

from benchmarks.test_preset import CPU_OVERRIDES, PRESET, benchmark_images
from coopkit import CoopFlow


def test_fit_pays_for_no_log_z(benchmark: Any, device: torch.device, smoke: bool) -> None:
    on_gpu = device.type == "cuda"
    params: dict[str, Any] = {} if on_gpu else dict(CPU_OVERRIDES)
    if smoke:
        params["n_partition_samples"] = 64
    model = CoopFlow.from_preset(PRESET, n_iter=1, device=str(device), random_state=0, **params)
    X = benchmark_images(4 * model.batch_size)
    start = time.perf_counter()
    model.fit(X)
    fit_s = time.perf_counter() - start
    assert model._log_partition_info is None
    start = time.perf_counter()
    benchmark.pedantic(model.score_samples, args=(X[:1],), rounds=1, iterations=1)
    first_score_s = time.perf_counter() - start
    benchmark.extra_info.update(
        {
            "kind": "fit_cost",
            "preset": PRESET,
            "size": "paper" if on_gpu else "small (CPU)",
            "device": str(device),
            "fit_s": fit_s,
            "first_score_s": first_score_s,
            "n_partition_samples": model.log_partition_info_["n_samples"],
        }
    )
    assert model.log_partition_info_["seconds"] <= first_score_s
