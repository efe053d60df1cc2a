"""What ``CoopFlow.fit`` does around the training loop, from the resolved settings.

:func:`prepare_run` builds the trainer ``fit`` runs (continued on a warm start, restored
from a checkpoint, or new); :func:`run_trainer` runs it with a progress bar and periodic
checkpoints. They take the estimator's :class:`~coopkit.assembly.Settings` and plain values,
never the estimator: ``fit`` sets its fitted attributes from what they return.
:func:`validation_split` holds out the rows on which the model's tilt is chosen
(:func:`fitted_tilt`, :mod:`coopkit.tilt`) and on which training stops early
(:func:`early_stopper`, :mod:`coopkit.early_stopping`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from coopkit.assembly import Settings, build_parts, training_config
from coopkit.data import Scaler, check_shape, scaler_from_dict, scaler_to_dict
from coopkit.distributed import current_world
from coopkit.early_stopping import EarlyStopping, check_interval
from coopkit.flows.base import Flow
from coopkit.persistence import CHECKPOINT_NAME, read_checkpoint, write_checkpoint
from coopkit.scoring import report
from coopkit.streaming import TrainingData, split_rows
from coopkit.tilt import TILT_CHAINS, choose_tilt
from coopkit.training.trainer import CoopTrainer
from coopkit.validation import resolve_device, seed_from


@dataclass(frozen=True)
class Run:
    """A trainer and what ``fit`` keeps beside it: the scaler of its data, its device."""

    trainer: CoopTrainer
    scaler: Scaler
    device: torch.device


def prepare_run(
    settings: Settings, X: TrainingData, resume: str | Path | None, previous: Run | None
) -> Run:
    """The run to train: ``previous`` continued under ``settings`` (a warm start; given
    only then, and never with ``resume``), restored from the checkpoint ``resume``, or
    new."""
    if previous is not None:
        check_shape(X, previous.scaler)
        previous.trainer.reconfigure(
            training_config(settings, previous.scaler, previous.trainer.config.data_seed, len(X))
        )
        return previous
    checkpoint = read_checkpoint(resume, X.fingerprint) if resume is not None else None
    device = resolve_device(settings.device)
    if checkpoint is not None:
        scaler = scaler_from_dict(checkpoint["scaler"])
        check_shape(X, scaler)
    else:
        scaler = X.fit_scaler(settings.data_range, settings.column_types)
    seed = seed_from(settings.random_state)
    flow, energy, sampler = build_parts(settings, scaler, seed)
    world = current_world(settings.distributed)
    trainer = CoopTrainer(
        flow.to(device),
        energy.to(device),
        sampler,
        training_config(settings, scaler, seed, len(X)),
        torch.Generator().manual_seed(seed),
        world,
    )
    if checkpoint is not None:
        try:
            trainer.load_state_dict(checkpoint["trainer"])
        except (RuntimeError, KeyError, ValueError) as exc:
            raise ValueError(
                f"Checkpoint {resume} does not fit this estimator's parts ({exc}); "
                "resume with the parameters of the run that wrote it."
            ) from exc
    return Run(trainer, scaler, device)


def run_trainer(
    settings: Settings,
    run: Run,
    data: torch.Tensor,
    fingerprint: list[float],
    stopper: EarlyStopping | None = None,
) -> str | None:
    """Run ``run``'s trainer on ``data`` to its last iteration, or until ``stopper``
    stops it (then its flow and energy net get the best check's weights back, and the
    reason is returned), writing checkpoints (of the data whose fingerprint is
    ``fingerprint``) with ``checkpoint_dir`` and reporting as ``verbose`` asks (on the
    main rank only): 1 (or ``True``), a progress bar; 2 or more, also a line per
    checkpoint written and per iteration repeated after a divergence (:func:`report`)."""
    trainer = run.trainer
    callbacks: list[Callable[[CoopTrainer], bool | None]] = []
    level = verbosity(settings.verbose, trainer)
    if settings.checkpoint_dir is not None and trainer.world.is_main:
        write = partial(write_training_checkpoint, settings, run.scaler, fingerprint, level)
        callbacks.append(write)
    if stopper is not None:
        callbacks.append(lambda t: stopper.check(t.iteration, t.flow, t.energy))
    total = trainer.config.pretrain_iter + trainer.config.n_iter
    if level >= 1:
        from tqdm.auto import tqdm

        bar = tqdm(total=total, initial=trainer.iteration, desc="CoopFlow", unit="it")

        def progress(t: CoopTrainer) -> None:
            bar.update(1)
            last = {k: v[-1] for k, v in t.history.items() if k in ("flow_nll", "revision")}
            bar.set_postfix({k: f"{v:.3g}" for k, v in last.items()}, refresh=False)
            if level >= 2 and t.history["restored"][-1]:
                report(
                    f"iteration {t.iteration} diverged and was repeated with the sampler's "
                    f"step_size halved to {t.sampler.step_size:.3g}"
                )

        callbacks.insert(0, progress)
    try:
        trainer.run(data, lambda t: any([callback(t) for callback in callbacks]))
    finally:
        if level >= 1:
            bar.close()
    if stopper is None or not stopper.stopped:
        return None
    stopper.restore_best(trainer.flow, trainer.energy)
    return (
        f"stopped early at iteration {trainer.iteration}: the flow's validation "
        f"log-likelihood rose by no more than tol={settings.tol} in "
        f"{settings.n_iter_no_change} checks; the weights of iteration "
        f"{stopper.best_iteration} were restored"
    )


def verbosity(verbose: bool | int, trainer: CoopTrainer) -> int:
    """``verbose`` as a level (``True`` is 1), 0 on every rank but the main one."""
    return int(verbose) if trainer.world.is_main else 0


def write_training_checkpoint(
    settings: Settings,
    scaler: Scaler,
    fingerprint: list[float],
    level: int,
    trainer: CoopTrainer,
) -> None:
    """Write the whole training state to ``checkpoint_dir`` every ``checkpoint_every``
    iterations and at the last one; with ``level >= 2``, say so in a line."""
    total = trainer.config.pretrain_iter + trainer.config.n_iter
    if trainer.iteration % settings.checkpoint_every == 0 or trainer.iteration == total:
        path = write_checkpoint(
            Path(settings.checkpoint_dir) / CHECKPOINT_NAME,
            {
                "scaler": scaler_to_dict(scaler),
                "trainer": trainer.state_dict(),
                "data": fingerprint,
            },
        )
        if level >= 2:
            report(f"checkpoint of iteration {trainer.iteration}/{total} written to {path}")


def chooses_tilt(settings: Settings) -> bool:
    """Whether the fitted model's tilt is chosen on validation rows: ``tilt="auto"``
    on a flow-tilted CoopFlow (``energy_base="flow"``, ``proposal="flow"``) with a
    ``validation_fraction`` above 0."""
    return (
        settings.tilt == "auto"
        and settings.energy_base == "flow"
        and settings.proposal == "flow"
        and settings.validation_fraction > 0
    )


def validation_split(settings: Settings, n: int) -> tuple[np.ndarray, np.ndarray] | None:
    """Positions of the training and the validation rows among ``n`` when
    :func:`chooses_tilt` or ``early_stopping`` (``None`` otherwise, or when ``n < 3``).
    Both use the same rows. They are drawn with ``random_state`` when it is an integer
    and with seed 0 otherwise, so that a warm start or a resumed fit sees the same
    training rows.

    Raises:
        ValueError: ``early_stopping`` with ``validation_fraction=0``.
    """
    if settings.early_stopping and settings.validation_fraction == 0:
        raise ValueError(
            "early_stopping=True needs validation rows to stop on; set "
            "validation_fraction above 0 (0.1 holds out a tenth of the rows)."
        )
    if not (chooses_tilt(settings) or settings.early_stopping) or n < 3:
        return None
    seed = settings.random_state if isinstance(settings.random_state, int) else 0
    return split_rows(n, settings.validation_fraction, seed)


def early_stopper(
    settings: Settings, validation: torch.Tensor | None, n_train: int, chunk: int
) -> EarlyStopping | None:
    """The :class:`~coopkit.early_stopping.EarlyStopping` of a fit on ``n_train`` rows
    with ``validation`` rows (model units), or ``None`` without ``early_stopping``."""
    if not settings.early_stopping or validation is None:
        return None
    every = check_interval(n_train, settings.batch_size)
    return EarlyStopping(validation, settings.n_iter_no_change, settings.tol, every, chunk)


def fitted_tilt(
    settings: Settings,
    energy: nn.Module,
    flow: Flow,
    validation: torch.Tensor | None,
    bounds: tuple[float, float],
    *,
    chunk: int,
    generator: torch.Generator,
) -> tuple[float, dict[str, Any] | None]:
    """The tilt β of the fitted model and how it was chosen (``tilt_info_``): when
    :func:`chooses_tilt`, on the ``validation`` rows (model units) by
    :func:`coopkit.tilt.choose_tilt` with ``n_partition_samples`` chains ("auto":
    :data:`~coopkit.tilt.TILT_CHAINS`); otherwise ``tilt`` as given, or 1 (the model as
    trained) for ``"auto"``."""
    if validation is None or not chooses_tilt(settings):
        return (1.0 if settings.tilt == "auto" else float(settings.tilt)), None
    n_samples = settings.n_partition_samples
    n_samples = TILT_CHAINS if n_samples == "auto" else int(n_samples)
    choice = choose_tilt(energy, flow, validation, bounds, n_samples, generator, chunk=chunk)
    return choice.tilt, choice.as_dict()
