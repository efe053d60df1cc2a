from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np


def coopkit(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "coopkit.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
    )


def test_demo_on_moons_writes_pictures_and_model(tmp_path: Path) -> None:
    result = coopkit(
        "demo", "--data", "moons", "--n-iter", "20", "--out", "out", "--quiet", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    for name in ("samples.png", "training.png", "model.coopkit"):
        assert (tmp_path / "out" / name).stat().st_size > 0
    assert "swd revised:" in result.stdout
    assert str(Path("out") / "samples.png") in result.stdout


def test_help_and_bad_input(tmp_path: Path) -> None:
    assert "demo" in coopkit("--help", cwd=tmp_path).stdout
    bad = coopkit("demo", "--data", "moons", "--n-iter", "0", "--out", "o", "--quiet", cwd=tmp_path)
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines()[-1].startswith("coopkit: error: ")
    assert "zero iterations" in bad.stderr


def test_digits_demo_writes_every_picture(tmp_path: Path) -> None:
    result = coopkit("demo", "--n-iter", "2", "--out", "out", "--quiet", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    names = ["samples", "training", "reconstructions", "inpaintings", "interpolation"]
    for name in names:
        assert (tmp_path / "out" / f"{name}.png").read_bytes()[:4] == b"\x89PNG"
    assert "frechet revised:" in result.stdout
    assert "frechet proposals:" in result.stdout


def test_fit_then_sample_to_npy_and_png(tmp_path: Path) -> None:
    fit = coopkit(
        "fit",
        "moons",
        "--out",
        "run",
        "--n-iter",
        "3",
        "--batch-size",
        "64",
        "--flow-param",
        "n_layers=2",
        "--sampler-param",
        "n_steps=3",
        "--quiet",
        cwd=tmp_path,
    )
    assert fit.returncode == 0, fit.stderr
    assert (tmp_path / "run" / "model.coopkit").is_file()
    assert (tmp_path / "run" / "training.png").is_file()
    npy = coopkit("sample", "run/model.coopkit", "-n", "7", "--out", "s.npy", cwd=tmp_path)
    assert npy.returncode == 0, npy.stderr
    assert np.load(tmp_path / "s.npy").shape == (7, 2)
    png = coopkit("sample", "run/model.coopkit", "-n", "16", "--out", "grid.png", cwd=tmp_path)
    assert png.returncode == 0, png.stderr
    assert (tmp_path / "grid.png").read_bytes()[:4] == b"\x89PNG"


def test_fit_reads_npz_files(tmp_path: Path) -> None:
    np.savez(tmp_path / "data.npz", table=np.random.RandomState(0).randn(40, 3))
    result = coopkit(
        "fit",
        "data.npz",
        "--key",
        "table",
        "--out",
        "o",
        "--n-iter",
        "2",
        "--batch-size",
        "8",
        "--quiet",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert np.load(tmp_path / "data.npz")["table"].shape == (40, 3)


def test_plugins_lists_every_part_with_its_origin(tmp_path: Path) -> None:
    result = coopkit("plugins", cwd=tmp_path)
    assert result.returncode == 0
    lines = result.stdout.splitlines()
    assert lines[0].split()[:3] == ["kind", "name", "origin"]
    assert any(
        line.split()[:2] == ["flow", "realnvp"] and "coopkit (built-in)" in line for line in lines
    )
    assert any(line.split()[:2] == ["sampler", "langevin"] for line in lines)


def test_bad_input_exits_2_with_one_line(tmp_path: Path) -> None:
    cases = [
        (["fit", "missing.npy", "--out", "o"], "No such data file: missing.npy"),
        (["fit", "moons", "--out", "o", "--flow", "nope", "--n-iter", "1"], "Unknown flow 'nope'"),
        (["sample", "absent.coopkit", "--out", "s.npy"], "No coopkit model file at absent.coopkit"),
        (["fit", "moons", "--out", "o", "--flow-param", "bad"], "--flow-param takes NAME=VALUE"),
    ]
    for args, message in cases:
        result = (
            coopkit(*args, "--quiet", cwd=tmp_path)
            if args[0] == "fit"
            else coopkit(*args, cwd=tmp_path)
        )
        assert result.returncode == 2, args
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert message in result.stderr


def test_every_command_has_help(tmp_path: Path) -> None:
    for command in ("fit", "sample", "plugins", "demo"):
        result = coopkit(command, "--help", cwd=tmp_path)
        assert result.returncode == 0
        assert "usage: coopkit" in result.stdout
