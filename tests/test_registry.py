from __future__ import annotations

import pytest

import coopkit
from coopkit import CoopFlow, hookimpl
from coopkit.datasets import eight_gaussians
from coopkit.registry import (
    BUILTIN_ORIGIN,
    DuplicatePartError,
    PluginLoadWarning,
    Registry,
    RegistryError,
    UnknownPartError,
    default_registry,
)
from coopkit.testing import check_plugin
from tests.conftest import MakeDistribution

TINY_FLOW_PLUGIN = """
from coopkit import hookimpl
from coopkit.flows import RealNVP

class TinyFlow(RealNVP):
    pass

@hookimpl
def register_flows(register):
    register("tinyflow", lambda event_shape, **params: TinyFlow(event_shape, n_layers=2),
             description="a two-layer RealNVP")
"""


def test_builtins_are_listed_with_description_and_origin() -> None:
    for kind, name in [("flow", "realnvp"), ("energy", "mlp"), ("sampler", "langevin")]:
        parts = {part.name: part for part in coopkit.available(kind)}
        assert parts[name].origin == BUILTIN_ORIGIN
        assert parts[name].description


def test_unknown_kind_is_rejected() -> None:
    with pytest.raises(ValueError, match="kind must be one of flow, energy, sampler"):
        coopkit.available("flows")


def test_unknown_name_lists_available_and_closest_match() -> None:
    with pytest.raises(
        UnknownPartError, match=r"Did you mean 'realnvp'.*Available flows: .*realnvp"
    ):
        default_registry.resolve("flow", "realnvpp")


def test_unknown_name_in_estimator_fails_at_fit_not_init() -> None:
    model = CoopFlow(flow="no-such-flow", n_iter=1, batch_size=8)
    with pytest.raises(UnknownPartError, match="Unknown flow 'no-such-flow'"):
        model.fit(eight_gaussians(16, 0))


def test_entry_point_plugin_is_discovered_and_used(make_distribution: MakeDistribution) -> None:
    make_distribution("tiny-flows", "tiny_flows", TINY_FLOW_PLUGIN, {"tiny": "tiny_flows"})
    part = default_registry.resolve("flow", "tinyflow")
    assert part.origin == "tiny-flows 0.1"
    assert part.description == "a two-layer RealNVP"

    model = CoopFlow(flow="tinyflow", n_iter=2, batch_size=16, random_state=0)
    model.fit(eight_gaussians(64, 0))
    assert type(model.flow_).__name__ == "TinyFlow"
    assert model.sample(4, random_state=0).shape == (4, 2)


def test_entry_points_load_lazily(make_distribution: MakeDistribution) -> None:
    make_distribution("tiny-flows", "tiny_flows", TINY_FLOW_PLUGIN, {"tiny": "tiny_flows"})
    import sys

    assert "tiny_flows" not in sys.modules
    coopkit.available("flow")
    assert "tiny_flows" in sys.modules


