"""The conformance kit run over every registered part, parametrised from the registry:
a new built-in or an installed plugin is covered without writing a test."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch

import coopkit
from coopkit.testing import check_energy, check_flow, check_sampler

SAMPLER_PARAMS = {
    "langevin": {"noise_scale": 1.0, "max_change": None},
    "hmc": {"n_leapfrog": 5},
}

# Each part is checked on a table if its factory builds one for it, else (ValueError)
# on images; known parts get small parameters for speed, others (plugins) their defaults.
TABLE, IMAGE = (3,), (1, 8, 8)
FLOW_PARAMS: dict[str, dict[str, Any]] = {
    "realnvp": {"n_layers": 2, "hidden_features": 16},
    "nsf": {"n_layers": 2, "hidden_features": 16, "n_bins": 4},
    "glow": {"hidden_channels": 8, "n_steps": 1},
    "flowpp": {"hidden_channels": 8, "n_steps": 2, "n_components": 3},
}
ENERGY_PARAMS: dict[str, dict[str, Any]] = {
    "mlp": {"hidden_features": 16, "n_hidden": 2},
    "conv": {"n_f": 8},
}


def event_shape_for(factory: Callable[..., Any]) -> tuple[int, ...]:
    """The table shape if the factory builds a part for it, else the image shape."""
    with torch.random.fork_rng(devices=[]):
        try:
            factory(TABLE)
        except ValueError:
            return IMAGE
    return TABLE


@pytest.mark.parametrize("part", coopkit.available("flow"), ids=lambda part: part.name)
def test_registered_flow_conforms(part: coopkit.registry.PartInfo) -> None:
    check_flow(part.factory, event_shape_for(part.factory), **FLOW_PARAMS.get(part.name, {}))


@pytest.mark.parametrize("part", coopkit.available("energy"), ids=lambda part: part.name)
def test_registered_energy_conforms(part: coopkit.registry.PartInfo) -> None:
    params = ENERGY_PARAMS.get(part.name, {})
    check_energy(part.factory, event_shape_for(part.factory), **params)


@pytest.mark.parametrize("part", coopkit.available("sampler"), ids=lambda part: part.name)
def test_registered_sampler_conforms(part: coopkit.registry.PartInfo) -> None:
    check_sampler(part.factory, **SAMPLER_PARAMS.get(part.name, {}))
