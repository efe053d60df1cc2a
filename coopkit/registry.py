"""The registry of model parts: flows, energy nets and samplers, resolved by name.

Parts come from plugins, through the hooks of :mod:`coopkit.hookspecs`. Three kinds
of plugin feed one :class:`pluggy.PluginManager`:

* built-ins (``coopkit.flows``, ``coopkit.energies``, ``coopkit.samplers``), which
  use the same hooks as everybody else;
* installed distributions that declare an entry point in the group ``coopkit``,
  loaded lazily on the first lookup;
* objects handed to :func:`register_plugin` at run time.

Environment variables:

* ``COOPKIT_DISABLE_PLUGIN_AUTOLOAD=1`` skips entry points altogether;
* ``COOPKIT_DISABLED_PLUGINS=a,b`` skips the entry points (or distributions) named.

Policy for a plugin that fails to import, or that implements a hook coopkit does not
have (a misspelled ``register_flow`` would otherwise register nothing, silently): the
failure never breaks coopkit or the other plugins. The plugin is skipped, a
:class:`PluginLoadWarning` naming the entry point, its distribution and the error is
issued, and the failure is repeated in the
message of any :class:`UnknownPartError` raised later (the part asked for may be the
one the broken plugin would have provided).
"""

from __future__ import annotations

import difflib
import importlib
import importlib.metadata
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import pluggy

from coopkit import hookspecs

Kind = Literal["flow", "energy", "sampler"]
KINDS: tuple[Kind, ...] = ("flow", "energy", "sampler")
ENTRY_POINT_GROUP = "coopkit"
BUILTIN_ORIGIN = "coopkit (built-in)"
BUILTIN_PLUGINS = ("coopkit.flows", "coopkit.energies", "coopkit.samplers")

_HOOKS: dict[Kind, str] = {
    "flow": "register_flows",
    "energy": "register_energies",
    "sampler": "register_samplers",
}


class RegistryError(LookupError):
    """Base class of the registry's errors."""


class UnknownPartError(RegistryError, ValueError):
    """No part of that kind has that name."""


class DuplicatePartError(RegistryError):
    """Two plugins registered a part of the same kind under one name."""


class PluginLoadWarning(UserWarning):
    """An entry-point plugin could not be imported and was skipped."""


@dataclass(frozen=True)
class PartInfo:
    """One registered part: what :func:`available` lists and :func:`resolve` returns."""

    kind: Kind
    name: str
    factory: Callable[..., Any]
    description: str
    origin: str


@dataclass(frozen=True)
class PluginFailure:
    """An entry point that failed to load."""

    entry_point: str
    distribution: str
    error: str

    def __str__(self) -> str:
        return f"plugin {self.entry_point!r} from distribution {self.distribution!r}: {self.error}"


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no")


def _disabled_plugins() -> set[str]:
    raw = os.environ.get("COOPKIT_DISABLED_PLUGINS", "")
    return {item.strip() for item in raw.split(",") if item.strip()}


def _check_kind(kind: str) -> Kind:
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}; got {kind!r}.")
    return kind  # type: ignore[return-value]


def unknown_hooks(pm: pluggy.PluginManager, plugin: object) -> list[str]:
    """The names of ``plugin``'s hook implementations that match no coopkit hook
    (pluggy's ``check_pending`` for one plugin; ``optionalhook`` ones excepted)."""
    return sorted(
        caller.name
        for caller in pm.get_hookcallers(plugin) or []
        if not caller.has_spec()
        and not any(impl.plugin is plugin and impl.optionalhook for impl in caller.get_hookimpls())
    )


