r"""How much of a digits model's C2ST comes from each pixel's level histogram alone.

Run as a module; ``docs/guide/tuning.md`` ("Images") names the command::

    OMP_NUM_THREADS=1 python -m benchmarks.pixel_marginals --method flow_alone --seed 0 \
        --n-iter 1000

It fits ``--method`` (a method of :mod:`benchmarks.ablation`, with the demo's settings),
draws 540 samples rounded to levels and prints their C2ST against the held-out digits
twice: as drawn, and after every pixel's values are replaced, rank for rank, by the
training digits' quantiles of that pixel (:func:`match_marginals`), which makes each
pixel's level histogram that of the data and keeps the samples' dependence between
pixels. It also prints the share of all pixels at each level, samples against data.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import numpy as np

from benchmarks.ablation import method_params
from coopkit import CoopFlow, metrics
from coopkit.demo import DEMOS


def match_marginals(samples: np.ndarray, reference: np.ndarray, seed: int = 0) -> np.ndarray:
    """``samples`` ``(n, d)`` with column ``j`` replaced by ``reference[:, j]``'s quantiles
    at the ranks of ``samples[:, j]`` (ties broken at random).

    Examples:
        >>> drawn, data = np.array([[0.0], [5.0], [9.0]]), np.array([[1.0], [2.0], [3.0]])
        >>> match_marginals(drawn, data).ravel().tolist()
        [1.0, 2.0, 3.0]
    """
    rng = np.random.default_rng(seed)
    matched = np.empty_like(samples, dtype=float)
    for j in range(samples.shape[1]):
        jitter = rng.uniform(0, 1e-3, len(samples))
        ranks = (np.argsort(np.argsort(samples[:, j] + jitter)) + 0.5) / len(samples)
        matched[:, j] = np.quantile(reference[:, j], ranks, method="inverted_cdf")
    return matched


def level_shares(images: np.ndarray) -> np.ndarray:
    """The share of all pixels at each of the levels 0..16, in percent."""
    counts = np.bincount(np.rint(images).astype(int).ravel(), minlength=17)
    return 100 * counts / counts.sum()


def main(argv: Sequence[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", default="flow_alone")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n-iter", type=int, default=None, help="default: the demo's")
    args = parser.parse_args(argv)
    train, held_out, _, _ = metrics.digits_split()
    demo = dict(DEMOS["digits"])
    n_iter = demo.pop("n_iter") if args.n_iter is None else args.n_iter
    demo.pop("n_iter", None)
    model = CoopFlow(**{**demo, **method_params(args.method, n_iter)})
    model.set_params(random_state=args.seed).fit(train)
    drawn = model.sample(540, random_state=args.seed, revise=args.method != "flow_alone")
    samples = np.rint(drawn).reshape(540, 64)
    matched = match_marginals(samples, train.reshape(len(train), 64), args.seed)
    result = {
        "c2st": metrics.digits_c2st(samples, held_out, random_state=args.seed),
        "c2st_marginals_matched": metrics.digits_c2st(matched, held_out, random_state=args.seed),
    }
    print(result)
    print("levels, samples %:", np.round(level_shares(samples), 1).tolist())
    print("levels, data %:   ", np.round(level_shares(train), 1).tolist())
    return result


if __name__ == "__main__":
    main()
