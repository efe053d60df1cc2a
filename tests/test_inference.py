from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.exceptions import NotFittedError

from coopkit import CoopFlow
from coopkit.datasets import eight_gaussians
from coopkit.flows import RealNVP
from coopkit.inference import ais_log_partition, log_partition, weighted_estimate
from coopkit.metrics import digits_split
from coopkit.samplers import LangevinSampler, MALASampler
from tests.shapes import two_blobs

DIGITS = {
    "n_iter": 150,
    "batch_size": 64,
    "flow_lr": 1e-3,
    "energy_lr": 1e-3,
    "warmup_iter": 20,
    "flow_params": {"hidden_channels": 16, "n_steps": 2},
    "energy_params": {"n_f": 8},
    "data_range": (0, 16),
    "random_state": 0,
}


@pytest.fixture(scope="module")
def digits_model() -> tuple[CoopFlow, np.ndarray]:
    train, test, _, _ = digits_split()
    # The paper's parts and reviser (the image defaults before the tilt), whose
    # reconstruction these tests were written for.
    return CoopFlow.from_preset("released", **DIGITS).fit(train), test[:6]


@pytest.fixture(scope="module")
def table_model() -> CoopFlow:
    params = {"batch_size": 256, "flow_lr": 1e-3, "energy_lr": 1e-3, "warmup_iter": 50}
    return CoopFlow(n_iter=300, n_partition_samples=20_000, random_state=0, **params).fit(
        eight_gaussians(2000, 0)
    )


def test_log_partition_of_a_gaussian_energy_is_exact_with_a_matching_flow() -> None:
    """With E = ½‖x‖² and a flow that is the standard normal itself, every weight is
    (2π)^{d/2}: the estimate is exact and its standard error zero. On the box [-1, 1]²
    it is (2π) times the squared mass of N(0, 1) in [-1, 1], 0.682689²."""
    from coopkit.flows import RealNVP

    flow = RealNVP((2,), n_layers=1)
    flow.initialize(torch.randn(4096, 2, generator=torch.Generator().manual_seed(0)))
    with torch.no_grad():
        flow.chain.transforms[0].shift.zero_()
        flow.chain.transforms[0].log_scale.zero_()
        flow.chain.transforms[2].shift.zero_()
        flow.chain.transforms[2].log_scale.zero_()

    def energy(x: torch.Tensor) -> torch.Tensor:
        return 0.5 * (x**2).sum(dim=1)

    estimate = log_partition(
        energy, flow, 1000, torch.Generator().manual_seed(0), (-50.0, 50.0), uniform_fraction=0
    )
    assert estimate.log_z == pytest.approx(np.log(2 * np.pi), abs=1e-6)
    assert estimate.standard_error < 1e-6
    box = log_partition(energy, flow, 100_000, torch.Generator().manual_seed(1), (-1.0, 1.0))
    assert box.log_z == pytest.approx(np.log(2 * np.pi * 0.682689**2), abs=0.02)


def grid_log_partition(model: CoopFlow) -> float:
    """log Z of the model's unnormalised density over its box, by the midpoint rule on a
    500 x 500 grid."""
    low, high = model.scaler_.model_bounds
    edges = torch.linspace(low, high, 501)
    grid = (edges[1:] + edges[:-1]) / 2
    step = (edges[1] - edges[0]).item()
    xx, yy = torch.meshgrid(grid, grid, indexing="ij")
    points = torch.stack([xx.flatten(), yy.flatten()], dim=1)
    with torch.no_grad():
        energies = torch.cat([model._model_energy()(p) for p in points.split(50_000)]).double()
    return (torch.logsumexp(-energies, dim=0) + 2 * np.log(step)).item()


def test_log_partition_matches_numerical_integration_in_2d(table_model: CoopFlow) -> None:
    """log Z from importance sampling against the grid integral of the model's
    unnormalised density (with the table defaults, the flow tilted by the energy net,
    ``q(x) exp(-E(x))``), and ``score_samples`` built from it."""
    assert table_model.settings_["energy_base"] == "flow"
    numerical = grid_log_partition(table_model)
    assert abs(table_model.log_partition_ - numerical) < max(
        4 * table_model.log_partition_se_, 0.02
    )
    energy = table_model._exact_energy()
    X = eight_gaussians(5, 3)
    V = (X - table_model.scaler_.mean) / table_model.scaler_.scale
    with torch.no_grad():
        expected = -energy(torch.as_tensor(V, dtype=torch.float64)).numpy()
    expected += -table_model.log_partition_ + table_model.scaler_.log_abs_det()
    assert np.allclose(table_model.score_samples(X), expected)
    assert table_model.score_samples(np.array([[100.0, 0.0]]))[0] == -np.inf


