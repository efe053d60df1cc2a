"""Energy nets; the built-ins are registered through :func:`register_energies`."""

from __future__ import annotations

from coopkit.energies.conv import ConvEnergy
from coopkit.energies.mlp import MLPEnergy
from coopkit.hookspecs import Register, hookimpl

__all__ = ["ConvEnergy", "MLPEnergy"]


@hookimpl
def register_energies(register: Register) -> None:
    register("mlp", MLPEnergy, description="MLP with swish activations (tables; images flattened)")
    register("conv", ConvEnergy, description="the paper's residual conv EBM (images)")
