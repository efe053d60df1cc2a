"""The distribution reaches coopkit only through its entry point."""

from __future__ import annotations

import os
import subprocess
import sys
from importlib.metadata import entry_points, version

import coopkit
import numpy as np
from coopkit.registry import resolve
from coopkit.testing import check_plugin

from coopkit_hmc import HMCSampler, hmc


def test_the_entry_point_is_declared() -> None:
    (ep,) = [ep for ep in entry_points(group="coopkit") if ep.name == "hmc"]
    assert ep.value == "coopkit_hmc.plugin"
    assert ep.dist is not None
    assert ep.dist.metadata["Name"] == "coopkit-hmc"


def test_the_entry_point_loads_with_known_hooks_only() -> None:
    check_plugin("coopkit-hmc")


def test_coopkit_lists_hmc_with_the_distribution_that_provides_it() -> None:
    parts = {part.name: part for part in coopkit.available("sampler")}
    assert "hmc" in parts
    assert parts["hmc"].origin == f"coopkit-hmc {version('coopkit-hmc')}"
    assert "Hamiltonian" in parts["hmc"].description
    assert resolve("sampler", "hmc").factory is hmc


def run_python(code: str, **env: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.strip()


def test_coopkit_never_imports_the_plugin_itself() -> None:
    code = (
        "import sys, coopkit, coopkit.estimator, coopkit.testing, coopkit.samplers; "
        "names = [p.name for p in coopkit.available('sampler')]; "
        "print('hmc' in names, 'coopkit_hmc' in sys.modules)"
    )
    assert run_python(code, COOPKIT_DISABLE_PLUGIN_AUTOLOAD="1") == "False False"
    assert run_python(code) == "True True"


def test_coopflow_fits_with_the_plugin_sampler() -> None:
    from sklearn.datasets import make_moons

    X, _ = make_moons(128, noise=0.05, random_state=0)
    model = coopkit.CoopFlow(
        sampler="hmc",
        sampler_params={"n_leapfrog": 3, "n_steps": 2},
        n_iter=3,
        batch_size=32,
        random_state=0,
    ).fit(X)
    assert isinstance(model.sampler_, HMCSampler)
    samples = model.sample(16, random_state=0)
    assert samples.shape == (16, 2)
    assert np.isfinite(samples).all()
