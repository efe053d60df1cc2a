"""Faults during fit: divergence, interruption, checkpoints, warm starts; reproducibility."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from coopkit import CoopFlow, TrainingDivergedError
from coopkit.datasets import eight_gaussians
from coopkit.energies import MLPEnergy
from coopkit.persistence import CHECKPOINT_NAME
from coopkit.samplers import LangevinSampler
from coopkit.samplers.base import Sampler
from coopkit.training import CoopTrainer

X = eight_gaussians(128, 0)
# The paper's loop on a table (Langevin in data space, constant rates after the warm-up),
# whose energy calls per iteration the fault injection counts.
FAST = {
    "n_iter": 8,
    "batch_size": 32,
    "random_state": 0,
    "flow_params": {"n_layers": 2},
    "sampler": "langevin",
    "sampler_params": {"n_steps": 2},
    "energy_base": "uniform",
    "lr_schedule": "constant",
    "n_partition_samples": 256,  # one chunk: the estimate of log Z is one energy call
}
CALLS_PER_ITERATION = 3  # two Langevin steps, then one pass over data and samples together
# The table defaults (pcn in the flow's latent space, cosine decay): the energy at the
# start, at each of two proposals, then the pass over data and samples.
TABLE_DEFAULTS = {
    **{k: v for k, v in FAST.items() if k not in ("sampler", "energy_base", "lr_schedule")},
    "sampler_params": {"n_steps": 2},
}
TABLE_CALLS_PER_ITERATION = 4


class FaultyEnergy(MLPEnergy):
    """An MLP energy that, on its ``fault_at``-th call, returns NaN or raises
    KeyboardInterrupt (``fault``); ``armed = False`` turns the fault off."""

    armed = True

    def __init__(self, event_shape: tuple[int, ...], fault_at: int, fault: str = "nan") -> None:
        super().__init__(event_shape, hidden_features=16, n_hidden=1)
        self.fault_at, self.fault, self.calls = fault_at, fault, 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        energy = super().forward(x)
        if FaultyEnergy.armed and self.calls == self.fault_at:
            if self.fault == "interrupt":
                raise KeyboardInterrupt
            return energy * float("nan")
        return energy


def faulty(fault_at: int, fault: str = "nan"):
    def factory(event_shape: tuple[int, ...]) -> FaultyEnergy:
        return FaultyEnergy(event_shape, fault_at, fault)

    return factory


def plain(event_shape: tuple[int, ...]) -> MLPEnergy:
    return FaultyEnergy(event_shape, fault_at=-1)


def weights(model: CoopFlow) -> list[torch.Tensor]:
    return [p.detach().clone() for p in [*model.flow_.parameters(), *model.energy_.parameters()]]


def assert_same_weights(a: CoopFlow, b: CoopFlow) -> None:
    for pa, pb in zip(weights(a), weights(b), strict=True):
        assert torch.equal(pa, pb)


def test_divergence_stops_fit_naming_the_iteration_and_keeps_good_weights() -> None:
    model = CoopFlow(energy=faulty(5 * CALLS_PER_ITERATION + 1), **FAST)
    with pytest.raises(
        TrainingDivergedError, match=r"iteration 5: energy is not finite.*step_size.*learning rates"
    ):
        model.fit(X)
    assert model.stop_reason_ == "diverged at iteration 5"
    assert model.n_iter_ == 5
    assert model.history_["iteration"][-1] == 4.0
    reference = CoopFlow(energy=plain, **{**FAST, "n_iter": 5}).fit(X)
    assert_same_weights(model, reference)
    assert np.isfinite(model.sample(4, random_state=0)).all()


def test_restore_halves_the_step_size_and_continues() -> None:
    model = CoopFlow(
        energy=faulty(5 * CALLS_PER_ITERATION + 1), on_divergence="restore", **FAST
    ).fit(X)
    history = model.history_
    assert model.stop_reason_ == "completed"
    assert len(history["iteration"]) == 8
    assert history["restored"] == [0.0] * 5 + [1.0] + [0.0] * 2
    assert history["sampler_step_size"] == [0.3] * 5 + [0.15] * 3
    assert model.sampler_.step_size == 0.15


def test_interrupted_fit_leaves_a_usable_model() -> None:
    model = CoopFlow(energy=faulty(3 * CALLS_PER_ITERATION + 2, "interrupt"), **FAST)
    with pytest.raises(KeyboardInterrupt):
        model.fit(X)
    assert model.stop_reason_ == "interrupted at iteration 3"
    assert model.n_iter_ == 3
    assert model.history_["iteration"] == [0.0, 1.0, 2.0]
    assert model.sample(3, random_state=0).shape == (3, 2)
    assert np.isfinite(model.score_samples(X[:3])).all()


def test_warm_start_with_a_cosine_decay_replans_it_over_the_new_total() -> None:
    part = CoopFlow(energy=plain, **{**TABLE_DEFAULTS, "n_iter": 3}).fit(X)
    assert part._trainer.energy_scheduler.get_last_lr()[0] == pytest.approx(
        1e-3 * 3 / 50 * 0.5 * (1 + np.cos(np.pi * 3 / 3))
    )
    part.set_params(n_iter=8, warm_start=True).fit(X)
    factor = part._trainer.energy_scheduler.lr_lambdas[0]
    assert factor.decay == 8
    assert part._trainer.energy_scheduler.get_last_lr()[0] == pytest.approx(1e-3 * factor(8))
    assert part.n_iter_ == 8


def test_warm_start_continues_to_the_uninterrupted_result() -> None:
    whole = CoopFlow(energy=plain, **FAST).fit(X)
    part = CoopFlow(energy=plain, **{**FAST, "n_iter": 3}).fit(X)
    part.set_params(n_iter=8, warm_start=True).fit(X)
    assert_same_weights(whole, part)
    assert part.history_ == whole.history_
    assert np.array_equal(part.sample(4, random_state=1), whole.sample(4, random_state=1))


@pytest.mark.parametrize(
    ("settings", "calls"),
    [(FAST, CALLS_PER_ITERATION), (TABLE_DEFAULTS, TABLE_CALLS_PER_ITERATION)],
    ids=["paper", "table-defaults"],
)
def test_resume_from_a_checkpoint_reproduces_the_uninterrupted_run(
    tmp_path: Path, settings: dict, calls: int
) -> None:
    whole = CoopFlow(energy=plain, **settings).fit(X)
    checkpointed = {**settings, "checkpoint_dir": str(tmp_path), "checkpoint_every": 3}
    crashed = CoopFlow(energy=faulty(7 * calls + 1, "interrupt"), **checkpointed)
    with pytest.raises(KeyboardInterrupt):
        crashed.fit(X)
    assert crashed.n_iter_ == 7
    assert [p.name for p in tmp_path.iterdir()] == [CHECKPOINT_NAME]
    FaultyEnergy.armed = False
    try:
        resumed = CoopFlow(energy=faulty(7 * calls + 1, "interrupt"), **checkpointed)
        resumed.fit(X, resume=tmp_path / CHECKPOINT_NAME)
    finally:
        FaultyEnergy.armed = True
    # Iterations 7 and 8 only: no log Z is estimated until a score needs one.
    assert resumed.energy_.calls == 2 * calls, "resumed from iteration 6"
    assert_same_weights(whole, resumed)
    assert resumed.history_ == whole.history_


def test_resume_refuses_other_data(tmp_path: Path) -> None:
    CoopFlow(**{**FAST, "checkpoint_dir": str(tmp_path)}).fit(X)
    with pytest.raises(ValueError, match="while training on other data"):
        CoopFlow(**FAST).fit(X + 1, resume=tmp_path / CHECKPOINT_NAME)


def test_same_seed_is_bit_identical_and_the_global_rng_is_never_touched(tmp_path: Path) -> None:
    state = torch.random.get_rng_state()
    a = CoopFlow(**FAST).fit(X)
    b = CoopFlow(**FAST).fit(X)
    assert_same_weights(a, b)
    for model in (a, b):
        model.sample(3, random_state=0)
        model.score_samples(X[:3])
        model.transform(X[:3])
        model.reconstruct(X[:2], n_iter=2, random_state=0)
        model.inpaint(X[:2], np.array([1, 0]), n_completions=2, n_iter=2, random_state=0)
        model.interpolate(X[0], X[1], n_points=3, n_iter=2, random_state=0)
    a.save(tmp_path / "a.coopkit")
    CoopFlow.load(tmp_path / "a.coopkit")
    assert torch.equal(torch.random.get_rng_state(), state)
    assert np.array_equal(a.sample(6, random_state=4), b.sample(6, random_state=4))
    c = CoopFlow(**{**FAST, "random_state": 1}).fit(X)
    assert not torch.equal(weights(a)[0], weights(c)[0])


@pytest.mark.parametrize(
    ("method", "message"),
    [
        (lambda m: m.score_samples(np.array([[np.inf, 0.0]])), "NaN or infinite"),
        (lambda m: m.transform(np.array([[np.nan, 0.0]])), "NaN or infinite"),
        (lambda m: m.score_samples(np.zeros((2, 2, 2))), r"samples of shape \(2, 2\)"),
    ],
)
def test_bad_input_after_fit_is_named(method, message: str) -> None:
    model = CoopFlow(**{**FAST, "n_iter": 1}).fit(X)
    with pytest.raises(ValueError, match=message):
        method(model)


def test_a_single_sample_is_refused() -> None:
    with pytest.raises(ValueError, match="X has 1 sample; CoopFlow needs at least 2"):
        CoopFlow(**{**FAST, "batch_size": 1}).fit(X[:1])


def test_sparse_input_is_refused() -> None:
    from scipy import sparse

    with pytest.raises(TypeError, match="Sparse input is not supported"):
        CoopFlow(**FAST).fit(sparse.csr_matrix(X))


def test_a_diverged_flow_step_leaves_the_energy_unchanged_too() -> None:
    """The flow's loss diverges (a huge flow rate): the energy must not have taken that
    iteration's step either, so both models equal a clean fit of the completed iterations."""
    model = CoopFlow(energy=plain, **{**FAST, "flow_lr": 1e4})
    with pytest.raises(TrainingDivergedError, match="flow_nll"):
        model.fit(X)
    done = model.n_iter_
    assert done >= 1
    reference = CoopFlow(energy=plain, **{**FAST, "flow_lr": 1e4, "n_iter": done}).fit(X)
    assert_same_weights(model, reference)


