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
:func:`benchmarks.ablation.run_one`. Digits: the digits Fréchet distance to the
held-out split. Lower is better; the "reference" figures compare training data to
held-out data, the floor a perfect model would reach with this many samples. Nothing
about quality is asserted: ``docs/benchmarks.md`` reports what is measured.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch

from benchmarks.ablation import ToyBudget, run_one
from benchmarks.common import QualityBudget, measure, save_samples
from coopkit import CoopFlow, metrics
from coopkit.datasets import TOY_SETS
from coopkit.demo import DEMOS

METHODS: dict[str, Callable[[int], dict[str, Any]]] = {
    "coopflow": lambda n: {"n_iter": n},
    "flow_alone": lambda n: {"pretrain_iter": n, "n_iter": 0},
    "short_run_ebm": lambda n: {"n_iter": n, "proposal": "noise"},
}
SEEDS = (0, 1, 2)
PARTITION_SAMPLES = 256  # log Z is not used here; keep its estimate cheap


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
