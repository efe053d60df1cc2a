"""The demo: CoopFlow on data that ships with scikit-learn, and pictures of the result."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from coopkit.plots import save_panels

# The demo gives only the budget (and the digits' range): everything else is the
# estimator's "auto" for its kind of data (coopkit.defaults).
DEMOS: dict[str, dict[str, Any]] = {
    "digits": {"n_iter": 400, "batch_size": 256, "data_range": (0, 16)},
    "moons": {"n_iter": 800, "batch_size": 256},
}


def _load_demo_data(name: str) -> tuple[Any, Any]:
    if name == "digits":
        from coopkit.metrics import digits_split

        train, test, _, _ = digits_split()
        return train, test
    from coopkit.datasets import moons

    return moons(2000, random_state=0), moons(2000, random_state=1)


def run_demo(data: str, out: Path, n_iter: int | None, seed: int, verbose: bool) -> dict[str, Any]:
    """Train on ``data``, write ``samples.png``, ``training.png`` and ``model.coopkit`` into
    ``out`` (for digits also ``reconstructions.png``, ``inpaintings.png`` and
    ``interpolation.png``); return the paths and the sample-quality numbers (for digits,
    of the samples rounded to the data's integer levels, as the data are)."""
    from coopkit import CoopFlow, metrics
    from coopkit.plots import save_panels, save_training_curves

    settings = dict(DEMOS[data])
    if n_iter is not None:
        settings["n_iter"] = n_iter
    train, test = _load_demo_data(data)
    model = CoopFlow(random_state=seed, verbose=verbose, **settings).fit(train)
    revised = model.sample(256, random_state=seed)
    proposals = model.sample(256, random_state=seed, revise=False)
    if data == "digits":
        revised, proposals = np.rint(revised), np.rint(proposals)
        quality = {
            "c2st_revised": metrics.digits_c2st(revised, test),
            "c2st_proposals": metrics.digits_c2st(proposals, test),
            "frechet_revised": metrics.digits_frechet_distance(revised, test),
            "frechet_proposals": metrics.digits_frechet_distance(proposals, test),
        }
        shown = 64
    else:
        quality = {
            "swd_revised": metrics.sliced_wasserstein(revised, test, random_state=0),
            "swd_proposals": metrics.sliced_wasserstein(proposals, test, random_state=0),
        }
        shown = 256
    out.mkdir(parents=True, exist_ok=True)
    panels = [
        ("training data", train[:shown]),
        ("flow proposals", proposals[:shown]),
        ("revised samples", revised[:shown]),
    ]
    value_range = settings.get("data_range")
    written = {
        "samples": save_panels(out / "samples.png", panels, value_range),
        "training": save_training_curves(out / "training.png", model.history_),
        "model": model.save(out / "model.coopkit"),
    }
    if data == "digits":
        written.update(_digits_uses(model, test, out, seed))
    return {**written, **quality}


def _digits_uses(model: Any, test: np.ndarray, out: Path, seed: int) -> dict[str, Path]:
    """Pictures of reconstruction, inpainting of a masked square (completions sampled
    from the model given the rest), and interpolation, each by the estimator's default
    method."""
    originals = test[:8]
    recon = model.reconstruct(originals, random_state=seed)
    mask = np.ones((8, 8))
    mask[2:6, 2:6] = 0
    completions = model.inpaint(originals[:4], mask, n_completions=3, random_state=seed)
    masked = np.where(mask.astype(bool), originals[:4], 0.0)
    strip = model.interpolate(test[0], test[1], n_points=8, random_state=seed)
    value_range = (0, 16)
    return {
        "reconstructions": save_panels(
            out / "reconstructions.png",
            [("held-out digits", originals), ("reconstructions", recon)],
            value_range,
        ),
        "inpaintings": save_panels(
            out / "inpaintings.png",
            [("observed (square masked)", masked)]
            + [(f"completion {i + 1}", completions[:, i]) for i in range(3)],
            value_range,
        ),
        "interpolation": save_panels(
            out / "interpolation.png", [("interpolation", strip)], value_range, n_columns=8
        ),
    }
