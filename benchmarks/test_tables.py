"""Tables at equal CPU time (:mod:`benchmarks.tables`): the full comparison is run as a
module; under pytest every method runs once on a budget of a few seconds, so that CI
sees the code path."""

from __future__ import annotations

from typing import Any

import pytest

from benchmarks import budget, tables


@pytest.mark.parametrize("method", list(tables.METHODS))
def test_tables_rows(method: str, benchmark: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(budget, "CALIBRATION_ITER", 2)
    if method == "zuko_nsf":
        pytest.importorskip(
            "zuko", reason="zuko is the benchmark-only peer: pip install -e '.[bench]'"
        )
    row = benchmark.pedantic(tables.run, args=("iris", method, 2.0, 0), rounds=1, iterations=1)
    assert row["method"] == method
    assert 0.0 <= row["c2st"] <= 1.0  # below 0.5 by chance on 45 held-out rows
    assert row["distance"] >= 0
    assert row["seconds"] <= 2 * 2.0 + 30
    section = tables.tables_section([row])
    assert any(f"**{row['dataset']}**" in line for line in section)


def test_the_wide_synthetic_tables_have_their_columns() -> None:
    for dataset, d in (("classification20", 20), ("mixture50", 50)):
        train, test = tables.load(dataset)
        assert train.shape == (420, d)
        assert test.shape == (180, d)


def test_the_2d_sets_are_those_of_the_equal_iteration_page() -> None:
    train, test = tables.load("moons")
    assert train.shape == (20_000, 2)
    assert test.shape == (5_000, 2)
    assert tables.batch_size("moons") == 256
    assert tables.batch_size("iris") == 128


def fake_row(method: str, c2st: float, **extra: Any) -> dict[str, Any]:
    return {
        "dataset": "iris",
        "method": method,
        "seed": 0,
        "budget": 10.0,
        "seconds": 9.0,
        "c2st": c2st,
        "distance": 0.1,
        **extra,
    }


def test_lever_rows_are_set_beside_the_defaults_and_kept_off_the_main_table() -> None:
    lever = {"lever": "energy_l2=1", "params": {"energy_l2": 1.0}}
    rows = [
        fake_row("coopflow", 0.7),
        fake_row("gaussian", 0.6),
        fake_row("coopflow", 0.55, **lever),
    ]
    main = "\n".join(tables.tables_section(rows))
    assert tables.tables_section(rows, ["moons"]) == [
        "No run of these data sets yet (`python -m benchmarks.tables --dataset D`)."
    ]
    assert "energy_l2" not in main
    assert "**0.6" in main
    levers = tables.levers_section(rows)
    assert any("defaults" in line and "0.7" in line for line in levers)
    assert any("energy_l2=1 | 1 | 0.55" in line and '{"energy_l2": 1.0}' in line for line in levers)
    assert not any("Gaussian" in line for line in levers)


def test_a_lever_needs_its_parameters() -> None:
    with pytest.raises(SystemExit):
        tables.main(["--dataset", "iris", "--lever", "energy_l2=1"])
