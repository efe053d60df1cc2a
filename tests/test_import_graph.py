"""The import graph of ``coopkit/``, read from the source with :mod:`ast`: no circle, and
the estimator at the top, imported by the package's face alone.

Every ``import`` statement counts, those inside functions and ``if TYPE_CHECKING:``
blocks too: a circle that only type checkers follow still ties the modules together,
and a helper that names the estimator's class still depends on it.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "coopkit"


def module_name(path: Path) -> str:
    """``coopkit/flows/base.py`` as ``coopkit.flows.base``; a package's ``__init__.py``
    as the package."""
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def owner(name: str) -> str | None:
    """The coopkit module that defines ``name`` (a module, or an object in one)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def imported(module: str, node: ast.Import | ast.ImportFrom) -> set[str]:
    """The coopkit modules that one import statement of ``module`` imports."""
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    else:
        base = node.module or ""
        if node.level:
            package = module if MODULES[module].name == "__init__.py" else module.rpartition(".")[0]
            for _ in range(node.level - 1):
                package = package.rpartition(".")[0]
            base = f"{package}.{base}".rstrip(".")
        names = [f"{base}.{alias.name}" for alias in node.names]
    return {target for target in map(owner, names) if target is not None and target != module}


def import_graph() -> dict[str, set[str]]:
    """Each coopkit module and the coopkit modules it imports."""
    graph = {}
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        nodes = [n for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))]
        graph[module] = set().union(*(imported(module, node) for node in nodes))
    return graph


def find_circle(graph: dict[str, set[str]]) -> list[str] | None:
    """One circle of ``graph`` as the modules along it (first = last), or ``None``."""
    done: set[str] = set()
    path: list[str] = []

    def visit(module: str) -> list[str] | None:
        if module in path:
            return [*path[path.index(module) :], module]
        if module in done:
            return None
        path.append(module)
        for target in sorted(graph[module]):
            circle = visit(target)
            if circle is not None:
                return circle
        path.pop()
        done.add(module)
        return None

    for module in sorted(graph):
        circle = visit(module)
        if circle is not None:
            return circle
    return None


def test_the_graph_is_read_from_every_module() -> None:
    graph = import_graph()
    assert {"coopkit", "coopkit.estimator", "coopkit.flows.base"} <= set(graph)
    assert "coopkit.estimator" in graph["coopkit"]  # the TYPE_CHECKING import counts
    assert "coopkit.flows.base" in graph["coopkit.flows.spline"]
    assert "coopkit.registry" in graph["coopkit.presets"]  # from coopkit import registry


def test_the_circle_finder_finds_a_circle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set()}
    assert find_circle(graph) == ["a", "b", "c", "a"]
    assert find_circle({"a": {"b"}, "b": set()}) is None


def test_no_import_circle_in_coopkit() -> None:
    circle = find_circle(import_graph())
    assert circle is None, "import circle: " + " -> ".join(circle or [])


def test_only_the_package_face_imports_the_estimator() -> None:
    graph = import_graph()
    importers = sorted(
        module for module, targets in graph.items() if "coopkit.estimator" in targets
    )
    assert importers == ["coopkit"]


def test_the_layers_of_the_design() -> None:
    """The rules of the architecture: ``data`` depends on nothing of coopkit's but its
    column types (which depend on nothing), a flow never imports a sampler, the
    training loop never imports scikit-learn."""
    graph = import_graph()
    assert graph["coopkit.data"] == {"coopkit.columns"}
    assert graph["coopkit.columns"] == set()
    flows = [m for m in graph if m.startswith("coopkit.flows")]
    assert not any(t.startswith("coopkit.samplers") for m in flows for t in graph[m])
    training = [p for m, p in MODULES.items() if m.startswith("coopkit.training")]
    assert training
    for path in training:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                assert not any(a.name.startswith("sklearn") for a in node.names), path
            if isinstance(node, ast.ImportFrom):
                assert not (node.module or "").startswith("sklearn"), path
