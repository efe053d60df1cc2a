"""MkDocs hook: fail the build when a docstring example renders as nested blockquotes.

mkdocstrings turns a Google-style ``Examples:`` section into code blocks; any other
heading (``Example:``) leaves the ``>>>`` prompts to Markdown, which reads them as
nested blockquotes and runs the code together. This hook finds that in the built pages.
"""

from __future__ import annotations

import re
from typing import Any

from mkdocs.exceptions import PluginError

NESTED_QUOTES = re.compile(r"<blockquote>\s*<blockquote>")


def on_post_page(output: str, page: Any, config: Any) -> str:
    """Refuse a page where ``>>>`` prompts became blockquotes."""
    if NESTED_QUOTES.search(output):
        raise PluginError(
            f"{page.file.src_uri}: a docstring example renders as nested blockquotes; "
            "head its section 'Examples:' (not 'Example:') so that mkdocstrings makes it code."
        )
    return output
