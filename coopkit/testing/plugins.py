"""The check a plugin package runs on itself: its entry point loads and every hook it
implements is one of coopkit's.

A plugin whose hook is misspelled (``register_flow`` for ``register_flows``) would
register nothing; the registry skips it with a :class:`~coopkit.registry.PluginLoadWarning`,
and :func:`check_plugin` fails the plugin's own test suite before a user sees that.
"""

from __future__ import annotations

import importlib.metadata
import re

import pluggy

from coopkit import hookspecs
from coopkit.registry import ENTRY_POINT_GROUP, unknown_hooks, unknown_hooks_message
from coopkit.testing.common import _require


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def check_plugin(distribution: str) -> None:
    """Check the installed ``distribution``'s entry points in the group ``coopkit``.

    Each must import, implement at least one coopkit hook, and implement no hook that
    coopkit does not have.

    Raises:
        AssertionError: naming the entry point and what is wrong with it.

    Examples:
        >>> check_plugin("coopkit-hmc")
        >>> check_plugin("coopkit")
        Traceback (most recent call last):
        ...
        AssertionError: coopkit declares no entry point in the group 'coopkit'; ...
    """
    declared = [
        ep
        for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
        if ep.dist is not None and _canonical(ep.dist.metadata["Name"]) == _canonical(distribution)
    ]
    _require(
        declared,
        f"{distribution} declares no entry point in the group {ENTRY_POINT_GROUP!r}; "
        "add one to its pyproject.toml ([project.entry-points.coopkit] name = 'module') "
        "and reinstall it.",
    )
    for ep in declared:
        try:
            plugin = ep.load()
        except Exception as exc:
            raise AssertionError(
                f"entry point {ep.name!r} ({ep.value}) of {distribution} does not import: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        manager = pluggy.PluginManager(hookspecs.PROJECT_NAME)
        manager.add_hookspecs(hookspecs)
        manager.register(plugin, name=ep.name)
        unknown = unknown_hooks(manager, plugin)
        _require(not unknown, f"entry point {ep.name!r}: {unknown_hooks_message(unknown)}.")
        _require(
            manager.get_hookcallers(plugin),
            f"entry point {ep.name!r} ({ep.value}) implements no coopkit hook; decorate its "
            "register_flows / register_energies / register_samplers with coopkit.hookimpl.",
        )
