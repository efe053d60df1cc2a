"""coopkit's entry point into this distribution: registers the ``flowpp`` flow.

Declared in ``pyproject.toml`` as ``[project.entry-points.coopkit] flowpp =
"coopkit_flowpp.plugin"``; coopkit loads this module on its first registry lookup.
"""

from __future__ import annotations

from coopkit import hookimpl
from coopkit.hookspecs import Register

from coopkit_flowpp.flow import FlowPlusPlus


@hookimpl
def register_flows(register: Register) -> None:
    register(
        "flowpp",
        FlowPlusPlus,
        description="Flow++ for images in [-1, 1]: logistic-mixture CDF couplings, "
        "optional self-attention and variational dequantisation",
    )
