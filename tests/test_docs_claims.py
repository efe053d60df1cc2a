"""Statements of the documentation that name the code's output or the repository's
contents, checked against them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import coopkit
from coopkit.cli import main

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"


def test_cli_guide_shows_the_unknown_flow_error_as_printed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if "flowpp" not in {part.name for part in coopkit.available("flow")}:
        pytest.skip("the guide's message lists flowpp, from the coopkit-flowpp plugin")
    guide = (DOCS / "guide" / "cli.md").read_text(encoding="utf-8")
    shown = re.search(r"^\$ coopkit (fit .*--flow nope.*)\n(coopkit: error: .*)$", guide, re.M)
    assert shown is not None, "cli.md no longer shows the unknown-flow example"
    args = shown.group(1).split()
    args[args.index("--out") + 1] = str(tmp_path / "out")
    assert main(args) == 2
    assert capsys.readouterr().err.strip() == shown.group(2)


def test_no_reference_to_a_design_document_outside_the_repository() -> None:
    """A reference such as DESIGN §1 points to a document the repository does not have."""
    files = [ROOT / "README.md", *DOCS.rglob("*.md")]
    for folder in ("coopkit", "plugins", "benchmarks", "tests"):
        files += (ROOT / folder).rglob("*.py")
    found = []
    for path in files:
        name = path.relative_to(ROOT).as_posix()
        if path == Path(__file__).resolve():
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if re.search(r"\bDESIGN\b", line):
                found.append(f"{name}:{number}: {line.strip()}")
    assert not found, "\n".join(found)
