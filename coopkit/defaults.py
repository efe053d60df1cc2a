"""What ``"auto"`` means: the parts and training settings CoopFlow uses for each kind of data.

Every estimator parameter listed in :data:`AUTO` defaults to ``"auto"`` and is resolved
at ``fit`` from the kind of data (``"table"`` or ``"image"``); the resolved values are
the fitted attribute ``CoopFlow.settings_``. Both kinds get the configuration that won
the ablations of ``docs/guide/tuning.md``: an ``nsf`` flow (on images, through the
exact logit map, on the flattened pixels), an energy net that tilts the flow
(``energy_base="flow"``), revised by gradient-free pCN moves in the flow's latent space,
rates of 1e-3 (flow) and 3e-3 (energy) with a cosine decay, and a flow that learns from
the data (the base of the tilt; the energy net corrects it). The energy net sees its
inputs through fixed features that let it express sharp functions: random Fourier
features of the standardised table, or every pixel at octave frequencies
(:class:`~coopkit.energies.features.OctaveFeatures`), whose level histogram the flow
alone gets wrong. The paper's algorithm with the authors' released image settings
(``docs/guide/paper-settings.md``) is::

    CoopFlow(flow="glow", energy="conv", sampler="langevin", energy_base="uniform",
             flow_learns_from="revised", flow_lr=1e-4, energy_lr=1e-4,
             energy_betas=(0.5, 0.5), warmup_iter=100, lr_schedule="constant")

Examples:
    >>> resolve("image", {"flow_lr": "auto", "energy_base": "auto", "flow": "glow"})
    {'flow_lr': 0.001, 'energy_base': 'flow', 'flow': 'glow'}
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

# One recipe for both kinds of data (the ablations of docs/guide/tuning.md); what differs
# between tables and images is in the factories' parameters below.
_TILTED_FLOW: dict[str, Any] = {
    "flow": "nsf",
    "energy": "mlp",
    "sampler": "pcn",
    "flow_lr": 1e-3,
    "energy_lr": 3e-3,
    "energy_betas": (0.9, 0.999),
    "warmup_iter": 50,
    "lr_schedule": "cosine",
    "flow_learns_from": "data",
    "energy_base": "flow",
}
AUTO: dict[str, dict[str, Any]] = {"table": dict(_TILTED_FLOW), "image": dict(_TILTED_FLOW)}

# Parameters of a sampler's factory, by kind of data and sampler name, filled in when the
# factory names them and ``sampler_params`` leaves them unset. Tables have no released
# Langevin settings; a step of 0.3 moves chains enough per step for the energy to teach
# the flow (0.03, the released value for images, lets the flow drift).
SAMPLER_PARAMS: dict[tuple[str, str], dict[str, Any]] = {
    ("table", "langevin"): {"step_size": 0.3},
    ("table", "pcn"): {"step_size": 1.0, "n_steps": 10},
    ("image", "pcn"): {"step_size": 1.0, "n_steps": 10},
}

# The Langevin flow that reconstruction, inpainting and interpolation differentiate
# through when the fitted reviser runs in the flow's latent space (pCN moves there are
# not a function of their start): noise-free, as released, with few steps because every
# step back-propagates through the flow twice.
RECONSTRUCTION_LANGEVIN: dict[str, Any] = {"n_steps": 10}

# Inpainting by conditional sampling (coopkit.conditional) when the fitted reviser runs
# in the flow's latent space, where observed entries cannot be clamped: MALA in data
# space on the tilted energy, its step size tuned in the warm-up, from the best of
# INPAINT_CANDIDATES flow samples per chain with the observed entries written in.
INPAINT_MALA: dict[str, Any] = {"step_size": 0.05, "n_steps": 100, "n_warmup": 50}
INPAINT_CANDIDATES = 16

# Parameters of the flow's factory by kind of data, filled in when the factory names them
# and ``flow_params`` leaves them unset. A table's flow starts at the full-covariance
# Gaussian fit of the data (a whitening first layer, ``NSF(whiten=True)``) rather than
# at per-column scales: at equal CPU time it lowered CoopFlow's C2ST on the 20- and 50-
# column tables of benchmarks/tables.py from 0.57 to 0.54 and 0.55, where a Gaussian
# scores 0.53 and 0.54 (docs/benchmarks.md, "Levers on tables").
FLOW_PARAMS: dict[str, dict[str, Any]] = {"table": {"whiten": True}}

# Parameters of the energy net's factory by kind of data and ``energy_base``, filled in
# when the factory names them. A flow-tilted energy needs no Gaussian reference term (the
# flow already makes the model normalisable), which would otherwise pull every sample
# toward the origin. On tables the tilt must learn the sharp log-ratio between the flow
# and the data (the flow's thin bridges between modes); a plain MLP on a few inputs
# learns it too slowly, random Fourier features of the standardised inputs let it.
ENERGY_PARAMS: dict[tuple[str, str], dict[str, Any]] = {
    ("table", "flow"): {"reference_scale": None, "fourier_features": 64, "fourier_scale": 1.0},
    ("image", "flow"): {"reference_scale": None, "octaves": 5},
}


# The short-run EBM baseline (``proposal="noise"``) has no flow to tilt or to learn. On
# tables its energy net learns faster than a tilt needs: over the four 2-D sets a rate
# of 1e-2 beat the tilt's 3e-3 (docs/guide/tuning.md).
NOISE_BASELINE: dict[str, dict[str, Any]] = {
    "table": {"sampler": "langevin", "energy_base": "uniform", "energy_lr": 1e-2},
    "image": {"energy": "conv", "sampler": "langevin", "energy_base": "uniform"},
}


def resolve(kind: str, params: Mapping[str, Any], proposal: str = "flow") -> dict[str, Any]:
    """``params`` with every ``"auto"`` value replaced by the default for ``kind`` (and
    for the short-run EBM baseline when ``proposal="noise"``)."""
    auto = {**AUTO[kind], **NOISE_BASELINE[kind]} if proposal == "noise" else AUTO[kind]
    return {
        name: auto[name] if isinstance(value, str) and value == "auto" else value
        for name, value in params.items()
    }


CHOICES: dict[str, tuple[str, ...]] = {
    "flow_learns_from": ("revised", "data", "both"),
    "energy_base": ("uniform", "flow"),
    "lr_schedule": ("constant", "cosine"),
}


def _is_integer(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def check(settings: dict[str, Any], proposal: str = "flow") -> dict[str, Any]:
    """``settings`` (resolved by :func:`resolve`) unchanged, or a ValueError naming the
    parameter, the value and what is accepted.

    Examples:
        >>> check({"lr_schedule": "linear"})
        Traceback (most recent call last):
        ...
        ValueError: lr_schedule must be 'constant', 'cosine' or 'auto'; got 'linear'.
    """
    for name, allowed in CHOICES.items():
        if name in settings and settings[name] not in allowed:
            quoted = ", ".join(repr(a) for a in allowed)
            raise ValueError(f"{name} must be {quoted} or 'auto'; got {settings[name]!r}.")
    if proposal == "noise" and settings.get("energy_base") == "flow":
        raise ValueError(
            "proposal='noise' needs energy_base='uniform': the short-run EBM baseline has "
            "no trained flow to tilt."
        )
    for name in ("flow_lr", "energy_lr"):
        value = settings.get(name, 1.0)
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not value > 0:
            raise ValueError(f"{name} must be a positive number or 'auto'; got {value!r}.")
    warmup = settings.get("warmup_iter", 0)
    if not _is_integer(warmup) or warmup < 0:
        raise ValueError(f"warmup_iter must be an integer >= 0 or 'auto'; got {warmup!r}.")
    betas = settings.get("energy_betas", (0.0, 0.0))
    if not (
        isinstance(betas, (tuple, list))
        and len(betas) == 2
        and all(isinstance(b, (int, float)) and 0 <= b < 1 for b in betas)
    ):
        raise ValueError(f"energy_betas must be two numbers in [0, 1) or 'auto'; got {betas!r}.")
    return settings