def unknown_hooks_message(names: list[str]) -> str:
    """Why a plugin with unknown hooks is skipped, with the closest hook for each name.

    Examples:
        >>> unknown_hooks_message(["register_flow"])
        "unknown hook 'register_flow' (did you mean 'register_flows'?); it registers nothing"
    """
    hooks = list(_HOOKS.values())
    named = []
    for name in names:
        close = difflib.get_close_matches(name, hooks, n=1)
        named.append(f"{name!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    return f"unknown hook {', '.join(named)}; it registers nothing"


class Registry:
    """A plugin manager plus the parts its plugins registered, collected lazily.

    coopkit uses one, :data:`default_registry`, through the module's functions; a
    separate ``Registry`` is useful in tests.

    Examples:
        >>> registry = Registry()
        >>> {"mlp", "conv"} <= {part.name for part in registry.available("energy")}
        True
    """

    def __init__(self, *, builtins: tuple[str, ...] = BUILTIN_PLUGINS) -> None:
        self._builtins = builtins
        self._origins: dict[str, str] = {}
        self._failures: list[PluginFailure] = []
        self.reload()

    @property
    def failures(self) -> list[PluginFailure]:
        """Entry-point plugins that failed to import (see the module's policy)."""
        self._ensure_loaded()
        return list(self._failures)

    def _ensure_loaded(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        for module_name in self._builtins:
            self._pm.register(importlib.import_module(module_name), name=module_name)
            self._origins[module_name] = BUILTIN_ORIGIN
        if not _env_flag("COOPKIT_DISABLE_PLUGIN_AUTOLOAD"):
            self._load_entry_points()

    def _load_entry_points(self) -> None:
        # pluggy's load_setuptools_entrypoints stops at the first plugin that fails to
        # import; loading one entry point at a time keeps the others (our policy).
        disabled = _disabled_plugins()
        for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
            dist = ep.dist.metadata["Name"] if ep.dist is not None else "unknown"
            if ep.name in disabled or dist in disabled:
                self._pm.set_blocked(ep.name)
                continue
            if self._pm.has_plugin(ep.name) or self._pm.is_blocked(ep.name):
                continue
            try:
                plugin = ep.load()
            except Exception as exc:
                failure = PluginFailure(ep.name, dist, f"{type(exc).__name__}: {exc}")
                self._failures.append(failure)
                warnings.warn(
                    f"coopkit skipped {failure}. Reinstall or upgrade {dist!r}, or silence "
                    f"it with COOPKIT_DISABLED_PLUGINS={ep.name}.",
                    PluginLoadWarning,
                    stacklevel=3,
                )
                continue
            self._pm.register(plugin, name=ep.name)
            unknown = unknown_hooks(self._pm, plugin)
            if unknown:
                self._pm.unregister(plugin)
                failure = PluginFailure(ep.name, dist, unknown_hooks_message(unknown))
                self._failures.append(failure)
                warnings.warn(
                    f"coopkit skipped {failure}. Fix the hook's name in {dist!r}.",
                    PluginLoadWarning,
                    stacklevel=3,
                )
                continue
            version = ep.dist.version if ep.dist is not None else "?"
            self._origins[ep.name] = f"{dist} {version}"

    def _collect(self) -> dict[Kind, dict[str, PartInfo]]:
        self._ensure_loaded()
        if self._parts is not None:
            return self._parts
        parts: dict[Kind, dict[str, PartInfo]] = {kind: {} for kind in KINDS}
        for kind in KINDS:
            caller = getattr(self._pm.hook, _HOOKS[kind])
            for impl in caller.get_hookimpls():
                origin = self._origins.get(impl.plugin_name, f"runtime plugin {impl.plugin_name}")
                register = self._make_register(parts[kind], kind, origin)
                try:
                    impl.function(register=register)
                except RegistryError:
                    raise
                except Exception as exc:
                    raise RegistryError(
                        f"{origin}: its hook {_HOOKS[kind]} raised {type(exc).__name__}: {exc}"
                    ) from exc
        self._parts = parts
        return parts

    @staticmethod
    def _make_register(table: dict[str, PartInfo], kind: Kind, origin: str) -> hookspecs.Register:
        def register(name: str, factory: Any, *, description: str = "") -> None:
            if not isinstance(name, str) or not name:
                raise RegistryError(f"{origin} registered a {kind} without a name.")
            if not callable(factory):
                raise RegistryError(f"{origin} registered {kind} {name!r} with no callable.")
            if name in table:
                raise DuplicatePartError(
                    f"Two {kind}s are registered under the name {name!r}: one by "
                    f"{table[name].origin}, one by {origin}. Uninstall one of them or "
                    "block one with COOPKIT_DISABLED_PLUGINS=<entry point name>."
                )
            table[name] = PartInfo(kind, name, factory, description, origin)

        return register

    def available(self, kind: str) -> list[PartInfo]:
        """The parts of ``kind`` (``"flow"``, ``"energy"`` or ``"sampler"``), sorted by name."""
        table = self._collect()[_check_kind(kind)]
        return [table[name] for name in sorted(table)]

    def resolve(self, kind: str, name: str) -> PartInfo:
        """The part of ``kind`` registered as ``name``.

        Raises:
            UnknownPartError: listing what is available and the closest match.
        """
        table = self._collect()[_check_kind(kind)]
        if name in table:
            return table[name]
        names = sorted(table)
        close = difflib.get_close_matches(name, names, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        message = f"Unknown {kind} {name!r}.{hint} Available {kind}s: {', '.join(names) or 'none'}."
        if self._failures:
            message += " Plugins that failed to load: " + "; ".join(map(str, self._failures))
        raise UnknownPartError(message)

    def register_plugin(self, plugin: object, name: str | None = None) -> str:
        """Register ``plugin`` (an object with hookimpls) at run time; returns its name.

        The plugin is checked at once: if one of its parts clashes with a registered
        name, it is unregistered again and :class:`DuplicatePartError` is raised.
        """
        self._ensure_loaded()
        plugin_name = self._pm.register(plugin, name=name)
        if plugin_name is None:
            raise RegistryError(f"Plugin {name or plugin!r} is blocked and was not registered.")
        unknown = unknown_hooks(self._pm, plugin)
        if unknown:
            self._pm.unregister(plugin)
            raise RegistryError(f"Plugin {plugin_name!r}: {unknown_hooks_message(unknown)}")
        self._origins[plugin_name] = f"runtime plugin {plugin_name}"
        self._parts = None
        try:
            self._collect()
        except RegistryError:
            self.unregister_plugin(plugin_name)
            raise
        return plugin_name

    def unregister_plugin(self, name: str) -> None:
        """Remove a plugin registered at run time."""
        self._pm.unregister(name=name)
        self._origins.pop(name, None)
        self._parts = None

    def reload(self) -> None:
        """Forget everything loaded so that the next lookup reads entry points anew."""
        self._pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
        self._pm.add_hookspecs(hookspecs)
        self._parts: dict[Kind, dict[str, PartInfo]] | None = None
        self._loaded = False
        self._origins.clear()
        self._failures.clear()


default_registry = Registry()


def available(kind: str) -> list[PartInfo]:
    """The registered parts of ``kind``: each with name, description and origin.

    Examples:
        >>> "langevin" in [part.name for part in available("sampler")]
        True
    """
    return default_registry.available(kind)


def resolve(kind: str, name: str) -> PartInfo:
    """The part of ``kind`` registered as ``name`` in the default registry.

    Raises:
        UnknownPartError: listing what is available and the closest match.

    Examples:
        >>> part = resolve("sampler", "langevin")
        >>> part.origin, part.factory.__name__
        ('coopkit (built-in)', 'LangevinSampler')
        >>> try:
        ...     resolve("flow", "realnpv")
        ... except UnknownPartError as exc:
        ...     print(str(exc).split(" Available")[0])
        Unknown flow 'realnpv'. Did you mean 'realnvp'?
    """
    return default_registry.resolve(kind, name)


def register_plugin(plugin: object, name: str | None = None) -> str:
    """Register a plugin object with the default registry at run time; returns its name.

    Examples:
        >>> from coopkit import hookimpl
        >>> from coopkit.samplers import LangevinSampler
        >>> class NoisyLangevin:
        ...     @hookimpl
        ...     def register_samplers(self, register):
        ...         register("noisy-langevin", LangevinSampler, description="with noise")
        >>> name = register_plugin(NoisyLangevin(), name="noisy")
        >>> resolve("sampler", "noisy-langevin").origin
        'runtime plugin noisy'
        >>> default_registry.unregister_plugin(name)
    """
    return default_registry.register_plugin(plugin, name=name)
