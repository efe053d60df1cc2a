"""coopkit-hmc: a Hamiltonian Monte Carlo sampler for coopkit, shipped as a plugin.

Installing the distribution is all it takes: ``CoopFlow(sampler="hmc")`` then works and
``coopkit.available("sampler")`` lists ``hmc`` with origin ``coopkit-hmc <version>``.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from coopkit_hmc.adaptation import DualAveraging
from coopkit_hmc.sampler import HMCSampler, hmc

try:
    __version__ = version("coopkit-hmc")
except PackageNotFoundError:  # pragma: no cover - imported from a source tree
    __version__ = "0+unknown"

__all__ = ["DualAveraging", "HMCSampler", "__version__", "hmc"]
