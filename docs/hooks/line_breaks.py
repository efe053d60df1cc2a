"""MkDocs hook: lines break where a reader expects, not inside a figure or an option.

Two things read badly in the built pages:

* In a table of many columns the browser shrinks every column to its narrowest, so each
  figure such as ``0.503 ± 0.006`` breaks in two (or three) and a ten-row table reads as
  twenty. Cells whose text is short (a name, a default, a number) or is one figure with
  its spread (``9.258e-05 ± 0.000519``) get the class ``coopkit-short``, which keeps
  them on one line; a table wider than the text column then scrolls sideways, with a
  shadow on the edge it continues past.
* Browsers break a line after any hyphen, so inline code such as ``--checkpoint-dir`` or
  ``--energy NAME`` came out as ``--checkpoint-`` / ``dir`` and ``--`` / ``energy``.
  Each word of inline code that holds a hyphen is wrapped in a
  ``<span class="coopkit-nobreak">``; the text (and what a copy gives) is unchanged.

The classes are styled in ``docs/stylesheets/extra.css``.
"""

from __future__ import annotations

import html
import re
from typing import Any

SHORT = 18  # characters: "0.02382 ± 0.000562", "-1.6e-04 ± 1.4e-04"
NUMBER = r"[-+−]?(?:\d[\d.,]*|\.\d+)(?:e[-+−]?\d+)?%?"
FIGURE = re.compile(rf"{NUMBER} ± {NUMBER}", re.IGNORECASE)
CELL = re.compile(r"<td(\s[^>]*)?>(.*?)</td>", re.DOTALL)
TAG = re.compile(r"<[^>]+>")
# Inline code only: a highlighted block is <pre><span></span><code>, a plain one <pre><code>.
INLINE_CODE = re.compile(r"(?<!<pre>)(?<!</span>)<code>([^<]*)</code>")
HYPHENATED = re.compile(r"[^\s-]*-[^\s]*")


def stays_whole(text: str) -> bool:
    """Whether a cell's text is short, or one figure with its spread."""
    return len(text) <= SHORT or FIGURE.fullmatch(text) is not None


def mark_cell(match: re.Match[str]) -> str:
    """The cell, with ``class="coopkit-short"`` when its text should stay on one line."""
    attributes, content = match.group(1) or "", match.group(2)
    text = " ".join(html.unescape(TAG.sub("", content)).split())
    if not stays_whole(text) or "class=" in attributes or "<br" in content:
        return match.group(0)
    return f'<td class="coopkit-short"{attributes}>{content}</td>'


def join_hyphenated(match: re.Match[str]) -> str:
    """Inline code whose hyphenated words cannot be broken at their hyphens."""
    code = HYPHENATED.sub(
        lambda word: f'<span class="coopkit-nobreak">{word.group(0)}</span>', match.group(1)
    )
    return f"<code>{code}</code>"


def on_page_content(output: str, page: Any, config: Any, files: Any) -> str:
    """Mark the table cells that stay on one line and the code words kept whole."""
    output = CELL.sub(mark_cell, output)
    return INLINE_CODE.sub(join_hyphenated, output)
