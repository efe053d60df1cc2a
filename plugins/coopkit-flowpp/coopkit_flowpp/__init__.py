"""coopkit-flowpp: Flow++ (Ho et al., 2019), the flow of the CoopFlow paper, as a plugin.

Installing the distribution is all it takes: ``CoopFlow(flow="flowpp")`` then works and
``coopkit.available("flow")`` lists ``flowpp`` with origin ``coopkit-flowpp <version>``.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from coopkit_flowpp.attention import GatedSelfAttention
from coopkit_flowpp.coupling import MixtureCoupling
from coopkit_flowpp.dequantization import UniformDequantizer, VariationalDequantizer
from coopkit_flowpp.flow import FlowPlusPlus
from coopkit_flowpp.mixture import inverse_logit_mixture_cdf, logit_mixture_cdf

try:
    __version__ = version("coopkit-flowpp")
except PackageNotFoundError:  # pragma: no cover - imported from a source tree
    __version__ = "0+unknown"

__all__ = [
    "FlowPlusPlus",
    "GatedSelfAttention",
    "MixtureCoupling",
    "UniformDequantizer",
    "VariationalDequantizer",
    "__version__",
    "inverse_logit_mixture_cdf",
    "logit_mixture_cdf",
]
