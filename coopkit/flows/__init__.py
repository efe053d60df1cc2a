"""Normalizing flows; the built-ins are registered through :func:`register_flows`."""

from __future__ import annotations

from coopkit.flows.base import ActNorm, Chain, Flow, Transform
from coopkit.flows.coupling import AffineCoupling, RealNVP
from coopkit.flows.glow import Glow, MultiscaleFlow
from coopkit.flows.spline import NSF
from coopkit.hookspecs import Register, hookimpl

__all__ = [
    "NSF",
    "ActNorm",
    "AffineCoupling",
    "Chain",
    "Flow",
    "Glow",
    "MultiscaleFlow",
    "RealNVP",
    "Transform",
]


@hookimpl
def register_flows(register: Register) -> None:
    register("realnvp", RealNVP, description="affine coupling flow with MLP conditioners (tables)")
    register(
        "glow",
        Glow,
        description="multiscale Glow for images in [-1, 1] (ActNorm, LU 1x1 conv, affine coupling)",
    )
    register(
        "nsf",
        NSF,
        description="rational-quadratic spline coupling flow, linear tails (tables; images "
        "through the logit map, flattened)",
    )