def test_flow_score_samples_stays_the_flow_density(table_model: CoopFlow) -> None:
    X = eight_gaussians(5, 3)
    assert not np.allclose(table_model.flow_score_samples(X), table_model.score_samples(X))


def test_transform_round_trip_on_tables_and_images(
    table_model: CoopFlow, digits_model: tuple
) -> None:
    X = eight_gaussians(7, 4)
    Z = table_model.transform(X)
    assert Z.shape == (7, 2)
    assert np.allclose(table_model.inverse_transform(Z), X, atol=1e-5)
    model, test = digits_model
    Z = model.transform(test)
    assert Z.shape == test.shape
    assert np.allclose(model.inverse_transform(Z), test, atol=1e-3)


@pytest.mark.parametrize("method", ["fixed_point", "gradient"])
def test_reconstruction_error_falls_by_half_on_held_out_digits(
    digits_model: tuple, method: str
) -> None:
    model, test = digits_model
    recon, error = model.reconstruct(test, n_iter=60, lr=0.02, method=method, return_error=True)
    assert recon.shape == test.shape
    _, start = model.reconstruct(test, n_iter=0, method=method, return_error=True)
    assert np.all(error <= 0.5 * start)


@pytest.mark.parametrize("method", ["sample", "optimize"])
def test_inpainting_keeps_observed_pixels_and_varies_the_rest(
    digits_model: tuple, method: str
) -> None:
    model, test = digits_model
    mask = np.ones((8, 8))
    mask[2:6, 2:6] = 0
    completions = model.inpaint(
        test[:3], mask, n_completions=3, n_iter=20, method=method, random_state=0
    )
    assert completions.shape == (3, 3, 8, 8)
    observed = np.broadcast_to(mask.astype(bool), completions.shape)
    assert np.array_equal(
        completions[observed], np.broadcast_to(test[:3, None], completions.shape)[observed]
    )
    hole = completions[:, :, 2:6, 2:6]
    assert np.abs(hole[:, 0] - hole[:, 1]).max() > 0.5
    assert hole.min() >= 0
    assert hole.max() <= 16


def test_interpolation_ends_are_the_reconstructions(digits_model: tuple) -> None:
    model, test = digits_model
    path = model.interpolate(test[0], test[1], n_points=5, n_iter=20, random_state=0)
    assert path.shape == (5, 8, 8)
    ends = model.reconstruct(test[:2], n_iter=20, random_state=0)
    assert np.allclose(path[[0, -1]], ends, atol=1e-3)
    assert not np.allclose(path[2], path[0], atol=0.5)


@pytest.mark.parametrize(
    "call",
    [
        lambda m: m.transform(np.zeros((2, 2))),
        lambda m: m.inverse_transform(np.zeros((2, 2))),
        lambda m: m.reconstruct(np.zeros((2, 2))),
        lambda m: m.inpaint(np.zeros((2, 2)), np.ones(2)),
        lambda m: m.interpolate(np.zeros(2), np.ones(2)),
        lambda m: m.score_samples(np.zeros((2, 2))),
        lambda m: m.flow_score_samples(np.zeros((2, 2))),
    ],
)
def test_every_method_needs_fit(call) -> None:
    with pytest.raises(NotFittedError):
        call(CoopFlow())


@pytest.mark.parametrize(
    "call",
    [
        lambda m: m.transform(np.zeros((2, 3))),
        lambda m: m.inverse_transform(np.zeros((2, 3))),
        lambda m: m.reconstruct(np.zeros((2, 3)), n_iter=1),
        lambda m: m.inpaint(np.zeros((2, 3)), np.ones(3), n_iter=1),
        lambda m: m.interpolate(np.zeros(3), np.ones(3), n_iter=1),
    ],
)
def test_wrong_shapes_are_named(table_model: CoopFlow, call) -> None:
    with pytest.raises(
        ValueError, match="has 3 features, but CoopFlow is expecting 2 features as input"
    ):
        call(table_model)


# ---------------------------------------------------- annealed importance sampling

D, MU, SIGMA = 64, 0.5, 0.7
TRUE_LOG_Z = 0.5 * D * math.log(2 * math.pi * SIGMA**2)


def gaussian_energy(x: torch.Tensor) -> torch.Tensor:
    """``‖x - μ‖² / (2σ²)``, whose integral over 64 dimensions is ``(2πσ²)^{32}``."""
    return 0.5 * (((x - MU) / SIGMA) ** 2).sum(dim=1)


