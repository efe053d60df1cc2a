"""The hooks through which every part of a CoopFlow model is registered.

A plugin is any object (usually a module) with functions decorated by
:data:`hookimpl`. Each hook receives one ``register`` callback with the signature
``register(name, factory, *, description="")``; built-in parts use the very same
hooks (see :mod:`coopkit.flows`, :mod:`coopkit.energies`, :mod:`coopkit.samplers`).

Examples:
    >>> from coopkit import hookimpl
    >>> class MyPlugin:
    ...     @hookimpl
    ...     def register_samplers(self, register):
    ...         register("noop", lambda **params: None, description="does nothing")
"""

from __future__ import annotations

from typing import Any, Protocol

import pluggy

PROJECT_NAME = "coopkit"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


class Register(Protocol):
    """The callback each hook receives."""

    def __call__(self, name: str, factory: Any, *, description: str = "") -> None: ...


@hookspec
def register_flows(register: Register) -> None:
    """Register normalizing flows: ``factory(event_shape, **params) -> Flow``."""


@hookspec
def register_energies(register: Register) -> None:
    """Register energy nets: ``factory(event_shape, **params) -> nn.Module`` giving ``(n,)``."""


@hookspec
def register_samplers(register: Register) -> None:
    """Register MCMC samplers: ``factory(**params) -> Sampler``."""
