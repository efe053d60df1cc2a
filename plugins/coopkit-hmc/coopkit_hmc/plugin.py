"""coopkit's entry point into this distribution: registers the ``hmc`` sampler.

Declared in ``pyproject.toml`` as ``[project.entry-points.coopkit] hmc =
"coopkit_hmc.plugin"``; coopkit loads this module on its first registry lookup.
"""

from __future__ import annotations

from coopkit import hookimpl
from coopkit.hookspecs import Register

from coopkit_hmc.sampler import hmc


@hookimpl
def register_samplers(register: Register) -> None:
    register(
        "hmc",
        hmc,
        description="Hamiltonian Monte Carlo: leapfrog, Metropolis-corrected, dual averaging",
    )