def standard_normal_flow(d: int, dtype: torch.dtype = torch.float32) -> RealNVP:
    """A flow that is exactly a Gaussian near N(0, I): its couplings start as the identity,
    so after the data-dependent initialisation it is ActNorm alone."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        flow = RealNVP((d,), n_layers=2, hidden_features=16).to(dtype)
    flow.initialize(torch.randn(4000, d, generator=torch.Generator().manual_seed(0), dtype=dtype))
    return flow


@pytest.fixture(scope="module")
def mismatched_flow() -> RealNVP:
    """The proposal, shifted by 0.5 and 1/0.7 times too wide in each of 64 dimensions."""
    return standard_normal_flow(D)


def test_ais_finds_the_gaussian_log_z_where_importance_sampling_misses(
    mismatched_flow: RealNVP,
) -> None:
    estimate = ais_log_partition(
        gaussian_energy,
        mismatched_flow,
        MALASampler(0.3, n_steps=1),
        256,
        torch.linspace(0, 1, 1001),
        torch.Generator().manual_seed(0),
    )
    assert abs(estimate.log_z - TRUE_LOG_Z) < 3 * estimate.standard_error
    assert estimate.standard_error < 0.1
    assert 1 <= estimate.ess <= 256
    plain = log_partition(
        gaussian_energy, mismatched_flow, 4096, torch.Generator().manual_seed(0), (-20.0, 20.0), 0.0
    )
    assert abs(plain.log_z - TRUE_LOG_Z) > 3.0
    assert abs(plain.log_z - TRUE_LOG_Z) > 5 * plain.standard_error


def test_ais_matches_numerical_integration_in_2d(table_model: CoopFlow) -> None:
    """AIS on the trained table model's box against the grid integral."""
    box = table_model.scaler_.model_bounds
    estimate = ais_log_partition(
        table_model._model_energy(),
        table_model.flow_,
        MALASampler(0.3, n_steps=1),
        256,
        torch.linspace(0, 1, 101),
        torch.Generator().manual_seed(0),
        bounds=box,
        target_accept=0.6,
    )
    assert abs(estimate.log_z - grid_log_partition(table_model)) < 3 * estimate.standard_error
    assert estimate.standard_error < 0.05
    assert 0.3 < estimate.acceptance_rate < 0.8


def test_ais_on_a_box_counts_only_the_box() -> None:
    """``E = 0`` restricted to [-1, 1]² integrates to 4. The flow (near N(0, I)) puts
    about half its draws outside the box: AIS must start from the flow restricted to the
    box and count the flow's mass there, and no chain may leave the box, though the
    sampler itself knows no bounds."""
    flow = standard_normal_flow(2)
    estimate = ais_log_partition(
        lambda x: torch.zeros(len(x)),
        flow,
        MALASampler(0.5, n_steps=1),
        1000,
        torch.linspace(0, 1, 51),
        torch.Generator().manual_seed(0),
        bounds=(-1.0, 1.0),
    )
    assert abs(estimate.log_z - math.log(4.0)) < 3 * estimate.standard_error
    assert estimate.standard_error < 0.05


def test_ais_starts_from_the_uniform_box_when_the_flow_misses_it() -> None:
    """The flow (near N(0, I)) puts no draw in [5, 6]²: AIS warns and starts from the
    uniform distribution there, which for ``E = 0`` is the target (log Z = 0, exactly)."""
    with pytest.warns(UserWarning, match="starts from the uniform distribution"):
        estimate = ais_log_partition(
            lambda x: torch.zeros(len(x)),
            standard_normal_flow(2),
            MALASampler(0.5, n_steps=1),
            10,
            torch.linspace(0, 1, 3),
            torch.Generator().manual_seed(0),
            bounds=(5.0, 6.0),
        )
    assert estimate.start == "uniform"
    assert estimate.log_z == pytest.approx(0.0, abs=1e-6)
    assert estimate.ess == pytest.approx(10.0)


def test_step_size_adapts_between_temperatures_without_changing_the_callers_sampler(
    mismatched_flow: RealNVP,
) -> None:
    """Started 20 times too large on the 64-D Gaussian, MALA accepts almost nothing; with
    ``target_accept`` the step size recovers within the run and the estimate holds."""
    sampler = MALASampler(6.0, n_steps=1)
    runs = {
        target: ais_log_partition(
            gaussian_energy,
            mismatched_flow,
            sampler,
            256,
            torch.linspace(0, 1, 301),
            torch.Generator().manual_seed(0),
            target_accept=target,
        )
        for target in (None, 0.6)
    }
    assert runs[None].acceptance_rate < 0.05
    assert runs[0.6].acceptance_rate > 0.4
    assert abs(runs[0.6].log_z - TRUE_LOG_Z) < 3 * runs[0.6].standard_error
    assert runs[0.6].standard_error < runs[None].standard_error
    assert sampler.step_size == 6.0


