"""The examples of the documentation pages that are written as doctests (``pycon``
blocks) run as they are shown."""

from __future__ import annotations

import doctest
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parent.parent / "docs"
DOCTESTED_PAGES = ["guide/likelihood.md", "guide/troubleshooting.md"]


@pytest.mark.parametrize("page", DOCTESTED_PAGES)
def test_page_examples_run_as_shown(page: str) -> None:
    results = doctest.testfile(
        str(DOCS / page), module_relative=False, optionflags=doctest.ELLIPSIS, verbose=False
    )
    assert results.attempted > 0
    assert results.failed == 0