def test_autoload_can_be_disabled(
    make_distribution: MakeDistribution, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_distribution("tiny-flows", "tiny_flows", TINY_FLOW_PLUGIN, {"tiny": "tiny_flows"})
    monkeypatch.setenv("COOPKIT_DISABLE_PLUGIN_AUTOLOAD", "1")
    names = [part.name for part in coopkit.available("flow")]
    assert "tinyflow" not in names
    assert "realnvp" in names


@pytest.mark.parametrize("blocked", ["tiny", "tiny-flows"])
def test_plugins_can_be_blocked_by_entry_point_or_distribution(
    make_distribution: MakeDistribution, monkeypatch: pytest.MonkeyPatch, blocked: str
) -> None:
    make_distribution("tiny-flows", "tiny_flows", TINY_FLOW_PLUGIN, {"tiny": "tiny_flows"})
    monkeypatch.setenv("COOPKIT_DISABLED_PLUGINS", f"other, {blocked}")
    with pytest.raises(UnknownPartError, match="Unknown flow 'tinyflow'"):
        default_registry.resolve("flow", "tinyflow")


def test_plugin_failing_to_import_is_skipped_and_named(
    make_distribution: MakeDistribution,
) -> None:
    make_distribution(
        "broken-dist",
        "broken_plugin",
        "raise ImportError('no numpy 3')\n",
        {"broken": "broken_plugin"},
    )
    with pytest.warns(
        PluginLoadWarning, match=r"plugin 'broken' from distribution 'broken-dist'.*no numpy 3"
    ):
        names = [part.name for part in coopkit.available("flow")]
    assert "realnvp" in names
    assert default_registry.failures[0].distribution == "broken-dist"
    with pytest.raises(UnknownPartError, match="failed to load: plugin 'broken'"):
        default_registry.resolve("flow", "whatever")


def test_duplicate_name_names_both_origins(make_distribution: MakeDistribution) -> None:
    source = TINY_FLOW_PLUGIN.replace('"tinyflow"', '"realnvp"')
    make_distribution("clash-dist", "clash_plugin", source, {"clash": "clash_plugin"})
    with pytest.raises(
        DuplicatePartError, match=r"'realnvp'.*coopkit \(built-in\).*clash-dist 0.1"
    ):
        coopkit.available("flow")


class RuntimeSamplerPlugin:
    @hookimpl
    def register_samplers(self, register):
        register("copy-langevin", coopkit.registry.resolve("sampler", "langevin").factory)


def test_runtime_registration_and_removal() -> None:
    registry = Registry()
    name = registry.register_plugin(RuntimeSamplerPlugin(), name="runtime-copy")
    part = registry.resolve("sampler", "copy-langevin")
    assert part.origin == "runtime plugin runtime-copy"
    registry.unregister_plugin(name)
    with pytest.raises(UnknownPartError):
        registry.resolve("sampler", "copy-langevin")


def test_runtime_duplicate_is_rejected_and_rolled_back() -> None:
    class Clash:
        @hookimpl
        def register_energies(self, register):
            register("mlp", lambda event_shape: None)

    registry = Registry()
    with pytest.raises(DuplicatePartError, match=r"'mlp'.*built-in.*runtime plugin clash"):
        registry.register_plugin(Clash(), name="clash")
    assert registry.resolve("energy", "mlp").origin == BUILTIN_ORIGIN


def test_hook_that_raises_is_named() -> None:
    class Faulty:
        @hookimpl
        def register_flows(self, register):
            raise RuntimeError("bad build")

    registry = Registry()
    with pytest.raises(coopkit.registry.RegistryError, match=r"runtime plugin faulty.*bad build"):
        registry.register_plugin(Faulty(), name="faulty")


MISSPELLED_PLUGIN = TINY_FLOW_PLUGIN.replace("def register_flows(", "def register_flow(")


def test_a_misspelled_hook_is_reported_like_a_failed_import(
    make_distribution: MakeDistribution,
) -> None:
    make_distribution("typo-dist", "typo_plugin", MISSPELLED_PLUGIN, {"typo": "typo_plugin"})
    with pytest.warns(
        PluginLoadWarning,
        match=r"plugin 'typo' from distribution 'typo-dist': unknown hook 'register_flow' "
        r"\(did you mean 'register_flows'\?\)",
    ):
        names = [part.name for part in coopkit.available("flow")]
    assert "tinyflow" not in names
    assert "realnvp" in names
    with pytest.raises(UnknownPartError, match=r"failed to load: plugin 'typo'.*register_flow"):
        default_registry.resolve("flow", "tinyflow")


def test_check_plugin_fails_a_misspelled_hook_and_passes_a_good_one(
    make_distribution: MakeDistribution,
) -> None:
    make_distribution("typo-dist", "typo_plugin", MISSPELLED_PLUGIN, {"typo": "typo_plugin"})
    make_distribution("tiny-flows", "tiny_flows", TINY_FLOW_PLUGIN, {"tiny": "tiny_flows"})
    with pytest.raises(AssertionError, match=r"'typo'.*did you mean 'register_flows'"):
        check_plugin("typo-dist")
    check_plugin("tiny-flows")
    with pytest.raises(AssertionError, match="no-such-dist declares no entry point"):
        check_plugin("no-such-dist")


def test_a_runtime_plugin_with_an_unknown_hook_is_refused() -> None:
    class Misspelled:
        @hookimpl
        def register_sampler(self, register):
            register("never", lambda **params: None)

    with pytest.raises(RegistryError, match="did you mean 'register_samplers'"):
        coopkit.register_plugin(Misspelled(), name="misspelled")
    assert "never" not in [part.name for part in coopkit.available("sampler")]
