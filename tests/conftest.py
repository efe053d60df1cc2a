"""Shared fixtures: float64 tests and throwaway plugin distributions."""

from __future__ import annotations

import importlib
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch

from coopkit.registry import default_registry

MakeDistribution = Callable[..., Path]


@pytest.fixture
def float64() -> Iterator[torch.dtype]:
    """Run the test in float64 on the CPU: torch's default dtype is float64 for its
    duration (tensors and modules built in it are float64) and restored afterwards."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        yield torch.float64
    finally:
        torch.set_default_dtype(previous)


@pytest.fixture
def make_distribution(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[MakeDistribution]:
    """Write an installed-looking distribution (module + ``.dist-info``) onto ``sys.path``.

    ``make_distribution(dist, module, source, entry_points={"name": "module"})`` writes
    ``module.py`` with ``source`` and a ``dist-0.1.dist-info`` whose ``entry_points.txt``
    declares the ``coopkit`` group. The default registry is reset before and after.
    """
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    written: list[str] = []

    def make(dist: str, module: str, source: str, entry_points: dict[str, str]) -> Path:
        (site / f"{module}.py").write_text(textwrap.dedent(source))
        info = site / f"{dist}-0.1.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
        lines = [f"{name} = {target}" for name, target in entry_points.items()]
        (info / "entry_points.txt").write_text("[coopkit]\n" + "\n".join(lines) + "\n")
        written.append(module)
        importlib.invalidate_caches()
        default_registry.reload()
        return site

    yield make
    for module in written:
        sys.modules.pop(module, None)
    default_registry.reload()
