from __future__ import annotations

import inspect
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from coopkit import CoopFlow
from coopkit.cli import build_parser, main
from coopkit.metrics import digits_split
from coopkit.presets import PRESETS


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
        (["fit", "moons", "--out", "o", "--preset", "cifar-T30"], "Did you mean 'cifar10-T30'?"),
        (["evaluate", "absent.coopkit", "--reference", "moons"], "No coopkit model file at"),
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
    for command in ("fit", "sample", "evaluate", "plugins", "demo"):
        result = coopkit(command, "--help", cwd=tmp_path)
        assert result.returncode == 0
        assert "usage: coopkit" in result.stdout


class FitCalledError(Exception):
    """Raised by the stand-in for ``CoopFlow.fit`` with the estimator it was called on."""


def test_fit_with_a_preset_keeps_what_the_options_leave(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The estimator the command builds, caught at ``fit`` (training the preset's full-size
    parts is ``tests/test_presets.py``'s job)."""
    images = np.random.default_rng(0).integers(0, 256, (4, 3, 32, 32), dtype=np.uint8)
    np.save(tmp_path / "images.npy", images)

    def caught(model: CoopFlow, X: np.ndarray, resume: str | None = None) -> None:
        raise FitCalledError(model, X)

    monkeypatch.setattr(CoopFlow, "fit", caught)
    options = ["--n-iter", "5", "--flow-param", "hidden_channels=8", "--sampler-param", "n_steps=3"]
    with pytest.raises(FitCalledError) as called:
        main(
            ["fit", str(tmp_path / "images.npy"), "--preset", "cifar10-T30", "--out", "o", *options]
        )
    model, X = called.value.args
    params = model.get_params()
    assert (params["flow"], params["n_iter"], params["batch_size"]) == ("flowpp", 5, 4)
    assert (params["flow_lr"], params["energy_betas"]) == (1e-4, (0.5, 0.5))
    assert params["flow_params"] == {**PRESETS["cifar10-T30"]["flow_params"], "hidden_channels": 8}
    assert params["sampler_params"] == {
        "n_steps": 3,
        "step_size": 0.03,
        "noise_scale": 0.0,
        "max_change": 0.1,
    }
    assert isinstance(X, np.memmap)


def test_evaluate_reports_c2st_for_tables(tmp_path: Path) -> None:
    fit = coopkit("fit", "moons", "--out", "run", "--n-iter", "3", "--quiet", cwd=tmp_path)
    assert fit.returncode == 0, fit.stderr
    result = coopkit("evaluate", "run/model.coopkit", "--reference", "moons", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("c2st: ")
    assert 0.5 <= float(result.stdout.split()[1]) <= 1.0
    assert "fid" not in result.stdout


def test_evaluate_reports_fid_and_c2st_for_digits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Inception is replaced by a small feature module (no download); the command's path
    to torchmetrics is the real one."""
    import torchmetrics.image.fid

    model = CoopFlow(n_iter=2, batch_size=32, data_range=(0, 16), random_state=0)
    model.fit(digits_split()[0]).save(tmp_path / "digits.coopkit")
    real_metric = torchmetrics.image.fid.FrechetInceptionDistance

    def small_metric(feature: object, feature_extractor_weights_path: object) -> object:
        return real_metric(feature=MeanColour())

    monkeypatch.setattr(torchmetrics.image.fid, "FrechetInceptionDistance", small_metric)
    assert (
        main(["evaluate", str(tmp_path / "digits.coopkit"), "--reference", "digits", "-n", "300"])
        == 0
    )
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("fid: ")
    assert float(lines[0].split()[1]) >= 0
    assert lines[1].startswith("c2st: ")


class MeanColour(torch.nn.Module):
    """3 features of uint8 images: the mean of each channel."""

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return images.float().flatten(2).mean(dim=2)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with a small saved model, good and damaged data and model files."""
    folder = tmp_path_factory.mktemp("cli-files")
    model = CoopFlow(n_iter=1, batch_size=16, n_partition_samples=16, random_state=0)
    model.fit(np.random.default_rng(0).normal(size=(32, 2))).save(folder / "good.coopkit")
    np.savez(folder / "data.npz", table=np.zeros((8, 2)))
    np.save(folder / "objects.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    for name, content in {
        "bad.coopkit": b"not a model" * 10,
        "bad.npz": b"PK\x03\x04 garbage",
        "bad.npy": b"\x93NUMPY garbage",
        "empty.npy": b"",
    }.items():
        (folder / name).write_bytes(content)
    return folder


BAD_COMMANDS = {
    "fit: missing file": ["fit", "missing.npy", "--out", "o"],
    "fit: corrupt npz": ["fit", "bad.npz", "--out", "o"],
    "fit: corrupt npy": ["fit", "bad.npy", "--out", "o"],
    "fit: empty npy": ["fit", "empty.npy", "--out", "o"],
    "fit: objects in npy": ["fit", "objects.npy", "--out", "o"],
    "fit: not data": ["fit", "good.coopkit", "--out", "o"],
    "fit: wrong key": ["fit", "data.npz", "--key", "images", "--out", "o"],
    "fit: unknown flow": ["fit", "moons", "--out", "o", "--flow", "nope"],
    "fit: unknown energy": ["fit", "moons", "--out", "o", "--energy", "nope"],
    "fit: unknown sampler": ["fit", "moons", "--out", "o", "--sampler", "nope"],
    "fit: unknown preset": ["fit", "moons", "--out", "o", "--preset", "nope"],
    "fit: bad flow param": ["fit", "moons", "--out", "o", "--flow-param", "n_layers=-1"],
    "fit: n-iter not a number": ["fit", "moons", "--out", "o", "--n-iter", "many"],
    "fit: negative n-iter": ["fit", "moons", "--out", "o", "--n-iter", "-1"],
    "fit: zero batch": ["fit", "moons", "--out", "o", "--batch-size", "0"],
    "fit: bad rate": ["fit", "moons", "--out", "o", "--flow-lr", "fast"],
    "fit: negative rate": ["fit", "moons", "--out", "o", "--energy-lr", "-1"],
    "fit: reversed range": ["fit", "moons", "--out", "o", "--data-range", "1", "0"],
    "fit: unknown device": ["fit", "moons", "--out", "o", "--device", "tpu"],
    "fit: unknown option": ["fit", "moons", "--out", "o", "--speed", "fast"],
    "sample: missing model": ["sample", "absent.coopkit", "--out", "s.npy"],
    "sample: corrupt model": ["sample", "bad.coopkit", "--out", "s.npy"],
    "sample: not a model": ["sample", "data.npz", "--out", "s.npy"],
    "sample: zero samples": ["sample", "good.coopkit", "-n", "0", "--out", "s.npy"],
    "sample: n not a number": ["sample", "good.coopkit", "-n", "ten", "--out", "s.npy"],
    "sample: bad seed": ["sample", "good.coopkit", "--seed", "x", "--out", "s.npy"],
    "sample: bad suffix": ["sample", "good.coopkit", "--out", "s.txt"],
    "evaluate: missing model": ["evaluate", "absent.coopkit", "--reference", "moons"],
    "evaluate: corrupt model": ["evaluate", "bad.coopkit", "--reference", "moons"],
    "evaluate: missing data": ["evaluate", "good.coopkit", "--reference", "missing.npy"],
    "evaluate: corrupt data": ["evaluate", "good.coopkit", "--reference", "bad.npz"],
    "evaluate: wrong key": ["evaluate", "good.coopkit", "--reference", "data.npz", "--key", "x"],
    "evaluate: zero samples": ["evaluate", "good.coopkit", "--reference", "moons", "-n", "0"],
    "evaluate: wrong shape": ["evaluate", "good.coopkit", "--reference", "digits"],
    "demo: unknown data": ["demo", "--data", "cifar"],
    "demo: zero iterations": ["demo", "--data", "moons", "--n-iter", "0", "--out", "o"],
    "demo: n-iter not a number": ["demo", "--n-iter", "x"],
    "plugins: extra argument": ["plugins", "all"],
    "no command": [],
    "unknown command": ["train", "moons"],
}


@pytest.mark.parametrize("args", BAD_COMMANDS.values(), ids=BAD_COMMANDS.keys())
def test_every_bad_command_exits_2_with_one_line(
    args: list[str],
    files: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(files)
    try:
        status = main(args)
    except SystemExit as exit_:
        status = exit_.code
    stderr = capsys.readouterr().err
    assert status == 2
    assert len(stderr.strip().splitlines()) == 1, stderr
    assert stderr.startswith("coopkit: error: ")
    assert "Traceback" not in stderr


# Constructor parameters whose flag is not named after them, or that have none.
OTHER_FLAGS = {
    "flow_params": "--flow-param",
    "energy_params": "--energy-param",
    "sampler_params": "--sampler-param",
    "random_state": "--seed",
    "verbose": "--quiet",
    "warm_start": None,  # continues a fitted estimator in memory; a command has none
}


def test_every_estimator_parameter_has_a_fit_flag() -> None:
    fit = build_parser()._subparsers._group_actions[0].choices["fit"]
    flags = {option for action in fit._actions for option in action.option_strings}
    for name in inspect.signature(CoopFlow).parameters:
        flag = OTHER_FLAGS.get(name, "--" + name.replace("_", "-"))
        assert flag is None or flag in flags, name
    assert "--resume" in flags


def test_generated_flags_reach_the_estimator(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def caught(model: CoopFlow, X: np.ndarray, resume: str | None = None) -> None:
        raise FitCalledError(model, resume)

    monkeypatch.setattr(CoopFlow, "fit", caught)
    options = [
        "--warmup-iter", "5", "--proposal", "noise", "--on-divergence", "restore",
        "--precision", "bfloat16", "--compile", "--energy-betas", "0.5", "0.9",
        "--flow-grad-clip", "None", "--checkpoint-dir", "runs", "--resume", "runs/c.pt",
    ]  # fmt: skip
    with pytest.raises(FitCalledError) as called:
        main(["fit", "moons", "--out", "o", *options])
    model, resume = called.value.args
    params = model.get_params()
    assert (params["warmup_iter"], params["proposal"], params["on_divergence"]) == (
        5,
        "noise",
        "restore",
    )
    assert (params["precision"], params["compile"], params["energy_betas"]) == (
        "bfloat16",
        True,
        (0.5, 0.9),
    )
    assert params["flow_grad_clip"] is None
    assert params["checkpoint_dir"] == "runs"
    assert params["batch_size"] == 128
    assert resume == "runs/c.pt"


def test_fit_resumes_from_its_checkpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    common = ["fit", "moons", "--checkpoint-dir", "ck", "--quiet", "--n-partition-samples", "16"]
    assert main([*common, "--n-iter", "2", "--out", "a"]) == 0
    assert main([*common, "--n-iter", "4", "--resume", "ck/checkpoint.pt", "--out", "b"]) == 0
    resumed = CoopFlow.load(tmp_path / "b" / "model.coopkit")
    assert resumed.n_iter_ == 4
    assert len(resumed.history_["flow_nll"]) == 4
