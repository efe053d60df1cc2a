"""One row of the digits ablation: a configuration trained on scikit-learn's 8x8 digits
at the demo's budget, over several seeds.

Run as a module; the digits rows of ``docs/guide/tuning.md`` name the command::

    python -m benchmarks.digits --seeds 0 1 2 --method coopflow --set energy_lr=1e-3

Every run trains on the 70% split of :func:`coopkit.metrics.digits_split` with the
settings of ``coopkit.demo.DEMOS["digits"]`` (``--set`` overrides them; the short-run
EBM takes the paper's conv net and Langevin reviser, see :data:`NOISE_BASELINE`) and scores 540
samples against the 540 held-out digits with :func:`coopkit.metrics.digits_c2st` and
:func:`~coopkit.metrics.digits_frechet_distance`. Samples are rounded to the data's
integer levels first: a sample of the dequantised model stands for the level whose
interval holds it. A seed sets the initialisation, the batches and the samples; the
split is the same for every seed. CoopFlow's rows also score its flow's proposals, the
training digits (the floor) and a full-covariance Gaussian fitted to them, and, with
the flow alone's rows, the held-out likelihood in bits per dimension
(:func:`likelihood`).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.ablation import (
    METHODS,
    method_params,
    parse_setting,
    record,
    resolved_settings,
)
from coopkit import CoopFlow, metrics
from coopkit.demo import DEMOS

N_SAMPLES = 540
# The short-run EBM has no flow to tilt or to revise in latent space: it gets the image
# defaults' reviser (Langevin, T = 30, step 0.03, from uniform noise) and keeps the
# demo's nets, rates and schedule.
NOISE_BASELINE = {"sampler": "auto", "energy_base": "auto", "sampler_params": None}


def score(samples: np.ndarray, held_out: np.ndarray, seed: int) -> dict[str, float]:
    """C2ST and Fréchet distance of ``samples`` rounded to levels, against ``held_out``."""
    levels = np.rint(samples)
    return {
        "c2st": metrics.digits_c2st(levels, held_out, random_state=seed),
        "frechet": metrics.digits_frechet_distance(levels, held_out),
    }


def gaussian_fit(train: np.ndarray, n: int, seed: int) -> np.ndarray:
    """``n`` digits from a full-covariance Gaussian fitted to ``train``, clipped to [0, 16]."""
    pixels = train.reshape(len(train), -1)
    rng = np.random.default_rng(seed)
    drawn = rng.multivariate_normal(pixels.mean(axis=0), np.cov(pixels.T), size=n)
    return np.clip(drawn, 0, 16).reshape(n, *train.shape[1:])


def likelihood(
    model: CoopFlow, train: np.ndarray, held_out: np.ndarray, temperatures: int | None
) -> dict[str, Any]:
    """Held-out bits per dimension of the fitted ``model``'s flow (exact) and, unless
    ``temperatures`` is ``None``, of its EBM with ``log Z`` by importance sampling and by
    AIS over ``temperatures`` (re-estimated by a warm-started ``fit`` with no iterations
    left), with the seconds each took."""
    start = time.perf_counter()
    flow = model.bits_per_dim(held_out)["flow"]
    result: dict[str, Any] = {"flow": {"bpd": flow, "seconds": time.perf_counter() - start}}
    for method in ("importance", "ais") if temperatures is not None else ():
        model.set_params(
            warm_start=True, log_partition=method, partition_temperatures=temperatures
        ).fit(train)
        info = model.log_partition_info_
        bits = model.bits_per_dim(held_out)
        result[method] = {
            "bpd": bits["energy"],
            "se": bits["energy_se"],
            **{key: info[key] for key in ("ess", "n_samples", "n_temperatures", "seconds")},
        }
    return result


def run_digits(
    seed: int,
    method: str,
    settings: dict[str, Any],
    n_iter: int | None = None,
    device: str = "auto",
    temperatures: int | None = 1000,
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Train one model on the digits and score its samples (for CoopFlow also its
    proposals, the floor and the Gaussian fit, and for CoopFlow and the flow alone the
    held-out likelihood, AIS over ``temperatures``); the JSON row and the samples by name."""
    train, held_out, _, _ = metrics.digits_split()
    demo = dict(DEMOS["digits"])
    demo_iter = demo.pop("n_iter")
    budget = demo_iter if n_iter is None else n_iter
    params = {**demo, "device": device}
    if method == "short_run_ebm":
        params.update(NOISE_BASELINE)
    model = CoopFlow(**{**params, **method_params(method, budget), **settings}, random_state=seed)
    start = time.perf_counter()
    model.fit(train)
    seconds = time.perf_counter() - start
    samples = {method: model.sample(N_SAMPLES, random_state=seed, revise=method != "flow_alone")}
    row: dict[str, Any] = {
        "dataset": "digits",
        "seed": seed,
        "method": method,
        "iterations": budget,
        "settings": settings,
        "resolved": resolved_settings(model),
        "seconds_per_iter": seconds / max(1, budget),
        **score(samples[method], held_out, seed),
    }
    if method == "coopflow":
        samples["coopflow_proposals"] = model.sample(N_SAMPLES, random_state=seed, revise=False)
        samples["reference"] = train[:N_SAMPLES]
        samples["gaussian"] = gaussian_fit(train, N_SAMPLES, seed)
        scored = [("coopflow_proposals", "proposals"), ("reference", "floor"), ("gaussian",) * 2]
        for name, key in scored:
            row[key] = score(samples[name], held_out, seed)
    if method in ("coopflow", "flow_alone"):
        ebm_temperatures = temperatures if method == "coopflow" else None
        row["likelihood"] = likelihood(model, train, held_out, ebm_temperatures)
    return row, samples


def main(argv: Sequence[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--method", default="coopflow", choices=list(METHODS))
    parser.add_argument("--set", dest="settings", action="append", type=parse_setting, default=[])
    parser.add_argument("--n-iter", type=int, default=None, help="default: the demo's")
    parser.add_argument(
        "--temperatures",
        type=int,
        default=1000,
        help="AIS temperatures of the EBM's held-out likelihood (0: the flow's only)",
    )
    parser.add_argument("--out", type=Path, default=None, help="append JSON lines here")
    args = parser.parse_args(argv)
    settings = dict(args.settings)
    temperatures = args.temperatures or None
    runs = (
        run_digits(seed, args.method, settings, args.n_iter, temperatures=temperatures)[0]
        for seed in args.seeds
    )
    return record(runs, args.method, settings, args.out)


if __name__ == "__main__":
    main()
