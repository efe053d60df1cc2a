"""MkDocs hook: serve MathJax with the site, so that math renders without a network.

The MathJax 3 build comes from the pip package ``sphinx-mathjax-offline`` (in the
``docs`` extra), which ships it as static files; after the build they are copied to
``javascripts/mathjax/`` in the site, where ``mkdocs.yml`` loads ``tex-mml-chtml.js``.
"""

from __future__ import annotations

import importlib.metadata
import shutil
from pathlib import Path
from typing import Any

from mkdocs.exceptions import PluginError

DISTRIBUTION = "sphinx-mathjax-offline"
SOURCE = "sphinx-mathjax-offline/static/mathjax"
TARGET = "javascripts/mathjax"


def on_post_build(config: Any) -> None:
    """Copy MathJax into the built site."""
    try:
        source = Path(str(importlib.metadata.distribution(DISTRIBUTION).locate_file(SOURCE)))
    except importlib.metadata.PackageNotFoundError:
        source = None
    if source is None or not (source / "tex-mml-chtml.js").is_file():
        raise PluginError(
            f"MathJax is served with the site from the package {DISTRIBUTION!r}; install the "
            "docs extra: pip install -e '.[docs]'."
        )
    shutil.copytree(source, Path(config["site_dir"]) / TARGET, dirs_exist_ok=True)
