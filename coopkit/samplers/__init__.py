"""MCMC samplers; the built-ins are registered through :func:`register_samplers`."""

from __future__ import annotations

from coopkit.hookspecs import Register, hookimpl
from coopkit.samplers.base import Sampler, SampleResult
from coopkit.samplers.langevin import LangevinSampler
from coopkit.samplers.mala import MALASampler
from coopkit.samplers.pcn import PCNSampler

__all__ = ["LangevinSampler", "MALASampler", "PCNSampler", "SampleResult", "Sampler"]


@hookimpl
def register_samplers(register: Register) -> None:
    register(
        "langevin",
        LangevinSampler,
        description="short-run Langevin flow (noise-free by default, as released)",
    )
    register(
        "mala",
        MALASampler,
        description="Metropolis-adjusted Langevin, exact for exp(-E), optional step adaptation",
    )
    register(
        "pcn",
        PCNSampler,
        description="preconditioned Crank-Nicolson Metropolis, gradient-free; "
        "the reviser in a flow's latent space",
    )
