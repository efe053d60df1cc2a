"""Sample quality, side by side, on the same iteration budget.

Three methods, each trained for the same number of iterations on the same batches:

* ``coopflow``: CoopFlow, samples = flow proposals revised by T = 30 Langevin steps
  (the flow's proposals alone are scored too);
* ``flow_alone``: the same flow trained alone by maximum likelihood on the data
  (``pretrain_iter=N, n_iter=0``), samples = its proposals;
* ``short_run_ebm``: a short-run EBM whose chains start from uniform noise
  (``proposal="noise"``, Nijkamp et al., 2019), samples = the revised noise.

2-D sets (:data:`coopkit.datasets.TOY_SETS`): sliced Wasserstein distance and squared
MMD to a held-out sample, with the MMD bandwidth fixed per data set (the median
pairwise distance of the held-out sample) so that it does not change with the method.
Digits: the digits Fréchet distance to the held-out split. Lower is better; the
"reference" figures compare training data to held-out data, the floor a perfect
model would reach with this many samples. Nothing about quality is asserted: the
table in ``docs/benchmarks.md`` reports what is measured.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch
from scipy.spatial.distance import pdist

from benchmarks.common import QualityBudget, measure, save_samples
from coopkit import CoopFlow, metrics
from coopkit.datasets import TOY_SETS, load_toy
from coopkit.demo import DEMOS

METHODS: dict[str, Callable[[int], dict[str, Any]]] = {
    "coopflow": lambda n: {"n_iter": n},
    "flow_alone": lambda n: {"pretrain_iter": n, "n_iter": 0},
    "short_run_ebm": lambda n: {"n_iter": n, "proposal": "noise"},
}
TOY_SETTINGS: dict[str, Any] = {
    "batch_size": 256,
    "flow_lr": 1e-3,
    "energy_lr": 1e-3,
    "warmup_iter": 50,
}
TOY_TRAIN_SIZE = 2000
PARTITION_SAMPLES = 256  # log Z is not used here; keep its estimate cheap


def fit(
    benchmark: Any, settings: dict[str, Any], X: np.ndarray, device: torch.device
) -> tuple[CoopFlow, float]:
    """Fit once under pytest-benchmark; the model and the seconds it took."""
    model = CoopFlow(
        **settings, n_partition_samples=PARTITION_SAMPLES, device=str(device), random_state=0
    )
    fit_seconds, _ = measure(benchmark, lambda: model.fit(X), device, rounds=1)
    return model, fit_seconds


def draw(model: CoopFlow, method: str, n: int) -> dict[str, np.ndarray]:
    """The method's samples; for CoopFlow also its flow's proposals alone."""
    if method == "flow_alone":
        return {method: model.sample(n, random_state=1, revise=False)}
    samples = {method: model.sample(n, random_state=1)}
    if method == "coopflow":
        samples["coopflow_proposals"] = model.sample(n, random_state=1, revise=False)
    return samples


@pytest.mark.parametrize("method", list(METHODS))
@pytest.mark.parametrize("dataset", list(TOY_SETS))
def test_toy_quality(
    benchmark: Any,
    dataset: str,
    method: str,
    budget: QualityBudget,
    device: torch.device,
    artifacts: Any,
) -> None:
    train = load_toy(dataset, TOY_TRAIN_SIZE, random_state=0)
    held_out = load_toy(dataset, budget.toy_samples, random_state=1)
    bandwidth = float(np.median(pdist(held_out)))
    settings = {**TOY_SETTINGS, **METHODS[method](budget.toy_iter)}
    model, fit_seconds = fit(benchmark, settings, train, device)
    reference = train[: budget.toy_samples]
    scores = {}
    for name, samples in {"reference": reference, **draw(model, method, len(held_out))}.items():
        assert samples.shape == held_out.shape
        assert np.isfinite(samples).all()
        scores[name] = {
            "swd": metrics.sliced_wasserstein(samples, held_out, random_state=0),
            "mmd": metrics.mmd(samples, held_out, bandwidth=bandwidth),
        }
        save_samples(artifacts, f"toy-{dataset}-{name}", samples)
    benchmark.extra_info.update(
        {
            "kind": "quality",
            "dataset": dataset,
            "method": method,
            "iterations": budget.toy_iter,
            "settings": settings,
            "samples": len(held_out),
            "mmd_bandwidth": bandwidth,
            "fit_seconds": fit_seconds,
            "scores": scores,
            "device": str(device),
        }
    )


@pytest.mark.parametrize("method", list(METHODS))
def test_digits_quality(
    benchmark: Any, method: str, budget: QualityBudget, device: torch.device, artifacts: Any
) -> None:
    train, held_out, _, _ = metrics.digits_split()
    settings = {**DEMOS["digits"], **METHODS[method](budget.digits_iter)}
    model, fit_seconds = fit(benchmark, settings, train, device)
    n = budget.digits_samples
    scores = {}
    for name, samples in {"reference": train[:n], **draw(model, method, n)}.items():
        assert samples.shape == (n, 8, 8)
        assert np.isfinite(samples).all()
        scores[name] = {"frechet": metrics.digits_frechet_distance(samples, held_out)}
        save_samples(artifacts, f"digits-{name}", samples)
    benchmark.extra_info.update(
        {
            "kind": "quality",
            "dataset": "digits",
            "method": method,
            "iterations": budget.digits_iter,
            "settings": {k: list(v) if isinstance(v, tuple) else v for k, v in settings.items()},
            "samples": n,
            "fit_seconds": fit_seconds,
            "scores": scores,
            "device": str(device),
        }
    )
