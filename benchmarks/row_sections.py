"""The parts of ``docs/benchmarks.md`` built from rows that long measurements append to
``benchmarks/results/*.jsonl``, one run at a time: digits at equal wall time
(:mod:`benchmarks.wall_time`), the held-out tilt (:mod:`benchmarks.tilt`), tables at
equal CPU time (:mod:`benchmarks.tables`), the cost of
batch-invariant scoring (:mod:`benchmarks.scoring_cost`), of reconstruction and
inpainting (:mod:`benchmarks.reconstruction_cost`), and where the samplers' time goes
(:mod:`benchmarks.sampler_profile`).

``benchmarks/report.py`` writes them with the rest of the page; ``python -m
benchmarks.row_sections`` rewrites only them in the page as it stands, after new rows.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from benchmarks import (
    reconstruction_cost,
    sampler_profile,
    scoring_cost,
    tables,
    tilt_report,
    wall_time_report,
)
from coopkit.datasets import TOY_SETS

DOCS = Path(__file__).resolve().parent.parent / "docs"


def sections() -> list[tuple[str, Callable[[], list[str]]]]:
    """``(heading, build)`` of each section, in page order; ``build()`` gives its lines."""
    return [
        (
            wall_time_report.HEADING,
            lambda: wall_time_report.wall_time_section(
                wall_time_report.load(), DOCS / "img" / "benchmarks"
            ),
        ),
        (
            tilt_report.HEADING,
            lambda: tilt_report.tilt_section(wall_time_report.load(tilt_report.RESULTS)),
        ),
        (
            tables.HEADING,
            lambda: tables.tables_section(wall_time_report.load(tables.RESULTS)),
        ),
        (
            tables.TOY_HEADING,
            lambda: tables.tables_section(wall_time_report.load(tables.RESULTS), list(TOY_SETS)),
        ),
        (
            tables.LEVERS_HEADING,
            lambda: tables.levers_section(wall_time_report.load(tables.RESULTS)),
        ),
        (
            scoring_cost.HEADING,
            lambda: scoring_cost.scoring_cost_section(wall_time_report.load(scoring_cost.RESULTS)),
        ),
        (
            reconstruction_cost.HEADING,
            lambda: reconstruction_cost.reconstruction_section(
                wall_time_report.load(reconstruction_cost.RESULTS)
            ),
        ),
        (
            sampler_profile.HEADING,
            lambda: sampler_profile.profile_section(wall_time_report.load(sampler_profile.RESULTS)),
        ),
    ]


def page_lines() -> list[str]:
    """Every section with its heading, as :func:`benchmarks.report.render` places them."""
    lines: list[str] = []
    for heading, build in sections():
        lines += ["", heading, "", *build()]
    return lines


def splice(page: str, heading: str, section: Sequence[str], before: str) -> str:
    r"""``page`` with the section under ``heading`` replaced by ``section`` (inserted
    before the heading ``before`` when it has none), the rest untouched.

    Examples:
        >>> splice("# B\n\n## Last\n\nx\n", "## New", ["new"], "## Last")
        '# B\n\n## New\n\nnew\n\n## Last\n\nx\n'
        >>> splice("# B\n\n## New\n\nold\n\n## Last\n", "## New", ["new"], "## Last")
        '# B\n\n## New\n\nnew\n\n## Last\n'
    """
    block = "\n".join([heading, "", *section]) + "\n\n"
    if heading in page:
        start = page.index(heading)
        end = page.find("\n## ", start + len(heading))
        return page[:start] + block + (page[end + 1 :] if end >= 0 else "")
    at = page.index(before)
    return page[:at] + block + page[at:]


def main() -> None:
    """Rewrite the row-built sections of ``docs/benchmarks.md`` (the rest of the page
    comes from ``benchmarks/report.py``'s full run)."""
    page = DOCS / "benchmarks.md"
    text = page.read_text()
    for heading, build in sections():
        text = splice(text, heading, build(), before="## Sample quality")
    page.write_text(text)
    print(f"wrote the row-built sections of {page}")


if __name__ == "__main__":
    main()
