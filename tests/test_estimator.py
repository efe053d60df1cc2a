from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from coopkit import CoopFlow
from coopkit.datasets import eight_gaussians
from coopkit.energies.mlp import FourierFeatures
from coopkit.flows import ActNorm, RealNVP
from coopkit.flows.whitening import Whitening
from coopkit.metrics import sliced_wasserstein
from coopkit.samplers import LangevinSampler
from tests.shapes import two_blobs

FAST = {"n_iter": 3, "batch_size": 32, "random_state": 0, "flow_params": {"n_layers": 2}}


@pytest.fixture(scope="module")
def table() -> np.ndarray:
    return eight_gaussians(128, 0)


def test_fit_sample_score_on_a_table(table: np.ndarray) -> None:
    model = CoopFlow(**FAST).fit(table)
    samples = model.sample(7, random_state=0)
    assert samples.shape == (7, 2)
    assert samples.dtype == np.float64
    scores = model.score_samples(table[:5])
    assert scores.shape == (5,)
    assert np.isfinite(scores).all()
    assert model.score(table[:5]) == pytest.approx(scores.mean())
    assert model.n_iter_ == 3
    assert model.n_features_in_ == 2


def test_score_samples_is_in_data_units(table: np.ndarray) -> None:
    """Scaling the data by 10 must lower each log-density by exactly d·log 10."""
    model = CoopFlow(**FAST).fit(table)
    scaled = CoopFlow(**FAST).fit(table * 10)
    assert np.allclose(
        scaled.score_samples(table * 10), model.score_samples(table) - 2 * np.log(10), atol=1e-4
    )


def test_history_records_each_iteration(table: np.ndarray) -> None:
    model = CoopFlow(**{**FAST, "n_iter": 4, "pretrain_iter": 2}).fit(table)
    history = model.history_
    assert history["iteration"] == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    assert history["pretrain"] == [1.0, 1.0, 0.0, 0.0, 0.0, 0.0]
    for key in ["flow_nll", "energy_data", "energy_revised", "revision", "sampler_acceptance_rate"]:
        assert key in history
    assert len(history["energy_data"]) == 4
    assert len(history["flow_nll"]) == 6
    assert model.n_iter_ == 6


def test_same_seed_same_result_and_global_rng_untouched(table: np.ndarray) -> None:
    before = torch.random.get_rng_state()
    a = CoopFlow(**FAST).fit(table)
    b = CoopFlow(**FAST).fit(table)
    after = torch.random.get_rng_state()
    assert torch.equal(before, after)
    for pa, pb in zip(a.flow_.parameters(), b.flow_.parameters(), strict=True):
        assert torch.equal(pa, pb)
    assert np.array_equal(a.sample(5, random_state=3), b.sample(5, random_state=3))
    c = CoopFlow(**{**FAST, "random_state": 1}).fit(table)
    assert not np.array_equal(a.sample(5, random_state=3), c.sample(5, random_state=3))


def test_get_set_params_clone_and_pickle(table: np.ndarray) -> None:
    model = CoopFlow(sampler_params={"n_steps": 5}, **FAST)
    assert model.get_params()["sampler_params"] == {"n_steps": 5}
    model.set_params(n_iter=2)
    cloned = clone(model)
    assert cloned.get_params()["n_iter"] == 2
    fitted = cloned.fit(table)
    restored = pickle.loads(pickle.dumps(fitted))
    assert np.array_equal(restored.sample(4, random_state=0), fitted.sample(4, random_state=0))
    assert fitted.sampler_.n_steps == 5


def test_parts_can_be_classes_or_built_modules(table: np.ndarray) -> None:
    flow = RealNVP((2,), n_layers=2)
    model = CoopFlow(flow=flow, sampler=LangevinSampler(n_steps=2), n_iter=2, batch_size=32).fit(
        table
    )
    assert model.flow_ is not flow
    assert model.sampler_.n_steps == 2
    model = CoopFlow(flow=RealNVP, flow_params={"n_layers": 1}, n_iter=1, batch_size=32).fit(table)
    assert isinstance(model.flow_, RealNVP)


def test_flow_alone_and_noise_started_baselines(table: np.ndarray) -> None:
    flow_only = CoopFlow(**{**FAST, "n_iter": 0, "pretrain_iter": 3}).fit(table)
    assert flow_only.history_["pretrain"] == [1.0, 1.0, 1.0]
    short_run = CoopFlow(**{**FAST, "proposal": "noise"}).fit(table)
    assert "flow_nll" not in short_run.history_
    untouched = CoopFlow(**{**FAST, "proposal": "noise", "n_iter": 1}).fit(table)
    for trained, initial in zip(
        short_run.flow_.parameters(), untouched.flow_.parameters(), strict=True
    ):
        assert torch.equal(trained, initial)
    starts = short_run.sample(500, random_state=0, revise=False)
    low, high = short_run.scaler_.to_data(np.array([short_run.scaler_.model_bounds]).T)
    assert np.all((starts >= low) & (starts <= high))


