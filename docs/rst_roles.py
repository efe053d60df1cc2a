r"""Griffe extension for the API reference: reStructuredText markup in docstrings to Markdown.

coopkit's docstrings are Google style with a few reStructuredText constructs, which
Markdown would print literally. This extension rewrites them once the package is loaded:

* an ``Args:`` or ``Attributes:`` item naming several entries (``flow_lr, energy_lr: ...``)
  becomes one item per name with the shared description, so each gets its own row;
* ``.. math::`` blocks become ``$$ ... $$`` display math (pymdownx.arithmatex);
* ``:math:`...``` becomes inline math ``\( ... \)``;
* ``:class:``, ``:func:``, ``:meth:``, ``:attr:``, ``:data:``, ``:mod:``, ``:exc:`` become
  cross-references when the target is a documented coopkit object (looked up as written,
  then relative to the enclosing class and module), and code spans otherwise
  (``torch.compile``, private helpers). A leading ``~`` shows only the last component.

Loaded by mkdocstrings from ``mkdocs.yml`` (``extensions: [docs/rst_roles.py]``).
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_ROLE = re.compile(r":(class|func|meth|attr|data|mod|exc):`(~?)([\w.]+)`")
_MATH = re.compile(r":math:`([^`]+)`")
_DIRECTIVE = re.compile(r"^(\s*)\.\. math::\s?(.*)$")
_SECTION = re.compile(r"^(\s*)(Args|Arguments|Parameters|Attributes):\s*$")
_SHARED_ITEM = re.compile(r"^(\s+)(\w+(?:,\s*\w+)+):\s(.*)$")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _split_items(text: str) -> str:
    """Items of ``Args:``/``Attributes:`` sections that name several entries, one per name."""
    lines = text.splitlines()
    out: list[str] = []
    section: int | None = None
    i = 0
    while i < len(lines):
        line = lines[i]
        header = _SECTION.match(line)
        if header is not None:
            section = len(header.group(1))
        elif line.strip() and section is not None and _indent(line) <= section:
            section = None
        item = _SHARED_ITEM.match(line) if section is not None else None
        if item is None:
            out.append(line)
            i += 1
            continue
        indent, names, first = item.groups()
        rest = []
        i += 1
        while i < len(lines) and lines[i].strip() and _indent(lines[i]) > len(indent):
            rest.append(lines[i])
            i += 1
        for name in re.split(r",\s*", names):
            out += [f"{indent}{name}: {first}", *rest]
    return "\n".join(out)


def _math_blocks(text: str) -> str:
    """``.. math::`` directives (up to the next blank line) as ``$$`` blocks."""
    lines = text.splitlines()
    out: list[str] = []
    i = 0
    while i < len(lines):
        match = _DIRECTIVE.match(lines[i])
        if match is None:
            out.append(lines[i])
            i += 1
            continue
        indent, first = match.groups()
        body = [first.strip()] if first.strip() else []
        i += 1
        while i < len(lines) and lines[i].strip() and lines[i].startswith(indent + " "):
            body.append(lines[i].strip())
            i += 1
        out += ["", f"{indent}$$", *(f"{indent}{line}" for line in body), f"{indent}$$", ""]
    return "\n".join(out)


def _lookup(obj: griffe.Object, name: str, loader: griffe.GriffeLoader) -> str | None:
    """Path of the documented coopkit object ``name`` means inside ``obj``, if any."""
    scopes: list[str] = []
    scope: griffe.Object | None = obj
    while scope is not None:
        if scope.is_class or scope.is_module:
            scopes.append(scope.path)
        scope = scope.parent
    for candidate in [name, *(f"{path}.{name}" for path in scopes)]:
        try:
            target = loader.modules_collection[candidate]
            if target.is_alias:
                target = target.final_target
        except (KeyError, ValueError, griffe.AliasResolutionError, griffe.CyclicAliasError):
            continue
        parts = target.path.split(".")
        documented = target.is_module or target.docstring is not None
        if parts[0] == "coopkit" and documented and not any(p.startswith("_") for p in parts):
            return target.path
        return None
    return None


def _convert(obj: griffe.Object, loader: griffe.GriffeLoader) -> None:
    text = _math_blocks(_split_items(obj.docstring.value))
    text = _MATH.sub(lambda m: f"\\({m.group(1)}\\)", text)

    def role(match: re.Match[str]) -> str:
        _, tilde, name = match.groups()
        shown = name.rsplit(".", 1)[-1] if tilde else name
        path = _lookup(obj, name, loader)
        return f"[`{shown}`][{path}]" if path else f"`{shown}`"

    obj.docstring.value = _ROLE.sub(role, text)


def _walk(obj: griffe.Object) -> list[griffe.Object]:
    found = [obj]
    for member in obj.members.values():
        if not member.is_alias:
            found += _walk(member)
    return found


class RstRoles(griffe.Extension):
    """Rewrites every docstring of the loaded package (see the module docstring)."""

    def on_package(self, *, pkg: griffe.Module, loader: griffe.GriffeLoader, **kwargs: Any) -> None:
        for obj in _walk(pkg):
            if obj.docstring is not None:
                _convert(obj, loader)
