"""The sampler profile (:mod:`benchmarks.sampler_profile`) on a tiny budget: MALA's row
is measured and lands in the page's table (the full rows are run as a module)."""

from __future__ import annotations

from typing import Any

from benchmarks.sampler_profile import excess, measure, profile_section


def test_mala_is_profiled_against_its_floor_and_tabulated(benchmark: Any) -> None:
    row = benchmark.pedantic(measure, args=("mala",), kwargs={"rounds": 1}, rounds=1)
    assert row["gradient_evaluations"] == 30
    assert row["sampler_s"] > 0
    assert row["floor_s"] > 0
    # The floor runs no random draws; the sampler draws its noise and its uniforms.
    assert "aten::normal_" in row["sampler_ops"]
    assert "aten::normal_" not in row["floor_ops"]
    names = [name for name, _, _ in excess(row)]
    assert "aten::normal_" in names
    assert profile_section([row])[-1].startswith("| mala | ")
