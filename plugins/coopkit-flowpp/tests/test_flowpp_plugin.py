"""The distribution reaches coopkit only through its entry point, and CoopFlow trains it."""

from __future__ import annotations

import os
import subprocess
import sys
from importlib.metadata import entry_points, version

import coopkit
import numpy as np
from coopkit.metrics import digits_split
from coopkit.registry import resolve
from coopkit.testing import check_plugin

from coopkit_flowpp import FlowPlusPlus


def test_the_entry_point_is_declared() -> None:
    (ep,) = [ep for ep in entry_points(group="coopkit") if ep.name == "flowpp"]
    assert ep.value == "coopkit_flowpp.plugin"
    assert ep.dist is not None
    assert ep.dist.metadata["Name"] == "coopkit-flowpp"


def test_the_entry_point_loads_with_known_hooks_only() -> None:
    check_plugin("coopkit-flowpp")


def test_coopkit_lists_flowpp_with_the_distribution_that_provides_it() -> None:
    parts = {part.name: part for part in coopkit.available("flow")}
    assert "flowpp" in parts
    assert (
        parts["flowpp"].origin
        == "coopkit-flowpp 0.1.0"
        == f"coopkit-flowpp {version('coopkit-flowpp')}"
    )
    assert "Flow++" in parts["flowpp"].description
    assert resolve("flow", "flowpp").factory is FlowPlusPlus


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
        "import sys, coopkit, coopkit.estimator, coopkit.testing, coopkit.flows; "
        "names = [p.name for p in coopkit.available('flow')]; "
        "print('flowpp' in names, 'coopkit_flowpp' in sys.modules)"
    )
    assert run_python(code, COOPKIT_DISABLE_PLUGIN_AUTOLOAD="1") == "False False"
    assert run_python(code, COOPKIT_DISABLED_PLUGINS="flowpp") == "False False"
    assert run_python(code) == "True True"


def test_coopflow_trains_flowpp_on_digits() -> None:
    X_train = digits_split()[0][:64]
    model = coopkit.CoopFlow(
        flow="flowpp",
        flow_params={"n_steps": 2, "hidden_channels": 8, "n_components": 3},
        energy="conv",
        energy_params={"n_f": 8},
        n_iter=3,
        batch_size=16,
        data_range=(0, 16),
        random_state=0,
    ).fit(X_train)
    assert isinstance(model.flow_, FlowPlusPlus)
    assert model.n_iter_ == 3
    assert np.isfinite(model.history_["flow_nll"]).all()
    samples = model.sample(10, random_state=0)
    assert samples.shape == (10, 8, 8)
    assert np.isfinite(samples).all()
    assert samples.min() >= 0
    assert samples.max() <= 16