def test_revise_false_returns_the_flow_proposals(table: np.ndarray) -> None:
    model = CoopFlow(**FAST).fit(table)
    proposals = model.sample(16, random_state=0, revise=False)
    revised = model.sample(16, random_state=0)
    assert proposals.shape == revised.shape
    assert not np.allclose(proposals, revised)


def test_methods_before_fit_raise() -> None:
    with pytest.raises(NotFittedError):
        CoopFlow().sample(2)
    with pytest.raises(NotFittedError):
        CoopFlow().score_samples(np.zeros((2, 2)))


@pytest.mark.parametrize(
    ("X", "error", "message"),
    [
        (np.array([[0.0, np.nan], [1.0, 2.0]]), ValueError, "NaN or infinite"),
        (np.zeros(5), ValueError, "1 dimension"),
        (np.zeros((0, 2)), ValueError, "empty"),
        (np.array([["a", "b"], ["c", "d"]]), TypeError, "must hold numbers"),
    ],
)
def test_bad_input_is_named(X: np.ndarray, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        CoopFlow(n_iter=1, batch_size=1).fit(X)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"n_iter": 0}, "zero iterations"),
        ({"n_iter": -1}, "n_iter must be an integer >= 0"),
        ({"proposal": "data"}, "proposal must be 'flow' or 'noise'"),
        ({"flow_learns_from": "noise"}, "flow_learns_from must be 'revised', 'data', 'both'"),
        ({"energy_base": "gauss"}, "energy_base must be 'uniform', 'flow' or 'auto'"),
        ({"energy_base": "flow", "proposal": "noise"}, "proposal='noise' needs energy_base"),
        ({"lr_schedule": "linear"}, "lr_schedule must be 'constant', 'cosine' or 'auto'"),
        ({"energy_l2": -1.0}, "energy_l2 must be a number >= 0"),
        ({"target_revision": 0.0}, "target_revision must be a positive number or None"),
        ({"target_revision": True}, "target_revision must be a positive number or None"),
        ({"energy_betas": (0.9, 1.5)}, "energy_betas must be two numbers in"),
        ({"flow_lr": -1.0}, "flow_lr must be a positive number or 'auto'"),
        ({"device": "tpu"}, "device must be"),
        ({"sampler_params": {"step_size": -1}}, "step_size must be positive"),
    ],
)
def test_bad_parameters_are_rejected_at_fit(table: np.ndarray, params: dict, message: str) -> None:
    model = CoopFlow(**{**FAST, **params})
    with pytest.raises(ValueError, match=message):
        model.fit(table)


def test_batch_size_larger_than_the_data_is_clipped_with_a_warning() -> None:
    X = eight_gaussians(100, 0)
    with pytest.warns(UserWarning, match="batch_size=128 is larger than the 100 samples"):
        model = CoopFlow(n_iter=2, batch_size=128, random_state=0).fit(X)
    assert model._trainer.config.batch_size == 100
    assert model.batch_size == 128


def test_wrong_feature_count_at_score_time(table: np.ndarray) -> None:
    model = CoopFlow(**FAST).fit(table)
    with pytest.raises(
        ValueError, match="X has 3 features, but CoopFlow is expecting 2 features as input"
    ):
        model.score_samples(np.zeros((4, 3)))


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(3))
def test_training_brings_the_samples_to_the_data(seed: int) -> None:
    """End to end with the table defaults (about 15 s a seed on one CPU core): trained
    samples are far closer to held-out data than those of a model after one iteration,
    and within 3 times the distance of the training data itself (the floor, which on
    2,000 points varies between 0.025 and 0.07 with the seed; trained models came within
    0.9 to 1.9 times it, models after one iteration 14 times). The revision's own effect
    is tested below and in ``tests/test_training.py``."""
    train, held_out = eight_gaussians(4000, seed), eight_gaussians(2000, 100 + seed)
    scores = {}
    for n_iter in (1, 200):
        model = CoopFlow(n_iter=n_iter, batch_size=256, random_state=seed).fit(train)
        samples = model.sample(2000, random_state=seed)
        scores[n_iter] = sliced_wasserstein(samples, held_out, random_state=0)
    floor = sliced_wasserstein(train[:2000], held_out, random_state=0)
    assert scores[200] < 0.5 * scores[1]
    assert scores[200] < 3 * floor


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(5))
def test_the_trained_energy_revises_a_weak_flow_toward_the_data(seed: int) -> None:
    """A flow of one coupling cannot split the first coordinate into two blobs, so its
    samples fill the gap between them (about 35% of them with ``|x_1| < 1``, against
    almost none of the data). The trained energy net must learn the gap and the
    revision must empty it: with the revision off, or an untrained (flat) energy, the
    revised samples equal the proposals in distribution and this fails."""
    model = CoopFlow(
        n_iter=300, batch_size=256, random_state=seed, flow="realnvp", flow_params={"n_layers": 1}
    ).fit(two_blobs(4000, seed))
    revised = model.sample(4000, random_state=seed)
    proposals = model.sample(4000, random_state=seed, revise=False)
    in_gap = {
        name: np.mean(np.abs(x[:, 0]) < 1)
        for name, x in [("revised", revised), ("proposals", proposals)]
    }
    assert in_gap["proposals"] > 0.2
    assert in_gap["revised"] < 0.5 * in_gap["proposals"]


