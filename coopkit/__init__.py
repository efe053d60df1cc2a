"""coopkit: CoopFlow (ICLR 2022, "A Tale of Two Flows") as a scikit-learn estimator.

``import coopkit`` is light: torch and scikit-learn load on first use of
:class:`CoopFlow` or of the registry's parts.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from coopkit.hookspecs import hookimpl
from coopkit.registry import available, register_plugin

if TYPE_CHECKING:
    from coopkit.estimator import CoopFlow
    from coopkit.training import TrainingDivergedError

__version__ = "0.1.0"
__all__ = [
    "CoopFlow",
    "TrainingDivergedError",
    "__version__",
    "available",
    "hookimpl",
    "register_plugin",
]

_LAZY = {"CoopFlow": "coopkit.estimator", "TrainingDivergedError": "coopkit.training"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'coopkit' has no attribute {name!r}")
