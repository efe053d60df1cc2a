from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import Tensor

from coopkit import CoopFlow
from coopkit.datasets import eight_gaussians
from coopkit.flows import RealNVP
from coopkit.tilt import TILT_CHAINS, TILTS, choose_tilt, trusted
from coopkit.validation import InvalidParameterError

BOX = (-10.0, 10.0)
SHIFT = torch.tensor([0.4, -0.3])
CHAINS = 1024


@pytest.fixture(scope="module")
def flow() -> RealNVP:
    """A flow left at its data-dependent initialisation on standard normal draws."""
    torch.manual_seed(0)
    flow = RealNVP((2,))
    flow.initialize(torch.randn(4000, 2, generator=torch.Generator().manual_seed(0)))
    return flow


def log_target(x: Tensor) -> Tensor:
    """log N(x; SHIFT, I)."""
    return -0.5 * (x - SHIFT).square().sum(dim=1) - math.log(2 * math.pi)


def exact_tilt(flow: RealNVP, scale: float = 1.0):
    """``scale · (log q - log p)``: at β = 1/scale the tilted flow is exactly p, Z = 1."""
    return lambda x: scale * (flow.log_prob(x) - log_target(x))


def rows(n: int = 2000, seed: int = 1) -> Tensor:
    return torch.randn(n, 2, generator=torch.Generator().manual_seed(seed)) + SHIFT


def choose(flow: RealNVP, energy, held_out: Tensor):
    return choose_tilt(energy, flow, held_out, BOX, CHAINS, torch.Generator().manual_seed(2))


def test_an_exact_tilt_is_kept_whole_and_its_likelihood_is_the_targets(flow: RealNVP) -> None:
    held_out = rows()
    with torch.no_grad():
        choice = choose(flow, exact_tilt(flow), held_out)
        truth = log_target(held_out).mean().item()
        flow_alone = flow.log_prob(held_out).mean().item()
    assert choice.tilt == 1.0
    assert choice.held_out[-1] == pytest.approx(truth, abs=0.02)
    assert choice.held_out[0] == pytest.approx(flow_alone, abs=1e-6)
    assert choice.held_out[-1] > choice.held_out[0] + 0.05


def test_an_overconfident_tilt_is_shrunk_to_the_scale_the_rows_support(flow: RealNVP) -> None:
    with torch.no_grad():
        choice = choose(flow, exact_tilt(flow, scale=1000.0), rows())
    assert choice.tilt == pytest.approx(1e-3)
    assert trusted(choice.ess, CHAINS)


def test_tilts_whose_log_z_is_carried_by_a_few_draws_are_never_chosen(flow: RealNVP) -> None:
    # Narrow wells at the rows: the stronger the tilt, the higher their estimated
    # likelihood, but past some β a handful of draws that fell into a well carry Z.
    held_out = rows(50)

    def wells(x: Tensor) -> Tensor:
        return -200.0 * torch.exp(-torch.cdist(x, held_out).square() / 0.005).amax(dim=1)

    with torch.no_grad():
        choice = choose(flow, wells, held_out)
    ok = [trusted(ess, CHAINS) for ess in choice.ess_by_tilt]
    best_trusted = max(h for h, t in zip(choice.held_out, ok, strict=True) if t)
    assert choice.held_out[TILTS.index(choice.tilt)] == best_trusted
    assert not ok[-1]
    assert choice.held_out[-1] > best_trusted + 1.0


def test_fewer_temperatures_only_lower_the_ess_of_the_tilts(flow: RealNVP) -> None:
    energy = exact_tilt(flow, scale=1000.0)
    with torch.no_grad():
        one, sixteen = (
            choose_tilt(
                energy, flow, rows(), BOX, CHAINS, torch.Generator().manual_seed(2), substeps=k
            )
            for k in (1, 16)
        )
    assert one.ess_by_tilt[0] == sixteen.ess_by_tilt[0] == CHAINS
    assert sum(one.ess_by_tilt) < 0.9 * sum(sixteen.ess_by_tilt)
    assert one.tilt <= sixteen.tilt


def test_the_grid_must_hold_the_flow_alone(flow: RealNVP) -> None:
    with pytest.raises(ValueError, match="must increase from 0"):
        choose_tilt(exact_tilt(flow), flow, rows(10), BOX, 64, torch.Generator(), tilts=(0.5, 1.0))


FAST = {"n_iter": 3, "batch_size": 32, "random_state": 0, "flow_params": {"n_layers": 2}}


@pytest.fixture(scope="module")
def table() -> np.ndarray:
    return eight_gaussians(200, 0)


def test_fit_chooses_the_tilt_on_a_tenth_of_the_rows(table: np.ndarray) -> None:
    model = CoopFlow(**FAST, tilt="auto").fit(table)
    info = model.tilt_info_
    assert model.tilt_ in TILTS
    assert model.settings_["tilt"] == model.tilt_
    assert info["n_validation"] == 20
    assert info["n_samples"] == TILT_CHAINS
    assert info["tilt"] == model.tilt_
    assert len(info["held_out"]) == len(TILTS) == len(info["ess_by_tilt"])
    best = max(
        (
            h
            for h, ess in zip(info["held_out"], info["ess_by_tilt"], strict=True)
            if trusted(ess, info["n_samples"])
        ),
    )
    assert info["held_out"][TILTS.index(model.tilt_)] == best


def test_a_zero_tilt_scores_as_the_flow_does(table: np.ndarray) -> None:
    model = CoopFlow(**FAST, tilt=0.0).fit(table)
    assert model.tilt_ == 0.0
    assert model.tilt_info_ is None
    difference = model.score_samples(table[:20]) - model.flow_score_samples(table[:20])
    np.testing.assert_allclose(difference, -model.log_partition_, atol=1e-4)


@pytest.mark.parametrize(
    "params",
    [
        {"tilt": "auto", "validation_fraction": 0.0},
        {"tilt": "auto", "energy_base": "uniform"},
        {},
    ],
)
def test_without_a_choice_the_model_is_the_trained_one_on_every_row(
    table: np.ndarray, params: dict[str, object]
) -> None:
    model = CoopFlow(**FAST, **params).fit(table)
    assert model.tilt_ == 1.0
    assert model.tilt_info_ is None
    reference = CoopFlow(**{**FAST, **params, "tilt": 1.0, "validation_fraction": 0.0}).fit(table)
    np.testing.assert_array_equal(model.sample(5, random_state=0), reference.sample(5, 0))


def test_a_saved_model_keeps_its_tilt(table: np.ndarray, tmp_path) -> None:
    model = CoopFlow(**FAST, tilt=0.25).fit(table)
    loaded = CoopFlow.load(model.save(tmp_path / "model.coopkit"))
    assert loaded.tilt_ == 0.25
    assert loaded.settings_["tilt"] == 0.25
    np.testing.assert_allclose(loaded.score_samples(table[:5]), model.score_samples(table[:5]))


@pytest.mark.parametrize(
    ("params", "message"),
    [({"tilt": -0.5}, "tilt must be"), ({"validation_fraction": 1.0}, "validation_fraction")],
)
def test_bad_tilt_settings_are_refused(
    table: np.ndarray, params: dict[str, object], message: str
) -> None:
    with pytest.raises(InvalidParameterError, match=message):
        CoopFlow(**FAST, **params).fit(table)
