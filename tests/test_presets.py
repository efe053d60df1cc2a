from __future__ import annotations

import numpy as np
import pytest
import torch

from coopkit import CoopFlow, registry
from coopkit.assembly import Settings, build_parts
from coopkit.data import fit_scaler
from coopkit.presets import PRESETS, preset

EBM_PARAMETERS = 17_129_444  # the released EBM_res with n_f=128: the paper's 17.1M
FLOWPP_PARAMETERS = 29_050_164  # the preset's Flow++ (the paper reports 28.8M)


def n_parameters(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def random_images(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, 3, 32, 32), dtype=np.uint8)


CIFAR_PRESETS = sorted(name for name in PRESETS if name.startswith("cifar10"))


@pytest.mark.parametrize("name", CIFAR_PRESETS)
def test_every_preset_builds_the_papers_parts(name: str) -> None:
    model = CoopFlow.from_preset(name)
    settings = Settings.resolve(model.get_params(deep=False), "image")
    flow, energy, sampler = build_parts(settings, fit_scaler(random_images(2)), seed=0)
    assert n_parameters(energy) == EBM_PARAMETERS
    assert n_parameters(flow) == FLOWPP_PARAMETERS
    assert (sampler.step_size, sampler.noise_scale, sampler.max_change) == (0.03, 0.0, 0.1)
    assert sampler.n_steps == (200 if name == "cifar10-long" else 30)
    assert (model.batch_size, model.flow_lr, model.energy_lr) == (28, 1e-4, 1e-4)
    assert model.energy_betas == (0.5, 0.5)
    assert model.pretrain_iter == (50_000 if name == "cifar10-pre" else 0)


@pytest.mark.slow
@pytest.mark.parametrize("name", CIFAR_PRESETS)
def test_every_preset_trains_two_iterations_on_random_images(name: str) -> None:
    """The preset's full-size parts, on 32x32x3 images on the CPU; only the batch, the
    Langevin steps and the pre-training are cut down to keep it short."""
    model = CoopFlow.from_preset(
        name,
        n_iter=2,
        pretrain_iter=1 if name == "cifar10-pre" else 0,
        batch_size=2,
        sampler_params={"n_steps": 2},
        device="cpu",
        n_partition_samples=8,
        random_state=0,
    ).fit(random_images(4))
    assert model.n_iter_ == (3 if name == "cifar10-pre" else 2)
    assert model.sampler_.step_size == 0.03
    assert model.sample(2, random_state=0).shape == (2, 3, 32, 32)


def test_released_preset_is_the_released_training_with_the_small_built_in_parts() -> None:
    """One parameter away from the image defaults: the paper's reviser, rates, betas,
    warm-up and flow target, with glow and conv at their default sizes."""
    model = CoopFlow.from_preset("released", data_range=(0, 16), n_iter=2, batch_size=16)
    params = model.get_params(deep=False)
    assert (params["flow"], params["energy"], params["sampler"]) == ("glow", "conv", "langevin")
    assert params["energy_base"] == "uniform"
    assert params["flow_learns_from"] == "revised"
    assert (params["flow_lr"], params["energy_lr"], params["energy_betas"]) == (
        1e-4,
        1e-4,
        (0.5, 0.5),
    )
    assert (params["warmup_iter"], params["lr_schedule"]) == (100, "constant")
    assert params["flow_params"] is None
    assert params["energy_params"] is None
    images = np.random.default_rng(0).integers(0, 17, size=(32, 8, 8))
    model.fit(images)
    assert model.settings_["flow"] == "glow"
    assert model.sampler_.bounds == (-1.0, 1.0)


def test_parameters_beside_a_preset_override_it() -> None:
    model = CoopFlow.from_preset("cifar10-T30", n_iter=7, sampler_params={"n_steps": 5})
    assert model.n_iter == 7
    assert model.sampler_params == {
        "n_steps": 5,
        "step_size": 0.03,
        "noise_scale": 0.0,
        "max_change": 0.1,
    }
    assert PRESETS["cifar10-T30"]["sampler_params"]["n_steps"] == 30


def test_an_unknown_preset_names_the_closest() -> None:
    with pytest.raises(ValueError, match=r"Did you mean 'cifar10-T30'\?.*cifar10-long"):
        CoopFlow.from_preset("cifar10-t30")


def test_a_preset_whose_plugin_is_missing_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    installed = registry.available

    def without_flowpp(kind: str) -> list:
        return [part for part in installed(kind) if part.name != "flowpp"]

    monkeypatch.setattr(registry, "available", without_flowpp)
    with pytest.raises(registry.UnknownPartError, match="pip install coopkit-flowpp"):
        preset("cifar10-T30")
