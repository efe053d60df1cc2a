"""``CoopFlow``: the scikit-learn estimator around the cooperative training loop."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator, DensityMixin, TransformerMixin
from sklearn.utils.validation import check_is_fitted
from torch import nn

from coopkit import presets
from coopkit.assembly import Settings
from coopkit.batch_invariance import float64_device
from coopkit.data import check_array, check_shape, data_kind
from coopkit.fitting import (
    Run,
    early_stopper,
    fitted_tilt,
    prepare_run,
    run_trainer,
    validation_split,
)
from coopkit.inference import chunked
from coopkit.persistence import PersistenceMixin
from coopkit.reconstruction import ReconstructionMixin
from coopkit.sampling import SamplingMixin
from coopkit.scoring import DensityScoresMixin
from coopkit.streaming import TrainingData, read_rows, training_data
from coopkit.threads import uses_threads
from coopkit.training.config import TrainingDivergedError
from coopkit.training.energy import EnergyRunner, score_energy, tilted
from coopkit.units import ModelUnitsMixin
from coopkit.validation import check_params


class CoopFlow(
    ModelUnitsMixin,
    PersistenceMixin,
    SamplingMixin,
    DensityScoresMixin,
    ReconstructionMixin,
    DensityMixin,
    TransformerMixin,
    BaseEstimator,
):
    """CoopFlow: a normalizing flow and a short-run Langevin flow learning an EBM together.

    The flow ``g_α`` proposes samples; ``T`` steps of Langevin dynamics on the energy
    ``E_θ`` revise them; the energy learns from data versus revised samples, and the flow
    learns from the revised samples (Xie et al., "A Tale of Two Flows", ICLR 2022).

    Parts are given by registered name (:func:`coopkit.available`), as a factory called
    with the event shape and the ``*_params``, or built (copied at ``fit``). Parameters
    that default to ``"auto"`` are resolved at ``fit`` for the kind of data
    (:data:`coopkit.defaults.AUTO`; the values are :attr:`settings_`).

    Args:
        flow: the normalizing flow (``"auto"``: ``nsf`` for tables, ``glow`` for images).
        energy: the energy net (``"auto"``: ``mlp`` / ``conv``).
        sampler: the sampler that revises the proposals (``"auto"``: ``pcn`` / ``langevin``).
        flow_params: keyword arguments of the flow's factory.
        energy_params: keyword arguments of the energy net's factory.
        sampler_params: keyword arguments of the sampler's factory; its ``bounds`` default
            to the data's box in model units (not with ``energy_base="flow"``).
        n_iter: cooperative iterations (one batch each).
        batch_size: samples per iteration.
        flow_lr: the flow's Adam learning rate (``"auto"``: 1e-3 tables, 1e-4 images).
        energy_lr: the energy net's Adam learning rate (``"auto"``: 3e-3 / 1e-4).
        energy_betas: the energy net's Adam betas (``"auto"``: (0.9, 0.999) / (0.5, 0.5)).
        warmup_iter: iterations of linear learning-rate warm-up (``"auto"``: 50 / 100).
        lr_schedule: ``"constant"`` or ``"cosine"`` after the warm-up (``"auto"``: cosine /
            constant).
        pretrain_iter: maximum-likelihood iterations of the flow first (CoopFlow(Pre)).
        proposal: ``"flow"`` (CoopFlow) or ``"noise"`` (the short-run EBM; the flow is not
            trained).
        flow_learns_from: the flow's maximum-likelihood targets: ``"revised"`` samples (the
            paper), ``"data"`` or ``"both"`` (``"auto"``: data / revised).
        energy_l2: weight of the mean squared energy in the EBM's loss.
        target_revision: adapt the sampler's step size toward this mean distance moved by a
            chain (``None``: fixed step).
        energy_base: ``"uniform"`` (the paper: ``exp(-E)`` on the box) or ``"flow"``
            (``q(x) exp(-E(x))``, chains in the flow's latent space) (``"auto"``: flow /
            uniform).
        tilt: β of the fitted model ``q·exp(-β E)`` (or ``exp(-β E)`` with
            ``energy_base="uniform"``) that sampling, scores and ``log Z`` use; training
            learns β = 1 (the default). ``"auto"``: chosen on held-out rows with
            ``energy_base="flow"`` (:mod:`coopkit.tilt`), else 1.
        validation_fraction: rows held out of training, with ``tilt="auto"`` or
            ``early_stopping`` (only then): both use the same rows.
        early_stopping: stop when the flow's exact log-likelihood of the validation rows
            stops rising, and keep the best check's weights (:mod:`coopkit.early_stopping`).
        n_iter_no_change: checks (one per epoch, at least 10 iterations apart) without a
            gain above ``tol`` before ``early_stopping`` stops.
        tol: the gain, in nats per validation row, that counts as a rise.
        flow_grad_clip: maximum gradient norm of the flow's step, or ``None``.
        data_range: ``(low, high)`` of image values; inferred when unambiguous.
        column_types: a table's integer, levels and bounded columns
            (:mod:`coopkit.columns`): ``"auto"`` detects them, ``"float"`` treats
            every column as continuous and unbounded, or one ``"auto"``, ``"float"``,
            ``"integer"`` or ``(low, high)`` per column.
        device: ``"auto"``, ``"cpu"`` or ``"cuda[:i]"``.
        precision: ``"float32"`` or ``"bfloat16"`` autocast of the energy net.
        compile: run the energy net through :func:`torch.compile`.
        log_partition: how ``log Z`` is estimated when first needed after ``fit``:
            ``"importance"`` sampling from the flow, ``"ais"`` (see
            ``docs/guide/likelihood.md``), or ``None``: never (scores then raise).
        n_partition_samples: draws or AIS chains for ``log Z`` (``"auto"``: 4096 / 256),
            and the AIS chains of ``tilt="auto"``'s choice (``"auto"``: 256).
        partition_temperatures: AIS temperatures between the flow and the EBM.
        partition_sampler: the AIS transition, a sampler or its name (built with one step).
        reconstruct_batch_size: samples fitted together by :meth:`reconstruct`,
            :meth:`inpaint` (``method="optimize"``) and :meth:`interpolate`.
        on_divergence: ``"raise"`` :class:`~coopkit.TrainingDivergedError`, keeping the last
            good weights, or ``"restore"`` them, halve the step size and repeat.
        warm_start: continue from the fitted state on the next ``fit``.
        checkpoint_dir: folder for an atomic checkpoint of the training state;
            ``fit(X, resume=path)`` continues from it.
        checkpoint_every: iterations between checkpoints.
        distributed: ``"auto"``: DistributedDataParallel when a process group is
            initialised (``docs/scaling.md``); ``"off"``.
        n_threads: torch's intra-op threads while ``fit``, ``sample`` and the scoring and
            reconstruction methods run, the caller's setting restored after (``None``:
            torch's current setting); see :mod:`coopkit.threads`.
        random_state: seed of a private ``torch.Generator`` (torch's global seed is kept).
        verbose: what ``fit`` reports, as in scikit-learn: 0 or ``False`` nothing; 1 or
            ``True`` a progress bar; 2 also a line per checkpoint written, per iteration
            repeated after a divergence, and for the ``log Z`` estimate.

    Attributes:
        settings_: the ``"auto"`` parameters as resolved for the data; for a table also
            ``column_types``: per column its ``type`` and ``bounds`` as detected.
        flow_: the fitted flow (a plain module, on ``device_``).
        energy_: the fitted energy net (a plain module, on ``device_``).
        sampler_: the sampler, with any step size changed during ``fit``.
        history_: per iteration, ``flow_nll``, ``energy_data``, ``energy_revised``,
            ``revision`` (mean norm of the Langevin change) and the sampler's stats.
        n_iter_: iterations done, pre-training included.
        tilt_: the fitted model's β (also in ``settings_["tilt"]``).
        tilt_info_: how ``tilt_`` was chosen: per β, the validation rows' log-likelihood
            and the effective sample size (``None`` when it was not chosen).
        stop_reason_: ``"completed"``, or where training stopped early, diverged or was
            interrupted.
        validation_scores_: with ``early_stopping``, the flow's mean log-likelihood of
            the validation rows at each check (else ``None``).
        best_validation_score_: the best of them, whose weights were kept (or ``None``).
        log_partition_: the energy model's ``log Z`` in model units, estimated the first
            time it or a score is needed after ``fit`` and kept (so are the next two).
        log_partition_se_: the standard error of ``log_partition_``.
        log_partition_info_: how ``log Z`` was estimated: ``method``, ``log_z``,
            ``standard_error``, ``ess``, ``acceptance_rate`` and ``start`` (AIS),
            ``n_samples``, ``n_temperatures``, ``seconds`` and ``reliable`` (an effective
            sample size of at least 5% of the draws and 30; otherwise the estimate and
            the scores warn).

    Examples:
        >>> from coopkit.datasets import moons
        >>> X = moons(64, random_state=0)
        >>> model = CoopFlow(n_iter=2, batch_size=32, random_state=0).fit(X)
        >>> model.sample(4, random_state=0).shape, model.sample(4, revise=False).shape
        ((4, 2), (4, 2))
        >>> model.flow_score_samples(X[:3]).shape, model.score_samples(X[:3]).shape
        ((3,), (3,))
        >>> model.reconstruct(X[:3], n_iter=5).shape
        (3, 2)
        >>> model.inpaint(X[:3], [1, 0], n_completions=2, n_iter=5).shape
        (3, 2, 2)
        >>> model.interpolate(X[0], X[1], n_points=4, n_iter=5).shape
        (4, 2)
        >>> import tempfile
        >>> from pathlib import Path
        >>> import numpy as np
        >>> path = model.save(Path(tempfile.mkdtemp()) / "moons.coopkit")
        >>> loaded = CoopFlow.load(path)
        >>> bool(np.allclose(loaded.sample(3, random_state=0), model.sample(3, random_state=0)))
        True
    """

    def __init__(
        self,
        flow: Any = "auto",
        energy: Any = "auto",
        sampler: Any = "auto",
        *,
        flow_params: Mapping[str, Any] | None = None,
        energy_params: Mapping[str, Any] | None = None,
        sampler_params: Mapping[str, Any] | None = None,
        n_iter: int = 1000,
        batch_size: int = 128,
        flow_lr: float | str = "auto",
        energy_lr: float | str = "auto",
        energy_betas: tuple[float, float] | str = "auto",
        warmup_iter: int | str = "auto",
        lr_schedule: str = "auto",
        pretrain_iter: int = 0,
        proposal: str = "flow",
        flow_learns_from: str = "auto",
        energy_l2: float = 0.0,
        target_revision: float | None = None,
        energy_base: str = "auto",
        tilt: float | str = 1.0,
        validation_fraction: float = 0.1,
        early_stopping: bool = False,
        n_iter_no_change: int = 10,
        tol: float = 1e-4,
        flow_grad_clip: float | None = 1.0,
        data_range: tuple[float, float] | None = None,
        column_types: Any = "auto",
        device: str = "auto",
        precision: str = "float32",
        compile: bool = False,
        log_partition: str = "importance",
        n_partition_samples: int | str = "auto",
        partition_temperatures: int = 1000,
        partition_sampler: Any = "mala",
        reconstruct_batch_size: int = 64,
        on_divergence: str = "raise",
        warm_start: bool = False,
        checkpoint_dir: str | None = None,
        checkpoint_every: int = 100,
        distributed: str = "auto",
        n_threads: int | None = None,
        random_state: Any = None,
        verbose: int | bool = False,
    ) -> None:
        self.flow = flow
        self.energy = energy
        self.sampler = sampler
        self.flow_params = flow_params
        self.energy_params = energy_params
        self.sampler_params = sampler_params
        self.n_iter = n_iter
        self.batch_size = batch_size
        self.flow_lr = flow_lr
        self.energy_lr = energy_lr
        self.energy_betas = energy_betas
        self.warmup_iter = warmup_iter
        self.lr_schedule = lr_schedule
        self.pretrain_iter = pretrain_iter
        self.proposal = proposal
        self.flow_learns_from = flow_learns_from
        self.energy_l2 = energy_l2
        self.target_revision = target_revision
        self.energy_base = energy_base
        self.tilt = tilt
        self.validation_fraction = validation_fraction
        self.early_stopping = early_stopping
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.flow_grad_clip = flow_grad_clip
        self.data_range = data_range
        self.column_types = column_types
        self.device = device
        self.precision = precision
        self.compile = compile
        self.log_partition = log_partition
        self.n_partition_samples = n_partition_samples
        self.partition_temperatures = partition_temperatures
        self.partition_sampler = partition_sampler
        self.reconstruct_batch_size = reconstruct_batch_size
        self.on_divergence = on_divergence
        self.warm_start = warm_start
        self.checkpoint_dir = checkpoint_dir
        self.checkpoint_every = checkpoint_every
        self.distributed = distributed
        self.n_threads = n_threads
        self.random_state = random_state
        self.verbose = verbose

    @classmethod
    def from_preset(cls, name: str, **params: Any) -> CoopFlow:
        """The estimator with the parameters of the paper's configuration ``name``
        (:mod:`coopkit.presets`), overridden by ``params``; a ``*_params`` dictionary
        given here updates the preset's rather than replacing it.

        Raises:
            ValueError: an unknown preset (the message lists them).
            coopkit.UnknownPartError: the preset's flow or energy plugin is missing (the
                message names the package to install).

        Examples:
            >>> model = CoopFlow.from_preset("cifar10-T30", n_iter=2, flow_params={"n_steps": 1})
            >>> model.n_iter, model.batch_size, model.flow_params["n_steps"]
            (2, 28, 1)
            >>> model.flow_params["hidden_channels"]
            96
        """
        preset = presets.preset(name)
        for key, value in params.items():
            if key.endswith("_params") and isinstance(value, Mapping):
                value = {**(preset.get(key) or {}), **value}
            preset[key] = value
        return cls(**preset)

    @uses_threads
    def fit(self, X: Any, y: None = None, *, resume: str | Path | None = None) -> CoopFlow:
        """Train the flow and the energy net cooperatively on ``X``.

        With ``warm_start=True`` and a fitted estimator, training continues from the
        fitted state up to ``pretrain_iter + n_iter`` iterations in all; with ``resume``
        it continues from a checkpoint file written by an earlier fit (``checkpoint_dir``).
        Either way the result is the one an uninterrupted run with the same seed gives.

        If training diverges (:class:`~coopkit.training.TrainingDivergedError`) or is
        interrupted (``KeyboardInterrupt``), the exception propagates, and the estimator
        is left fitted with the iterations done so far: ``history_`` ends at the last
        completed iteration and ``stop_reason_`` says what happened.

        Args:
            X: ``(n, d)`` table, or images ``(n, h, w)`` / ``(n, c, h, w)``; a
                memory-mapped array or a ``torch.utils.data.Dataset`` of samples or
                ``(sample, label)`` pairs is read batch by batch (:mod:`coopkit.streaming`).
            y: ignored.
            resume: a checkpoint file to continue from.
        """
        rows = training_data(X)
        if rows.shape[0] < 2:
            raise ValueError(
                f"X has {rows.shape[0]} sample; CoopFlow needs at least 2 samples to "
                "standardise the data and learn from it."
            )
        check_params(self.get_params(deep=False))
        settings = Settings.resolve(self.get_params(deep=False), data_kind(rows.shape))
        split = validation_split(settings, len(rows))
        held_out = None if split is None else read_rows(X, split[1])
        X = rows if split is None else training_data(X, split[0])
        warm = settings.warm_start and resume is None and hasattr(self, "_trainer")
        previous = Run(self._trainer, self.scaler_, self.device_) if warm else None
        run = prepare_run(settings, X, resume, previous)
        if run is not previous:
            self._start(settings, run, X)
        trainer = run.trainer
        data = X.on_device(self.scaler_, self.device_)
        if trainer.iteration == 0 and not trainer.history:
            trainer.initialize(data)
        validation = None if held_out is None else self._to_model(held_out, "validation rows")
        stopper = early_stopper(settings, validation, len(X), self._chunk)
        self.stop_reason_ = "running"
        try:
            stopped = run_trainer(settings, run, data, self._data_fingerprint, stopper)
            self.stop_reason_ = stopped or "completed"
        except TrainingDivergedError as exc:
            self.stop_reason_ = f"diverged at iteration {exc.iteration}"
            raise
        except KeyboardInterrupt:
            self.stop_reason_ = f"interrupted at iteration {trainer.iteration}"
            raise
        finally:
            self.n_iter_ = trainer.iteration
            self.validation_scores_ = None if stopper is None else stopper.scores
            self.best_validation_score_ = max(self.validation_scores_ or [None])
            self._choose_tilt(settings, validation)
            self._log_partition_info = None  # estimated when first needed
        return self

    def _start(self, settings: Settings, run: Run, X: TrainingData) -> None:
        """Set the fitted attributes that describe a new (or resumed) ``run``."""
        trainer = run.trainer
        self._trainer, self._energy_runner = trainer, trainer.run_energy
        self.scaler_, self.device_ = run.scaler, run.device
        self.settings_ = {**settings.auto, **run.scaler.described()}
        self.flow_, self.energy_, self.sampler_ = trainer.flow, trainer.energy, trainer.sampler
        self.n_features_in_ = int(np.prod(X.shape[1:]))
        self.history_ = trainer.history
        self._data_fingerprint = X.fingerprint

    def _choose_tilt(self, settings: Settings, validation: torch.Tensor | None) -> None:
        """Set ``tilt_`` and ``tilt_info_``, chosen on the ``validation`` rows (model
        units)."""
        self.tilt_, self.tilt_info_ = fitted_tilt(
            settings,
            self._runner(),
            self.flow_,
            validation,
            self.scaler_.model_bounds,
            chunk=self._chunk,
            generator=self._generator(1),
        )
        self.settings_ = {**self.settings_, "tilt": self.tilt_}

    def _runner(self) -> EnergyRunner:
        """The fitted energy net in the estimator's precision, compiled once if asked."""
        if getattr(self, "_energy_runner", None) is None:
            self._energy_runner = EnergyRunner(self.energy_, self.precision, self.compile)
        return self._energy_runner

    def _tilted_energy(self, compiled: bool = True) -> nn.Module:
        """The fitted energy net times ``tilt_``; ``compiled=False`` for reconstruction,
        which back-propagates through the sampler (compiled graphs do not support that)."""
        runner = self._runner() if compiled else EnergyRunner(self.energy_, self.precision)
        return tilted(runner, self.tilt_)

    def _model_energy(self, compiled: bool = True) -> nn.Module:
        """The fitted model's energy in data space: the tilted energy net
        (:meth:`_tilted_energy`), with ``energy_base="flow"`` minus ``log q``."""
        energy = self._tilted_energy(compiled)
        return score_energy(energy, self.flow_, self.settings_["energy_base"])

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state.pop("_energy_runner", None)
        trainer = state.pop("_trainer", None)
        if trainer is not None and not self.compile:
            state["_trainer"] = trainer
        return state

    @uses_threads
    def transform(self, X: Any) -> np.ndarray:
        """The flow's latent codes ``z = g_α⁻¹(x)``, shaped like ``X``, computed in float64
        so that a row's code does not depend on the rows transformed with it.

        Examples:
            >>> import numpy as np
            >>> from coopkit.datasets import moons
            >>> model = CoopFlow(n_iter=2, batch_size=32, random_state=0).fit(moons(64, 0))
            >>> X = moons(5, 1)
            >>> bool(np.allclose(model.inverse_transform(model.transform(X)), X, atol=1e-5))
            True
        """
        V = self._to_model(X, exact=True)
        flow = self._exact_flow()
        with torch.no_grad():
            Z = chunked(lambda v: flow(v)[0], V, self._chunk)
        return Z.cpu().numpy().reshape(len(V), *self.scaler_.input_shape)

    @uses_threads
    def inverse_transform(self, Z: Any) -> np.ndarray:
        """Data ``x = g_α(z)`` of latent codes shaped like the training samples (no Langevin),
        computed in float64 like :meth:`transform`."""
        check_is_fitted(self)
        Z = check_array(Z, name="Z")
        check_shape(Z, self.scaler_, name="Z")
        flow = self._exact_flow()
        z = torch.as_tensor(Z, dtype=torch.float64, device=float64_device(self.device_))
        with torch.no_grad():
            V = chunked(
                lambda v: flow.inverse(v)[0], z.reshape(len(z), *flow.event_shape), self._chunk
            )
        return self._to_data(V)

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "flow_")
