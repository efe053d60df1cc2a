"""What ``CoopFlow.fit`` does around the training loop.

:func:`prepare_trainer` builds the trainer ``fit`` runs (continued on a warm start,
restored from a checkpoint, or new) and sets the fitted attributes that describe it;
:func:`run_trainer` runs it with a progress bar and periodic checkpoints;
:func:`estimate_log_partition` estimates the energy model's ``log Z`` at the end.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from coopkit.assembly import build_part, build_parts, settings, training_config
from coopkit.data import check_shape, scaler_from_dict, scaler_to_dict
from coopkit.distributed import current_world
from coopkit.inference import ais_log_partition, log_partition
from coopkit.persistence import CHECKPOINT_NAME, read_checkpoint, write_checkpoint
from coopkit.streaming import TrainingData
from coopkit.training import CoopTrainer
from coopkit.validation import resolve_device, seed_from

if TYPE_CHECKING:
    from coopkit.estimator import CoopFlow


def prepare_trainer(model: CoopFlow, X: TrainingData, resume: str | Path | None) -> CoopTrainer:
    """The trainer to run: continued (warm start), restored (resume) or new."""
    if model.warm_start and resume is None and hasattr(model, "_trainer"):
        check_shape(X, model.scaler_)
        model._trainer.reconfigure(
            training_config(model, model.scaler_, model._trainer.config.data_seed, len(X))
        )
        return model._trainer
    checkpoint = read_checkpoint(resume, X.fingerprint) if resume is not None else None
    device = resolve_device(model.device)
    if checkpoint is not None:
        scaler = scaler_from_dict(checkpoint["scaler"])
        check_shape(X, scaler)
    else:
        scaler = X.fit_scaler(model.data_range)
    seed = seed_from(model.random_state)
    flow, energy, sampler = build_parts(model, scaler, seed)
    world = current_world(model.distributed)
    trainer = CoopTrainer(
        flow.to(device),
        energy.to(device),
        sampler,
        training_config(model, scaler, seed, len(X)),
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
    model._trainer = trainer
    model._energy_runner = trainer.run_energy
    model.scaler_, model.device_ = scaler, device
    model.settings_ = settings(model, scaler.kind)
    model.flow_, model.energy_, model.sampler_ = trainer.flow, trainer.energy, trainer.sampler
    model.n_features_in_ = int(np.prod(X.shape[1:]))
    model.history_ = trainer.history
    model._data_fingerprint = X.fingerprint
    return trainer


def run_trainer(model: CoopFlow, trainer: CoopTrainer, data: torch.Tensor) -> None:
    """Run ``trainer`` on ``data`` to its last iteration, writing checkpoints with
    ``checkpoint_dir`` and reporting as ``verbose`` asks (on the main rank only): 1 (or
    ``True``), a progress bar; 2 or more, also a line per checkpoint written and per
    iteration repeated after a divergence (:func:`report`)."""
    callbacks: list[Callable[[CoopTrainer], None]] = []
    level = verbosity(model.verbose, trainer)
    if model.checkpoint_dir is not None and trainer.world.is_main:
        callbacks.append(partial(write_training_checkpoint, model, level))
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
        trainer.run(data, lambda t: [callback(t) for callback in callbacks])
    finally:
        if level >= 1:
            bar.close()


def verbosity(verbose: bool | int, trainer: CoopTrainer) -> int:
    """``verbose`` as a level (``True`` is 1), 0 on every rank but the main one."""
    return int(verbose) if trainer.world.is_main else 0


def report(line: str) -> None:
    """Print one ``verbose >= 2`` line to standard output, above a progress bar if one is
    showing (as scikit-learn's estimators print theirs)."""
    from tqdm.auto import tqdm

    tqdm.write(f"CoopFlow: {line}")


def write_training_checkpoint(model: CoopFlow, level: int, trainer: CoopTrainer) -> None:
    """Write the whole training state to ``checkpoint_dir`` every ``checkpoint_every``
    iterations and at the last one; with ``level >= 2``, say so in a line."""
    total = trainer.config.pretrain_iter + trainer.config.n_iter
    if trainer.iteration % model.checkpoint_every == 0 or trainer.iteration == total:
        path = write_checkpoint(
            Path(model.checkpoint_dir) / CHECKPOINT_NAME,
            {
                "scaler": scaler_to_dict(model.scaler_),
                "trainer": trainer.state_dict(),
                "data": model._data_fingerprint,
            },
        )
        if level >= 2:
            report(f"checkpoint of iteration {trainer.iteration}/{total} written to {path}")


def estimate_log_partition(model: CoopFlow) -> None:
    """Set ``log_partition_``, its standard error and ``log_partition_info_``."""
    bounds = model.scaler_.model_bounds
    n_samples = model.n_partition_samples
    if n_samples == "auto":
        n_samples = 256 if model.log_partition == "ais" else 4096
    start = time.perf_counter()
    if model.log_partition == "ais":
        n_temperatures = int(model.partition_temperatures)
        sampler = build_part("sampler", model.partition_sampler, None, defaults={"n_steps": 1})
        betas = torch.linspace(0.0, 1.0, n_temperatures + 1, dtype=torch.float64)
        estimate = ais_log_partition(
            model._model_energy(),
            model.flow_,
            sampler,
            n_samples,
            betas,
            model._generator(0),
            bounds,
            target_accept=getattr(sampler, "target_accept", None),
        )
    else:
        n_temperatures = 0
        estimate = log_partition(
            model._model_energy(),
            model.flow_,
            n_samples,
            model._generator(0),
            bounds,
            chunk=model._chunk,
        )
    model.log_partition_ = estimate.log_z
    model.log_partition_se_ = estimate.standard_error
    model.log_partition_info_ = {
        **dataclasses.asdict(estimate),
        "n_samples": int(n_samples),
        "n_temperatures": n_temperatures,
        "seconds": time.perf_counter() - start,
    }
    if verbosity(model.verbose, model._trainer) >= 2:
        info = model.log_partition_info_
        report(
            f"log Z = {estimate.log_z:.6g} ± {estimate.standard_error:.2g} "
            f"({info['method']}, {info['n_samples']} samples, {info['seconds']:.2f} s)"
        )
