"""The documentation site in headless Chromium with the network blocked.

``docs/check_site.py`` runs on a fresh ``mkdocs build --strict``, and on a one-page site
made to fail every check. Both need a system Chromium (``apt-get install chromium``) and
Playwright (``pip install -e '.[docs]'``); without them the tests are skipped.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "docs" / "check_site.py"
TIMEOUT_S = 600

BROKEN_PAGE = r"""<!doctype html><html><head><title>broken</title></head><body>
<article class="md-typeset">
<p>Raw math: \(x^2\)</p>
<img src="https://example.com/picture.png"><img src="missing.png">
<blockquote><blockquote><p>&gt;&gt;&gt; print(1)</p></blockquote></blockquote>
<div class="doc-object"><p><span class="doc-section-title">Examples:</span></p><p>prose</p></div>
<a href="nowhere/">a broken link</a>
<script>console.error("boom");</script>
</article></body></html>
"""


@functools.cache
def _load_check_site() -> ModuleType:
    """docs/check_site.py as a module (docs/ is not a package), loaded once."""
    spec = importlib.util.spec_from_file_location("coopkit_docs_check_site", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclass looks its module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def chromium() -> str:
    """The system Chromium's path; skips the test when Chromium or Playwright is missing."""
    pytest.importorskip(
        "playwright.sync_api", reason="Playwright is not installed (pip install -e '.[docs]')"
    )
    found = _load_check_site().find_chromium()
    if found is None:
        pytest.skip("no Chromium on this machine (apt-get install chromium, or $COOPKIT_CHROMIUM)")
    return found


def _check(site: Path, shots: Path, chromium: str) -> subprocess.CompletedProcess[str]:
    """Run docs/check_site.py on ``site``; skips the test when it cannot run (status 2)."""
    check = _run(sys.executable, str(SCRIPT), str(site), str(shots), "--chromium", chromium)
    if check.returncode == 2:
        pytest.skip(f"docs/check_site.py cannot run here: {check.stderr.strip()[:300]}")
    return check


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    """Run a command from the repository root; its captured output."""
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    return subprocess.run(
        args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=TIMEOUT_S, check=False
    )


def test_site_pages_pass_in_an_offline_browser(chromium: str, tmp_path: Path) -> None:
    pytest.importorskip("mkdocs", reason="mkdocs is not installed (pip install -e '.[docs]')")
    site, shots = tmp_path / "site", tmp_path / "shots"
    build = _run(sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-d", str(site))
    assert build.returncode == 0, build.stdout + build.stderr

    check = _check(site, shots, chromium)
    assert check.returncode == 0, check.stdout + check.stderr
    pages = _load_check_site().PAGES
    assert check.stdout.count("pass  /") == len(pages), check.stdout
    assert len(list(shots.glob("*.png"))) == len(pages)


def test_a_broken_page_fails_every_check(chromium: str, tmp_path: Path) -> None:
    site, shots = tmp_path / "site", tmp_path / "shots"
    site.mkdir()
    (site / "index.html").write_text(BROKEN_PAGE, encoding="utf-8")

    check = _check(site, shots, chromium)
    assert check.returncode == 1, check.stdout + check.stderr
    for failure in (
        "raw TeX delimiters in the text",
        "image did not load: https://example.com/picture.png",
        "image did not load: missing.png",
        'a ">>>" prompt outside a code block',
        "its Examples section has no code block",
        "broken link: nowhere/",
        "request left the machine (blocked): https://example.com/picture.png",
        "console error: boom",
        "HTTP error: 404",
    ):
        assert failure in check.stdout, f"{failure!r} not reported:\n{check.stdout}"
    assert (shots / "home.png").is_file()
