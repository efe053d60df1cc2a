from __future__ import annotations

import subprocess
import sys
from pathlib import Path


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
    for name in ("samples.png", "training.png", "model.pkl"):
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
