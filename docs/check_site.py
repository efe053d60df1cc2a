r"""Check the built documentation site in headless Chromium, with the network blocked.

Serves a folder built by ``mkdocs build --strict -d SITE`` on 127.0.0.1, opens the pages
below in headless Chromium (driven by Playwright), and checks on each page that:

* no request left the machine (every request not to 127.0.0.1 is blocked and recorded);
* MathJax typeset every math block: each ``.arithmatex`` element holds an
  ``mjx-container``, MathJax reported no TeX error, and no raw ``\(``, ``\[`` or ``$$``
  is left in the page's text outside code;
* every ``<img>`` loaded (``naturalWidth > 0``) and every local resource answered 200;
* every ``Examples:`` section of an API docstring is a code block, and no ``>>>`` prompt
  is left as prose or blockquote;
* no console error or uncaught exception, nothing wider than the window, and every link
  inside the site leads to a page (and anchor) that exists.

A full-page screenshot of each page is written to SCREENSHOTS. Usage::

    mkdocs build --strict -d /tmp/site
    python docs/check_site.py /tmp/site /tmp/shots [--page api/flows] [--chromium PATH]

Exits 1 with the list of failures when a check fails, 2 when it cannot run (no Chromium
or no Playwright). Chromium comes from the system (``apt-get install chromium``), found
as ``$COOPKIT_CHROMIUM``, ``chromium``, ``chromium-browser`` or ``google-chrome`` on the
PATH; Playwright's own download (``playwright install``) is not needed.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import http.server
import os
import re
import shutil
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

HOST = "127.0.0.1"
PAGES = (
    "",
    "quickstart/",
    "guide/tuning/",
    "benchmarks/",
    "api/estimator/",
    "api/inference/",
    "api/samplers/",
)
VIEWPORT = {"width": 1280, "height": 900}
TIMEOUT_MS = 30_000
MATH_TIMEOUT_MS = 15_000
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
# Backstop under Playwright's routing: a host name other than 127.0.0.1 does not resolve.
CHROMIUM_ARGS = [
    f"--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE {HOST}",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]

MATH_TYPESET_JS = """() => Array.from(document.querySelectorAll('.arithmatex'))
    .every(block => block.querySelector('mjx-container'))"""

MATH_JS = r"""() => {
  const blocks = Array.from(document.querySelectorAll('.arithmatex'));
  const raw = blocks.filter(b => !b.querySelector('mjx-container'))
    .map(b => b.textContent.trim().slice(0, 80));
  const errors = Array.from(document.querySelectorAll('mjx-merror'))
    .map(e => e.getAttribute('data-mjx-error') || e.textContent.slice(0, 80));
  const body = document.body.cloneNode(true);
  body.querySelectorAll('pre, code, script, style, mjx-container, .arithmatex')
    .forEach(e => e.remove());
  const text = body.textContent;
  const leftover = [];
  for (const m of text.matchAll(/\\\(|\\\[|\$\$/g)) {
    leftover.push(text.slice(Math.max(0, m.index - 30), m.index + 50).replace(/\s+/g, ' '));
  }
  const typeset = document.querySelectorAll('.arithmatex mjx-container').length;
  return {blocks: blocks.length, typeset, raw, errors, leftover};
}"""

IMAGES_JS = """() => ({
  count: document.images.length,
  broken: Array.from(document.images)
    .filter(img => !(img.complete && img.naturalWidth > 0))
    .map(img => img.getAttribute('src')),
})"""

IMAGES_LOADED_JS = "() => Array.from(document.images).every(img => img.complete)"

EXAMPLES_JS = r"""() => {
  const bad = [];
  let count = 0;
  const titled = (el) => el && el.querySelector && el.querySelector('.doc-section-title');
  for (const title of document.querySelectorAll('.doc-section-title')) {
    if (!/^Examples?:?$/.test(title.textContent.trim())) continue;
    count += 1;
    const where = title.closest('.doc-object')?.querySelector('.doc-heading')
      ?.textContent.trim().split('\n')[0] || '(page)';
    let el = (title.closest('p') || title).nextElementSibling;
    let code = 0;
    for (; el && !titled(el) && !el.matches('.doc-object, .doc-children, h2, h3, h4');
         el = el.nextElementSibling) {
      if (el.matches('div.highlight, pre') || el.querySelector('pre code')) code += 1;
      if (el.matches('blockquote')) bad.push(where + ': a blockquote in its Examples section');
    }
    if (!code) bad.push(where + ': its Examples section has no code block');
  }
  const body = document.body.cloneNode(true);
  body.querySelectorAll('pre, code, script, style').forEach(e => e.remove());
  for (const el of body.querySelectorAll('p, li, blockquote, td, dd')) {
    if (el.textContent.includes('>>>') && !el.querySelector('p, li, blockquote')) {
      bad.push('a ">>>" prompt outside a code block: ' + el.textContent.trim().slice(0, 80));
    }
  }
  return {bad, count};
}"""

LAYOUT_JS = """() => ({
  page: document.documentElement.scrollWidth,
  window: window.innerWidth,
  links: Array.from(document.querySelectorAll('a[href]')).map(a => a.href),
})"""


class CannotRunError(RuntimeError):
    """The checks cannot run here (the browser does not start)."""


@dataclass
class PageCheck:
    """What one page did in the browser, and the failures found on it."""

    path: str
    failures: list[str] = field(default_factory=list)
    offsite: list[str] = field(default_factory=list)
    console: list[str] = field(default_factory=list)
    bad_responses: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """The page's name for reports and screenshot files: ``home``, ``api-estimator``."""
        return self.path.strip("/").replace("/", "-") or "home"


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    """A static file handler that does not log every request to stderr."""

    def log_message(self, format: str, *args: Any) -> None:
        """Log nothing."""


@contextlib.contextmanager
def serve(site: Path) -> Iterator[str]:
    """Serve ``site`` on 127.0.0.1 (a free port) in a thread; yield the base URL."""
    handler = functools.partial(_QuietHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer((HOST, 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{HOST}:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def find_chromium() -> str | None:
    """The system Chromium: ``$COOPKIT_CHROMIUM``, else the first of CHROMIUM_NAMES on PATH."""
    explicit = os.environ.get("COOPKIT_CHROMIUM")
    if explicit:
        return explicit if Path(explicit).is_file() else None
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


def page_path(page: str) -> str:
    """A page as the site's directory URL: ``guide/tuning`` -> ``guide/tuning/``."""
    page = page.strip("/")
    if page in ("", "index", "index.html"):
        return ""
    return page.removesuffix("/index.html").removesuffix(".html") + "/"


def _watch(context: Any, page: Any, check: PageCheck) -> None:
    """Block and record requests off the machine; record console errors and bad answers."""

    def route(route: Any) -> None:
        if urlsplit(route.request.url).hostname == HOST:
            route.continue_()
        else:
            check.offsite.append(route.request.url)
            route.abort("blockedbyclient")

    def on_response(response: Any) -> None:
        if response.status >= 400:
            check.bad_responses.append(f"{response.status} {response.url}")

    context.route("**/*", route)
    page.on("console", lambda m: m.type == "error" and check.console.append(m.text))
    page.on("pageerror", lambda error: check.console.append(f"uncaught: {error}"))
    page.on("response", on_response)


def _check_math(page: Any, check: PageCheck) -> None:
    """Fail the page on math that MathJax left raw or could not parse."""
    with contextlib.suppress(Exception):  # a timeout: the check below names the blocks
        page.wait_for_function(MATH_TYPESET_JS, timeout=MATH_TIMEOUT_MS)
    math = page.evaluate(MATH_JS)
    check.counts["math"] = math["blocks"]
    check.failures += [f"math not typeset by MathJax: {text!r}" for text in math["raw"]]
    check.failures += [f"MathJax error: {error}" for error in math["errors"]]
    check.failures += [f"raw TeX delimiters in the text: ...{s}..." for s in math["leftover"]]


def _check_images_and_examples(page: Any, check: PageCheck) -> None:
    """Fail the page on an image that did not load or an example that is not code."""
    with contextlib.suppress(Exception):  # a timeout: the check below names the images
        page.wait_for_function(IMAGES_LOADED_JS, timeout=TIMEOUT_MS)
    images, examples = page.evaluate(IMAGES_JS), page.evaluate(EXAMPLES_JS)
    check.counts["images"], check.counts["examples"] = images["count"], examples["count"]
    check.failures += [f"image did not load: {src}" for src in images["broken"]]
    check.failures += [f"example not rendered as code: {bad}" for bad in examples["bad"]]


def _missing_target(site: Path, base: str, url: str) -> str | None:
    """Why a link inside the site leads nowhere (no such page or anchor), else None."""
    parts = urlsplit(url)
    target = site / unquote(parts.path).lstrip("/")
    if target.is_dir():
        target = target / "index.html"
    if not target.is_file():
        return f"broken link: {url.removeprefix(base)} (no such page)"
    if parts.fragment and target.suffix == ".html":
        html = target.read_text(encoding="utf-8", errors="replace")
        if not re.search(rf'\bid="{re.escape(unquote(parts.fragment))}"', html):
            return f"broken link: {url.removeprefix(base)} (no such anchor)"
    return None


def _check_layout_and_links(page: Any, check: PageCheck, site: Path, base: str) -> None:
    """Fail the page when it is wider than the window or links to nothing on the site."""
    layout = page.evaluate(LAYOUT_JS)
    if layout["page"] > layout["window"]:
        check.failures.append(
            f"page is wider than the window ({layout['page']} px > {layout['window']} px)"
        )
    for url in sorted(set(layout["links"])):
        if url.startswith(base):
            missing = _missing_target(site, base, url)
            if missing:
                check.failures.append(missing)


def check_page(browser: Any, base: str, site: Path, path: str, shots: Path) -> PageCheck:
    """Open one page in a fresh browser context, run every check, write its screenshot."""
    check = PageCheck(path)
    context = browser.new_context(viewport=VIEWPORT, service_workers="block")
    try:
        page = context.new_page()
        _watch(context, page, check)
        _visit(page, check, site, base, shots)
    except Exception as error:  # a timeout or a crashed page fails the page, not the run
        check.failures.append(f"the browser failed on the page: {error}")
    finally:
        context.close()
    check.failures += [f"request left the machine (blocked): {url}" for url in check.offsite]
    check.failures += [f"console error: {text}" for text in check.console]
    check.failures += [f"HTTP error: {text}" for text in check.bad_responses]
    check.failures = _counted(check.failures)
    return check


def _visit(page: Any, check: PageCheck, site: Path, base: str, shots: Path) -> None:
    """Load the page, run the checks on it and write its full-page screenshot."""
    response = page.goto(base + check.path, wait_until="load", timeout=TIMEOUT_MS)
    if response is None or response.status != 200:
        check.failures.append(f"page did not load: {response and response.status}")
    _check_math(page, check)
    _check_images_and_examples(page, check)
    _check_layout_and_links(page, check, site, base)
    page.screenshot(path=str(shots / f"{check.name}.png"), full_page=True)


def _counted(failures: list[str]) -> list[str]:
    """Each failure once, in order, with how often it happened when more than once."""
    counts = Counter(failures)
    return [f"{text} ({counts[text]} times)" if counts[text] > 1 else text for text in counts]


def check_site(site: Path, shots: Path, pages: list[str], chromium: str) -> list[PageCheck]:
    """Serve ``site``, check each of ``pages`` in headless Chromium; the page checks."""
    from playwright.sync_api import sync_playwright

    shots.mkdir(parents=True, exist_ok=True)
    with serve(site) as base, sync_playwright() as playwright:
        try:
            browser = playwright.chromium.launch(
                executable_path=chromium, headless=True, args=CHROMIUM_ARGS
            )
        except Exception as error:  # Playwright's Error: no usable browser there
            raise CannotRunError(f"Chromium at {chromium} did not start: {error}") from error
        try:
            return [check_page(browser, base, site, page_path(p), shots) for p in pages]
        finally:
            browser.close()


def report(checks: list[PageCheck], shots: Path) -> int:
    """Print one line per page (and its failures); 0 when every page passed, else 1."""
    for check in checks:
        counts = ", ".join(f"{n} {what}" for what, n in check.counts.items())
        print(f"{'FAIL' if check.failures else 'pass'}  /{check.path}  ({counts})")
        for failure in check.failures:
            print(f"      - {failure}")
    failed = sum(bool(check.failures) for check in checks)
    print(f"{len(checks) - failed} of {len(checks)} pages passed; screenshots in {shots}")
    return 1 if failed else 0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line: SITE SCREENSHOTS [--page PATH ...] [--chromium PATH]."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("site", type=Path, help="folder built by mkdocs build --strict -d")
    parser.add_argument("screenshots", type=Path, help="folder for one PNG per page")
    parser.add_argument(
        "--page",
        action="append",
        dest="pages",
        help="a page to check instead of the default set (repeatable), e.g. api/flows",
    )
    parser.add_argument("--chromium", default=None, help="the Chromium executable to drive")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the checks from the command line; the exit status."""
    args = parse_args(argv)
    if not (args.site / "index.html").is_file():
        print(f"{args.site} holds no built site (no index.html)", file=sys.stderr)
        return 2
    chromium = args.chromium or find_chromium()
    if chromium is None or not Path(chromium).is_file():
        where = f"at {chromium}" if chromium else "on the PATH"
        print(f"no Chromium {where}: apt-get install chromium, or pass --chromium", file=sys.stderr)
        return 2
    try:
        import playwright.sync_api  # noqa: F401 (only to say what is missing)
    except ImportError:
        print("Playwright is missing: pip install -e '.[docs]'", file=sys.stderr)
        return 2
    try:
        checks = check_site(args.site, args.screenshots, args.pages or list(PAGES), chromium)
    except CannotRunError as error:
        print(error, file=sys.stderr)
        return 2
    return report(checks, args.screenshots)


if __name__ == "__main__":
    sys.exit(main())
