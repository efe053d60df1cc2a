"""The conformance kit run over every registered part, parametrised from the registry:
a new built-in or an installed plugin is covered without writing a test."""

from __future__ import annotations

import pytest

import coopkit
from coopkit.testing import check_sampler

SAMPLER_PARAMS = {
    "langevin": {"noise_scale": 1.0, "max_change": None},
    "hmc": {"n_leapfrog": 5},
}


@pytest.mark.parametrize("part", coopkit.available("sampler"), ids=lambda part: part.name)
def test_registered_sampler_conforms(part: coopkit.registry.PartInfo) -> None:
    check_sampler(part.factory, **SAMPLER_PARAMS.get(part.name, {}))
