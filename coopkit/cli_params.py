"""``coopkit fit``'s flags for the estimator's parameters, generated from its signature.

Every constructor parameter of :class:`~coopkit.CoopFlow` that takes a plain value (a
number, a string, a flag, a pair, or ``None``) gets a flag named after it
(``warmup_iter`` → ``--warmup-iter``) whose help is the parameter's line in the class
docstring, so the command line and the estimator cannot drift apart. Values are read
as Python literals (``1e-3``, ``None``, ``auto``); pairs take two values; ``True``/
``False`` parameters get ``--name`` / ``--no-name``.
"""

from __future__ import annotations

import argparse
import ast
import inspect
import re
from typing import Any

# Parameters with flags of their own (parts, their params, seed, progress) or with no
# meaning for one command-line run (warm_start continues a fitted estimator in memory).
OWN_FLAGS = (
    "flow",
    "energy",
    "sampler",
    "flow_params",
    "energy_params",
    "sampler_params",
    "random_state",
    "verbose",
    "warm_start",
)
PAIRS = ("energy_betas", "data_range")


def literal(text: str) -> Any:
    """A command-line value as a Python literal, or the text itself.

    Examples:
        >>> literal("1e-3"), literal("auto"), literal("None"), literal("4")
        (0.001, 'auto', None, 4)
    """
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def parameter_help(estimator: type) -> dict[str, str]:
    """Each parameter's description from the ``Args:`` section of ``estimator``'s
    docstring, on one line."""
    doc = inspect.getdoc(estimator) or ""
    args = doc.split("Args:\n", 1)[-1].split("\n\n", 1)[0]
    entries = re.findall(r"^    (\w+): (.*?)(?=^    \w+: |\Z)", args, flags=re.M | re.S)
    return {name: " ".join(text.split()) for name, text in entries}


def flag_parameters(estimator: type) -> dict[str, inspect.Parameter]:
    """The constructor parameters that get a generated flag."""
    parameters = inspect.signature(estimator).parameters
    return {name: p for name, p in parameters.items() if name not in OWN_FLAGS}


def add_parameter_flags(parser: argparse.ArgumentParser, estimator: type) -> None:
    """Add a flag to ``parser`` for every parameter of :func:`flag_parameters`; a flag
    not given leaves the estimator's (or the preset's) value."""
    helps = parameter_help(estimator)
    for name, parameter in flag_parameters(estimator).items():
        flag = "--" + name.replace("_", "-")
        text = f"{helps.get(name, name)} (default: {parameter.default!r})".replace("%", "%%")
        options: dict[str, Any] = {"help": text, "default": argparse.SUPPRESS}
        if isinstance(parameter.default, bool):
            options["action"] = argparse.BooleanOptionalAction
        else:
            options.update(type=literal, metavar="VALUE", nargs="+" if name in PAIRS else None)
        parser.add_argument(flag, **options)


def parameter_values(args: argparse.Namespace, estimator: type) -> dict[str, Any]:
    """The parameters given on the command line, as the estimator takes them."""
    values = {}
    for name in flag_parameters(estimator):
        if not hasattr(args, name):
            continue
        value = getattr(args, name)
        if name in PAIRS:
            value = value[0] if len(value) == 1 else tuple(value)
        values[name] = value
    return values
