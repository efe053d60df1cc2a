"""Sample quality, side by side, on the same iteration budget.

Three methods, each trained for the same number of iterations on the same batches:

* ``coopflow``: CoopFlow with its defaults, samples = revised flow proposals (the
  flow's proposals alone are scored too);
* ``flow_alone``: the same flow trained alone by maximum likelihood on the data
  (``pretrain_iter=N, n_iter=0``), samples = its proposals;
* ``short_run_ebm``: a short-run EBM whose chains start from uniform noise
  (``proposal="noise"``, Nijkamp et al., 2019), samples = the revised noise.

2-D sets (:data:`coopkit.datasets.TOY_SETS`), every method on several seeds (a seed
sets the training and held-out data, the initialisation and the batches): the
classifier two-sample test :func:`coopkit.metrics.c2st`, the sliced Wasserstein
distance and the squared MMD against held-out data, and seconds per iteration, all by
:func:`benchmarks.ablation.run_one`. Digits, at the demo's settings and budget over the
same seeds: :func:`coopkit.metrics.digits_c2st` and the digits Fréchet distance to the
held-out split, by :func:`benchmarks.digits.run_digits`, beside a full-covariance
Gaussian fit. Lower is better; the "floor" figures compare training data to held-out
data, what a perfect model would reach with this many samples. Nothing about quality
is asserted: ``docs/benchmarks.md`` reports what is measured.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from benchmarks.ablation import METHODS, ToyBudget, run_one
from benchmarks.common import QualityBudget, measure, save_samples
from benchmarks.digits import N_SAMPLES, run_digits
from coopkit.datasets import TOY_SETS

SEEDS = (0, 1, 2)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("method", list(METHODS))
@pytest.mark.parametrize("dataset", list(TOY_SETS))
def test_toy_quality(
    benchmark: Any,
    dataset: str,
    method: str,
    seed: int,
    budget: QualityBudget,
    device: torch.device,
    artifacts: Any,
) -> None:
    if seed >= budget.toy_seeds:
        pytest.skip(f"the smoke run trains {budget.toy_seeds} seed(s)")
    toy = ToyBudget(budget.toy_iter, 256, budget.toy_train, budget.toy_samples)
    runs: list[tuple[dict[str, Any], dict[str, np.ndarray]]] = []
    measure(
        benchmark,
        lambda: runs.append(run_one(dataset, seed, method, {}, toy, str(device))),
        device,
        1,
    )
    row, samples = runs[-1]
    for name, drawn in samples.items():
        assert drawn.shape == (budget.toy_samples, 2)
        assert np.isfinite(drawn).all()
        if seed == 0:
            save_samples(artifacts, f"toy-{dataset}-{name}", drawn)
    benchmark.extra_info.update(
        {"kind": "toy_quality", "iterations": budget.toy_iter, "device": str(device), **row}
    )


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("method", list(METHODS))
def test_digits_quality(
    benchmark: Any,
    method: str,
    seed: int,
    budget: QualityBudget,
    device: torch.device,
    artifacts: Any,
) -> None:
    if seed >= budget.digits_seeds:
        pytest.skip(f"the smoke run trains {budget.digits_seeds} seed(s)")
    runs: list[tuple[dict[str, Any], dict[str, np.ndarray]]] = []
    measure(
        benchmark,
        lambda: runs.append(
            run_digits(
                seed, method, {}, budget.digits_iter, str(device), budget.partition_temperatures
            )
        ),
        device,
        1,
    )
    row, samples = runs[-1]
    for name, drawn in samples.items():
        assert drawn.shape == (N_SAMPLES, 8, 8)
        assert np.isfinite(drawn).all()
        if seed == 0:
            save_samples(artifacts, f"digits-{name}", drawn)
    benchmark.extra_info.update({"kind": "digits_quality", "device": str(device), **row})
