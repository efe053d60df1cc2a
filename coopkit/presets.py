"""The paper's configurations by name: ``CoopFlow.from_preset("cifar10-T30")``.

Each preset is a dictionary of :class:`~coopkit.CoopFlow` parameters for 32x32 colour
images, taken from the paper and the authors' released code (``main_cifar.py``):

* the flow is Flow++ from the plugin package ``coopkit-flowpp``: 2 scales of 9 steps,
  96 hidden channels, 32 logistic-mixture components and self-attention, 29,050,164
  parameters (the paper reports 28.8M; the plugin's conditioners are shallower than the
  release's, so it takes more steps to reach that size, and it has no dropout);
* the EBM is the released residual ``conv`` net with ``n_f=128``, 17,129,444 parameters
  (the paper's 17.1M);
* the reviser is the released noise-free Langevin flow: T = 30 steps of size 0.03, each
  step's change clamped to ±0.1, pixels kept in [-1, 1];
* Adam at 1e-4 for both models, the EBM with betas (0.5, 0.5), the flow's gradient norm
  clipped to 1, both rates warmed up linearly over 200 iterations, then constant;
* batch 28, and 357,200 iterations: the released 200 epochs of CIFAR-10's 50,000 images.

``cifar10-long`` is CoopFlow(Long), with T = 200 Langevin steps. ``cifar10-pre`` is
CoopFlow(Pre): the flow is first trained alone by maximum likelihood. The released code
loads a Flow++ checkpoint trained elsewhere, whose length it does not state; the preset
pre-trains for 50,000 iterations, coopkit's choice. The same settings serve SVHN and
CelebA at 32x32, as in the paper.

``released`` is the released *training* settings (reviser, rates, betas, warm-up,
schedule, what the flow learns from) with coopkit's built-in ``glow`` and ``conv`` at
their small default sizes and the estimator's budget: the paper's algorithm on small
images, one parameter away from the image defaults (which differ, see
``docs/guide/paper-settings.md``).

References:
    Xie, Zhu, Li & Wu, "A Tale of Two Flows: Cooperative Learning of Langevin Flow and
    Normalizing Flow Toward Energy-Based Model", ICLR 2022.
    https://arxiv.org/abs/2205.06924

Examples:
    >>> sorted(PRESETS)
    ['cifar10-T30', 'cifar10-long', 'cifar10-pre', 'released']
    >>> preset("cifar10-long")["sampler_params"]["n_steps"]
    200
"""

from __future__ import annotations

import copy
import difflib
from typing import Any

from coopkit import registry

_T30: dict[str, Any] = {
    "flow": "flowpp",
    "flow_params": {
        "n_scales": 2,
        "n_steps": 9,
        "hidden_channels": 96,
        "n_components": 32,
        "attention": True,
    },
    "energy": "conv",
    "energy_params": {"n_f": 128},
    "sampler": "langevin",
    "sampler_params": {"n_steps": 30, "step_size": 0.03, "noise_scale": 0.0, "max_change": 0.1},
    "energy_base": "uniform",
    "flow_learns_from": "revised",
    "n_iter": 357_200,
    "batch_size": 28,
    "flow_lr": 1e-4,
    "energy_lr": 1e-4,
    "energy_betas": (0.5, 0.5),
    "warmup_iter": 200,
    "lr_schedule": "constant",
    "flow_grad_clip": 1.0,
}

_RELEASED_TRAINING = (
    "sampler",
    "sampler_params",
    "energy_base",
    "flow_learns_from",
    "flow_lr",
    "energy_lr",
    "energy_betas",
    "lr_schedule",
    "flow_grad_clip",
)

PRESETS: dict[str, dict[str, Any]] = {
    "released": {
        "flow": "glow",
        "energy": "conv",
        "warmup_iter": 100,
        **{name: _T30[name] for name in _RELEASED_TRAINING},
    },
    "cifar10-T30": _T30,
    "cifar10-long": {**_T30, "sampler_params": {**_T30["sampler_params"], "n_steps": 200}},
    "cifar10-pre": {**_T30, "pretrain_iter": 50_000},
}

# The distribution that provides each part a preset names, when it is not coopkit.
PLUGIN_OF_PART = {("flow", "flowpp"): "coopkit-flowpp"}


def preset(name: str) -> dict[str, Any]:
    """A copy of the parameters of the preset ``name``.

    Raises:
        ValueError: an unknown name; the message lists the presets and the closest one.
        coopkit.UnknownPartError: a part the preset names is not installed; the message
            says which package to install.
    """
    if name not in PRESETS:
        close = difflib.get_close_matches(name, PRESETS, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"Unknown preset {name!r}.{hint} Presets: {', '.join(sorted(PRESETS))}.")
    params = copy.deepcopy(PRESETS[name])
    for kind in ("flow", "energy", "sampler"):
        _check_installed(name, kind, params[kind])
    return params


def _check_installed(name: str, kind: str, part: str) -> None:
    """A clear error when the part ``kind``/``part`` of preset ``name`` is missing."""
    if part in {p.name for p in registry.available(kind)}:
        return
    package = PLUGIN_OF_PART.get((kind, part), "the plugin that provides it")
    raise registry.UnknownPartError(
        f"Preset {name!r} needs the {kind} {part!r}, which is not installed. Install "
        f"{package}: pip install {package} (from a coopkit checkout: "
        f"pip install -e plugins/{package})."
    )
