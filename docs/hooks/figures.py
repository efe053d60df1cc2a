"""MkDocs hook: a picture alone in its paragraph becomes a captioned, clickable figure.

``![eight_gaussians: samples per method](img/benchmarks/toy-eight_gaussians.png)`` on a
line of its own renders as the picture scaled to the text column, which leaves the
panel titles and axes of a wide grid of plots too small to read. This hook turns it into
a ``<figure>`` whose picture links to the full-size file, captioned by its alt text.
"""

from __future__ import annotations

import html
import re
from typing import Any

LONE_IMAGE = re.compile(r"<p>\s*(<img\b[^>]*>)\s*</p>")
ATTRIBUTE = re.compile(r'\b(alt|src)="([^"]*)"')


def figure(image: str) -> str:
    """The ``<figure>`` for one ``<img>`` tag: linked to its file, captioned by its alt."""
    attributes = dict(ATTRIBUTE.findall(image))
    src, alt = attributes.get("src", ""), attributes.get("alt", "")
    if not src:
        return f"<p>{image}</p>"
    caption = f"<figcaption>{alt}</figcaption>" if alt else ""
    title = html.escape("Open the full-size picture", quote=True)
    return (
        f'<figure class="coopkit-figure"><a href="{src}" title="{title}">{image}</a>'
        f"{caption}</figure>"
    )


def on_page_content(output: str, page: Any, config: Any, files: Any) -> str:
    """Turn each picture that stands alone in a paragraph into a figure."""
    return LONE_IMAGE.sub(lambda match: figure(match.group(1)), output)