class NaNSampler(Sampler):
    """Langevin that returns NaN chains on its ``fault_at``-th call."""

    def __init__(self, fault_at: int) -> None:
        self.inner = LangevinSampler(step_size=0.3, n_steps=2, bounds=(-5.0, 5.0))
        self.step_size, self.fault_at, self.calls = 0.3, fault_at, 0

    def __call__(self, energy, x0, *, generator=None, differentiable=False):
        self.calls += 1
        self.inner.step_size = self.step_size
        result = self.inner(energy, x0, generator=generator, differentiable=differentiable)
        if self.calls == self.fault_at:
            result.x = result.x * float("nan")
        return result


def test_a_diverged_sampler_changes_neither_model() -> None:
    settings = {**FAST, "energy": plain, "sampler_params": None}
    model = CoopFlow(**{**settings, "sampler": NaNSampler(4)})
    with pytest.raises(TrainingDivergedError, match="iteration 3"):
        model.fit(X)
    reference = CoopFlow(**{**settings, "sampler": NaNSampler(0), "n_iter": 3}).fit(X)
    assert_same_weights(model, reference)


def test_restore_repeats_the_same_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    batches: list[torch.Tensor] = []
    next_batch = CoopTrainer._next_batch

    def recording(self: CoopTrainer, data: torch.Tensor) -> torch.Tensor:
        batches.append(next_batch(self, data))
        return batches[-1]

    monkeypatch.setattr(CoopTrainer, "_next_batch", recording)
    model = CoopFlow(
        energy=faulty(5 * CALLS_PER_ITERATION + 1), on_divergence="restore", **FAST
    ).fit(X)
    assert model.history_["restored"][5] == 1.0
    assert len(batches) == model.n_iter_ == 8