def test_auto_settings_follow_the_kind_of_data(table: np.ndarray) -> None:
    model = CoopFlow(**FAST).fit(table)
    assert model.settings_["flow"] == "nsf"
    assert model.settings_["energy_base"] == "flow"
    assert model.settings_["sampler"] == "pcn"
    assert model._trainer.config.lr_schedule == "cosine"
    paper = CoopFlow(
        **FAST, sampler="langevin", energy_base="uniform", flow_lr=1e-4, lr_schedule="constant"
    ).fit(table)
    assert paper.settings_["energy_base"] == "uniform"
    assert paper._trainer.config.flow_lr == 1e-4
    assert paper.sampler_.bounds is not None
    assert isinstance(model.energy_.net[1], FourierFeatures)
    assert model.energy_.reference_scale is None
    assert not any(isinstance(layer, FourierFeatures) for layer in paper.energy_.net)
    assert paper.energy_.reference_scale == 3.0
    plain = CoopFlow(**FAST, energy_params={"fourier_features": 0}).fit(table)
    assert not any(isinstance(layer, FourierFeatures) for layer in plain.energy_.net)
    noise = CoopFlow(**FAST, proposal="noise").fit(table)
    assert (noise.settings_["sampler"], noise.settings_["energy_base"]) == ("langevin", "uniform")
    assert (model.settings_["energy_lr"], noise.settings_["energy_lr"]) == (3e-3, 1e-2)


def test_a_tables_flow_starts_at_the_datas_gaussian(table: np.ndarray) -> None:
    correlated = table @ np.array([[1.0, 0.9], [0.0, 0.5]])
    untrained = {**FAST, "n_iter": 1, "flow_lr": 1e-9, "energy_lr": 1e-9}
    model = CoopFlow(**untrained).fit(correlated)
    assert isinstance(model.flow_.chain.transforms[0], Whitening)
    assert abs(np.corrcoef(model.transform(correlated).T)[0, 1]) < 0.15
    per_column_flow = {**untrained["flow_params"], "whiten": False}
    per_column = CoopFlow(**{**untrained, "flow_params": per_column_flow}).fit(correlated)
    assert isinstance(per_column.flow_.chain.transforms[0], ActNorm)
    assert abs(np.corrcoef(per_column.transform(correlated).T)[0, 1]) > 0.5


def test_bfloat16_precision_runs_the_energy_in_bfloat16(table: np.ndarray) -> None:
    langevin = {**FAST, "sampler": "langevin", "energy_base": "uniform"}
    model = CoopFlow(precision="bfloat16", **langevin).fit(table)
    seen = []
    handle = model.energy_.net[1].register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    energies = model._runner()(torch.zeros(3, 2))
    handle.remove()
    assert seen == [torch.bfloat16]
    assert energies.dtype == torch.float32
    reference = CoopFlow(**langevin).fit(table)
    assert not np.array_equal(model.sample(4, random_state=0), reference.sample(4, random_state=0))


def test_precision_and_compile_are_validated(table: np.ndarray) -> None:
    with pytest.raises(ValueError, match="precision must be 'float32' or 'bfloat16'"):
        CoopFlow(precision="fp8", **FAST).fit(table)
    with pytest.raises(ValueError, match="compile must be True or False"):
        CoopFlow(compile="yes", **FAST).fit(table)


def test_compiled_energy_gives_the_same_samples(table: np.ndarray) -> None:
    """torch.compile on a CPU (about 20 s to compile): same numbers as eager, to float tolerance."""
    params = {
        **FAST,
        "energy_params": {"n_hidden": 1, "hidden_features": 8},
        "sampler_params": {"n_steps": 2},
    }
    compiled = CoopFlow(compile=True, **params).fit(table)
    eager = CoopFlow(**params).fit(table)
    assert type(compiled._runner().compiled).__name__ == "OptimizedModule"
    assert np.allclose(
        compiled.sample(8, random_state=0), eager.sample(8, random_state=0), atol=1e-5
    )