def test_adapting_needs_a_sampler_that_reports_acceptance() -> None:
    with pytest.raises(ValueError, match="acceptance_rate"):
        ais_log_partition(
            gaussian_energy,
            standard_normal_flow(2),
            LangevinSampler(0.1, n_steps=1),
            4,
            torch.linspace(0, 1, 3),
            torch.Generator().manual_seed(0),
            target_accept=0.6,
        )


def test_an_additive_constant_in_the_energy_shifts_log_z_by_exactly_minus_it() -> None:
    flow = standard_normal_flow(2, torch.float64)
    energy = lambda x: 0.5 * ((x - 1) ** 2).sum(dim=1)  # noqa: E731
    shifted = lambda x: energy(x) + 3.0  # noqa: E731
    runs = [
        ais_log_partition(
            e,
            flow,
            MALASampler(0.5, n_steps=1),
            200,
            torch.linspace(0, 1, 21),
            torch.Generator().manual_seed(0),
        )
        for e in (energy, shifted)
    ]
    assert runs[1].log_z == pytest.approx(runs[0].log_z - 3.0, abs=1e-9)
    assert runs[1].standard_error == pytest.approx(runs[0].standard_error, abs=1e-9)


def test_equal_weights_have_full_ess_and_one_dominant_weight_has_ess_one() -> None:
    assert weighted_estimate(torch.zeros(10), "ais").ess == pytest.approx(10.0)
    dominant = weighted_estimate(torch.tensor([0.0, -50.0, -50.0, -50.0]), "ais")
    assert dominant.ess == pytest.approx(1.0, abs=1e-6)
    assert dominant.log_z == pytest.approx(-math.log(4), abs=1e-6)


@pytest.mark.parametrize(
    ("betas", "message"),
    [
        (torch.tensor([0.0, 0.5]), "from 0 to 1"),
        (torch.tensor([0.1, 1.0]), "from 0 to 1"),
        (torch.tensor([0.0, 0.6, 0.4, 1.0]), "increase strictly"),
        (torch.tensor([1.0]), "from 0 to 1"),
    ],
)
def test_bad_temperatures_are_refused(betas: torch.Tensor, message: str) -> None:
    flow = standard_normal_flow(2)
    with pytest.raises(ValueError, match=message):
        ais_log_partition(
            gaussian_energy, flow, MALASampler(), 4, betas, torch.Generator().manual_seed(0)
        )


# ------------------------------------------------------------ the estimator's log Z


def test_fit_with_ais_records_how_log_z_was_estimated() -> None:
    X = two_blobs(200, 0)
    params = {"n_iter": 3, "batch_size": 64, "random_state": 0}
    model = CoopFlow(
        log_partition="ais", n_partition_samples=32, partition_temperatures=20, **params
    ).fit(X)
    expected = ais_log_partition(
        model._model_energy(),
        model.flow_,
        MALASampler(n_steps=1),
        32,
        torch.linspace(0, 1, 21, dtype=torch.float64),
        model._generator(0),
        model.scaler_.model_bounds,
        target_accept=MALASampler().target_accept,
    )
    info = model.log_partition_info_
    assert (model.log_partition_, model.log_partition_se_) == (
        expected.log_z,
        expected.standard_error,
    )
    assert (info["method"], info["n_samples"], info["n_temperatures"]) == ("ais", 32, 20)
    assert info["ess"] == expected.ess
    assert info["seconds"] > 0
    model.set_params(warm_start=True, log_partition="importance").fit(X)
    assert model.n_iter_ == 3
    assert model.log_partition_info_["method"] == "importance"
    assert model.log_partition_info_["n_samples"] == 32


def test_bits_per_dim_of_digits_are_the_mean_log_densities_in_bits(digits_model: tuple) -> None:
    model, test = digits_model
    bits = model.bits_per_dim(test)
    per_dim = 64 * math.log(2)
    assert bits["flow"] == pytest.approx(-model.flow_score_samples(test).mean() / per_dim)
    assert bits["energy"] == pytest.approx(-model.score(test) / per_dim)
    assert bits["energy_se"] == pytest.approx(model.log_partition_se_ / per_dim)


def test_bits_per_dim_needs_integer_images(table_model: CoopFlow) -> None:
    with pytest.raises(ValueError, match="integer-valued images"):
        table_model.bits_per_dim(eight_gaussians(5, 0))


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"log_partition": "exact"}, "log_partition must be"),
        ({"n_partition_samples": 1}, "n_partition_samples must be"),
        ({"n_partition_samples": "many"}, "n_partition_samples must be"),
        ({"partition_temperatures": 0}, "partition_temperatures must be"),
    ],
)
def test_bad_partition_settings_are_refused(params: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        CoopFlow(n_iter=1, **params).fit(two_blobs(20, 0))
