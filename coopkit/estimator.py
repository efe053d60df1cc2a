"""``CoopFlow``: the scikit-learn estimator around the cooperative training loop."""

from __future__ import annotations

import copy
import dataclasses
import inspect
import json
import math
import time
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator, DensityMixin, TransformerMixin
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted
from torch import nn

from coopkit import defaults, presets, registry
from coopkit.data import (
    Scaler,
    check_array,
    check_shape,
    scaler_from_dict,
    scaler_to_dict,
)
from coopkit.distributed import current_world
from coopkit.flows.base import Flow
from coopkit.inference import (
    Reconstruction,
    ais_log_partition,
    chunked,
    in_box,
    log_partition,
    reconstruct,
)
from coopkit.persistence import (
    CHECKPOINT_NAME,
    read_checkpoint,
    read_model,
    to_json,
    write_checkpoint,
    write_model,
)
from coopkit.samplers.base import Sampler
from coopkit.samplers.langevin import LangevinSampler
from coopkit.streaming import TrainingData, training_data
from coopkit.training import (
    CoopTrainer,
    EnergyRunner,
    TrainingConfig,
    TrainingDivergedError,
    decode,
    propose,
    revise_proposals,
    sampler_state,
    score_energy,
)

# Samples evaluated at once without gradients (sampling, scores, log Z): 4 training
# batches, which fit in memory by construction (a Flow++ with self-attention at 32x32
# needs 16 MB per image for its attention maps alone), within these bounds.
_CHUNK = (256, 1024)
_SAVED_ATTRIBUTES = (
    "n_iter_",
    "n_features_in_",
    "history_",
    "stop_reason_",
    "log_partition_",
    "log_partition_se_",
    "log_partition_info_",
)


def _seed(random_state: Any) -> int:
    return int(check_random_state(random_state).randint(np.iinfo(np.int32).max))


def _resolve_device(device: str | torch.device) -> torch.device:
    if device == "auto":
        return torch.device(torch.cuda.current_device() if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"device must be 'auto', 'cpu' or 'cuda[:i]'; got {device!r}.") from exc
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} was asked for, but CUDA is not available here.")
    return resolved


class CoopFlow(DensityMixin, TransformerMixin, BaseEstimator):
    """CoopFlow: a normalizing flow and a short-run Langevin flow learning an EBM together.

    The flow ``g_α`` proposes samples; ``T`` steps of Langevin dynamics on the energy
    ``E_θ`` revise them; the energy learns from data versus revised samples, and the flow
    learns from the revised samples (Xie et al., "A Tale of Two Flows", ICLR 2022).

    Parts are given by registered name (see :func:`coopkit.available`), as a factory or
    class called with the event shape and the matching ``*_params``, or as a built
    ``nn.Module`` / sampler (copied at ``fit``). Every parameter that defaults to
    ``"auto"`` is resolved at ``fit`` from the kind of data by
    :data:`coopkit.defaults.AUTO` (the resolved values are :attr:`settings_`): images
    get the paper's released settings; tables get the configuration measured best in
    ``docs/guide/tuning.md`` (``nsf``, an energy that tilts the flow, ``pcn`` in the
    flow's latent space, rates 1e-3 and 1e-2 with a cosine decay).

    Args:
        flow: the normalizing flow (``"auto"``: ``nsf`` for tables, ``glow`` for images).
        energy: the energy net (``"auto"``: ``mlp`` / ``conv``).
        sampler: the sampler that revises the flow's proposals (``"auto"``: ``pcn`` /
            ``langevin``).
        flow_params: keyword arguments of the flow's factory.
        energy_params: keyword arguments of the energy net's factory.
        sampler_params: keyword arguments of the sampler's factory. A sampler whose
            factory takes ``bounds`` gets the data's box in model units unless set here:
            [-1, 1] for images (the released code's pixel clamp), the standardised data's
            range plus one unit for tables; not with ``energy_base="flow"``, whose chains
            run in the flow's latent space. For tables, :data:`coopkit.defaults.SAMPLER_PARAMS`
            fills in more (``langevin``: step 0.3; ``pcn``: step 1.0, 10 steps).
        n_iter: cooperative iterations (one batch each).
        batch_size: samples per iteration.
        flow_lr: the flow's Adam learning rate (``"auto"``: 1e-3 tables, 1e-4 images).
        energy_lr: the energy net's Adam learning rate (``"auto"``: 3e-3 / 1e-4).
        energy_betas: the energy net's Adam betas (``"auto"``: (0.9, 0.999) / (0.5, 0.5)).
        warmup_iter: iterations of linear learning-rate warm-up (``"auto"``: 50 / 100).
        lr_schedule: ``"constant"`` after the warm-up, or ``"cosine"`` decay to 0 over
            the run (``"auto"``: cosine / constant).
        pretrain_iter: maximum-likelihood iterations of the flow on the data before the
            cooperative loop (CoopFlow(Pre)); 0 trains from scratch. With
            ``n_iter=0`` the flow is trained alone by maximum likelihood.
        proposal: ``"flow"`` (CoopFlow) or ``"noise"``: chains start from uniform noise
            and the flow is not trained, the short-run EBM baseline (Nijkamp et al., 2019).
        flow_learns_from: what the flow's maximum-likelihood step sees: ``"revised"``
            samples (the paper), the ``"data"``, or ``"both"`` (``"auto"``: data /
            revised).
        energy_l2: weight of the mean squared energy added to the EBM's loss (0: none).
        target_revision: adapt the sampler's step size during training toward this mean
            distance moved by a chain, in model units (``None``: fixed step).
        energy_base: ``"uniform"``: the EBM is ``exp(-E)`` on the chains' box (the
            paper); ``"flow"``: it tilts the flow, ``q(x) exp(-E(x))``, and the sampler
            runs in the flow's latent space (``"auto"``: flow / uniform).
        flow_grad_clip: maximum gradient norm of the flow's step, or ``None``.
        data_range: ``(low, high)`` of image values; inferred when unambiguous.
        device: ``"auto"``, ``"cpu"`` or ``"cuda"``.
        precision: ``"float32"`` or ``"bfloat16"``: autocast of the energy net (the
            Langevin loop's cost) on any device; the flow stays float32.
        compile: run the energy net through :func:`torch.compile` in ``fit`` and
            ``sample`` (worth it on a GPU; on a CPU the first call compiles for a while).
        log_partition: how ``fit`` estimates the energy model's ``log Z`` at its end:
            ``"importance"`` sampling from the flow (fast; trustworthy in low dimensions)
            or ``"ais"``, annealed importance sampling from the flow to the EBM (for
            images). See ``docs/guide/likelihood.md``.
        n_partition_samples: flow samples (importance) or chains (AIS) for ``log Z``;
            ``"auto"``: 4096 for importance sampling, 256 for AIS.
        partition_temperatures: AIS temperatures between the flow and the EBM.
        partition_sampler: the AIS transition, run once per temperature: a registered
            sampler's name (built with ``n_steps=1``) or a built sampler. A
            Metropolis-corrected one (``mala``, ``hmc``) keeps the estimate unbiased; its
            step size adapts between temperatures toward its ``target_accept``.
        reconstruct_batch_size: samples optimised together by :meth:`reconstruct`,
            :meth:`inpaint` and :meth:`interpolate`; bounds their memory.
        on_divergence: ``"raise"``: a non-finite loss or gradient stops ``fit`` with
            :class:`~coopkit.TrainingDivergedError`, keeping the last good weights;
            ``"restore"``: keep those weights, halve the sampler's step size and repeat
            the iteration (``history_["restored"]`` marks where).
        warm_start: continue from the fitted state on the next ``fit``. With
            ``lr_schedule="cosine"`` a larger ``n_iter`` re-plans the decay over the new
            total, so the result differs from one uninterrupted run.
        checkpoint_dir: folder for an atomic checkpoint of the whole training state
            (``checkpoint.pt``) every ``checkpoint_every`` iterations and at the end;
            ``fit(X, resume=path)`` continues from it.
        checkpoint_every: iterations between checkpoints.
        distributed: ``"auto"``: when a ``torch.distributed`` process group is
            initialised (as under ``torchrun``), train with DistributedDataParallel, each
            rank on its share of every batch (``batch_size`` is the global batch);
            ``"off"``: train in this process alone. See ``docs/scaling.md``.
        random_state: seed of a private ``torch.Generator``; torch's global seed is
            never touched.
        verbose: show a progress bar.

    Attributes:
        settings_: the ``"auto"`` parameters as resolved for the data.
        flow_: the fitted flow (a plain module, on ``device_``).
        energy_: the fitted energy net (a plain module, on ``device_``).
        sampler_: the sampler, with any step size changed during ``fit``.
        history_: per iteration, ``flow_nll``, ``energy_data``, ``energy_revised``,
            ``revision`` (mean norm of the Langevin change) and the sampler's stats.
        n_iter_: iterations done, pre-training included.
        stop_reason_: ``"completed"``, or where training diverged or was interrupted.
        log_partition_: the energy model's ``log Z`` in model units.
        log_partition_se_: the standard error of ``log_partition_``.
        log_partition_info_: how ``log Z`` was estimated: ``method``, ``log_z``,
            ``standard_error``, ``ess`` (effective sample size), ``acceptance_rate`` (AIS),
            ``start`` (AIS: ``"flow"`` or ``"uniform"``), ``n_samples``, ``n_temperatures``
            and ``seconds``.

    Example:
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
        flow_grad_clip: float | None = 1.0,
        data_range: tuple[float, float] | None = None,
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
        random_state: Any = None,
        verbose: bool = False,
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
        self.flow_grad_clip = flow_grad_clip
        self.data_range = data_range
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

        Example:
            >>> model = CoopFlow.from_preset("cifar10-T30", n_iter=2, flow_params={"n_steps": 1})
            >>> model.n_iter, model.batch_size, model.flow_params["n_steps"]
            (2, 28, 1)
            >>> model.flow_params["hidden_channels"]
            96
        """
        settings = presets.preset(name)
        for key, value in params.items():
            if key.endswith("_params") and isinstance(value, Mapping):
                value = {**(settings.get(key) or {}), **value}
            settings[key] = value
        return cls(**settings)

    def _validate_params(self) -> None:
        positive = (
            "batch_size",
            "partition_temperatures",
            "reconstruct_batch_size",
            "checkpoint_every",
        )
        for name in ("n_iter", "pretrain_iter", *positive):
            value = getattr(self, name)
            low = 1 if name in positive else 0
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < low:
                raise ValueError(f"{name} must be an integer >= {low}; got {value!r}.")
        if self.n_iter + self.pretrain_iter == 0:
            raise ValueError(
                "n_iter and pretrain_iter are both 0: zero iterations; set n_iter >= 1."
            )
        if self.log_partition not in ("importance", "ais"):
            raise ValueError(
                f"log_partition must be 'importance' or 'ais'; got {self.log_partition!r}."
            )
        n_partition = self.n_partition_samples
        if n_partition != "auto" and (
            not isinstance(n_partition, (int, np.integer))
            or isinstance(n_partition, bool)
            or n_partition < 2
        ):
            raise ValueError(
                "n_partition_samples must be 'auto' or an integer >= 2 (a standard error "
                f"needs two samples); got {n_partition!r}."
            )
        if self.precision not in ("float32", "bfloat16"):
            raise ValueError(f"precision must be 'float32' or 'bfloat16'; got {self.precision!r}.")
        if not isinstance(self.compile, bool):
            raise ValueError(f"compile must be True or False; got {self.compile!r}.")
        if self.distributed not in ("auto", "off"):
            raise ValueError(f"distributed must be 'auto' or 'off'; got {self.distributed!r}.")
        if self.on_divergence not in ("raise", "restore"):
            raise ValueError(
                f"on_divergence must be 'raise' or 'restore'; got {self.on_divergence!r}."
            )
        if self.proposal not in ("flow", "noise"):
            raise ValueError(f"proposal must be 'flow' or 'noise'; got {self.proposal!r}.")
        if not isinstance(self.energy_l2, (int, float)) or not self.energy_l2 >= 0:
            raise ValueError(f"energy_l2 must be a number >= 0; got {self.energy_l2!r}.")
        target = self.target_revision
        if target is not None and (
            not isinstance(target, (int, float)) or isinstance(target, bool) or not target > 0
        ):
            raise ValueError(f"target_revision must be a positive number or None; got {target!r}.")
        if self.flow_grad_clip is not None and not self.flow_grad_clip > 0:
            raise ValueError(
                f"flow_grad_clip must be positive or None; got {self.flow_grad_clip!r}."
            )

    def _settings(self, kind: str) -> dict[str, Any]:
        """The parameters that may be ``"auto"``, resolved for ``kind`` and validated."""
        given = {name: getattr(self, name) for name in defaults.AUTO[kind]}
        return defaults.check(defaults.resolve(kind, given, self.proposal), self.proposal)

    def _build_part(
        self,
        kind: str,
        spec: Any,
        params: Mapping[str, Any] | None,
        *args: Any,
        defaults: Mapping[str, Any] | None = None,
    ) -> Any:
        """Build one part from its spec; ``defaults`` fill parameters that the factory
        names explicitly and that ``params`` leave unset."""
        params = dict(params or {})
        if isinstance(spec, str):
            factory = registry.resolve(kind, spec).factory
        elif isinstance(spec, (nn.Module, Sampler)):
            if params:
                raise ValueError(f"{kind}_params cannot be applied to an already built {kind}.")
            return copy.deepcopy(spec)
        elif callable(spec):
            factory = spec
        else:
            raise TypeError(
                f"{kind} must be a registered name, a factory or a built part; got {spec!r}."
            )
        accepted = inspect.signature(factory).parameters
        for name, value in (defaults or {}).items():
            if name in accepted:
                params.setdefault(name, value)
        return factory(*args, **params)

    def _part_specs(self, kind: str) -> dict[str, Any]:
        """The flow, energy and sampler specs with ``"auto"`` resolved for ``kind``."""
        settings = self._settings(kind)
        return {part: settings[part] for part in ("flow", "energy", "sampler")}

    def _build_parts(self, scaler: Scaler, seed: int) -> tuple[Flow, nn.Module, Sampler]:
        settings = self._settings(scaler.kind)
        event_shape = scaler.event_shape
        base = settings["energy_base"]
        # Parameter initialisation in torch draws from the global generator: seed it inside
        # fork_rng, which restores the caller's global state on exit.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            flow = self._build_part("flow", settings["flow"], self.flow_params, event_shape)
            energy = self._build_part(
                "energy",
                settings["energy"],
                self.energy_params,
                event_shape,
                defaults=defaults.ENERGY_PARAMS.get((scaler.kind, base), {}),
            )
        sampler_spec = settings["sampler"]
        sampler_defaults = dict(defaults.SAMPLER_PARAMS.get((scaler.kind, sampler_spec), {}))
        if base == "uniform":  # chains in data space stay in the data's box
            sampler_defaults.setdefault("bounds", scaler.model_bounds)
        sampler = self._build_part(
            "sampler", sampler_spec, self.sampler_params, defaults=sampler_defaults
        )
        if not isinstance(flow, Flow):
            raise TypeError(f"flow must build a coopkit.flows.Flow; got {type(flow).__name__}.")
        return flow, energy, sampler

    def _batch_size_for(self, n_samples: int) -> int:
        """``batch_size``, clipped to the number of samples with a warning (as
        scikit-learn's MLP does)."""
        if self.batch_size <= n_samples:
            return int(self.batch_size)
        warnings.warn(
            f"batch_size={self.batch_size} is larger than the {n_samples} samples in X; "
            f"using batch_size={n_samples}.",
            UserWarning,
            stacklevel=5,
        )
        return n_samples

    def _config(self, scaler: Scaler, seed: int, n_samples: int) -> TrainingConfig:
        settings = self._settings(scaler.kind)
        return TrainingConfig(
            n_iter=self.n_iter,
            batch_size=self._batch_size_for(n_samples),
            flow_lr=settings["flow_lr"],
            energy_lr=settings["energy_lr"],
            energy_betas=tuple(settings["energy_betas"]),
            warmup_iter=settings["warmup_iter"],
            lr_schedule=settings["lr_schedule"],
            flow_grad_clip=self.flow_grad_clip,
            pretrain_iter=self.pretrain_iter,
            dequantize_width=scaler.dequantize_width,
            proposal=self.proposal,
            flow_learns_from=settings["flow_learns_from"],
            energy_l2=self.energy_l2,
            target_revision=self.target_revision,
            energy_base=settings["energy_base"],
            noise_bounds=scaler.model_bounds,
            precision=self.precision,
            compile=self.compile,
            on_divergence=self.on_divergence,
            data_seed=seed,
        )

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
        X = training_data(X)
        if X.shape[0] < 2:
            raise ValueError(
                f"X has {X.shape[0]} sample; CoopFlow needs at least 2 samples to "
                "standardise the data and learn from it."
            )
        self._validate_params()
        trainer = self._prepare(X, resume)
        data = X.on_device(self.scaler_, self.device_)
        if trainer.iteration == 0 and not trainer.history:
            trainer.initialize(data)
        self.stop_reason_ = "running"
        try:
            self._run(trainer, data)
            self.stop_reason_ = "completed"
        except TrainingDivergedError as exc:
            self.stop_reason_ = f"diverged at iteration {exc.iteration}"
            raise
        except KeyboardInterrupt:
            self.stop_reason_ = f"interrupted at iteration {trainer.iteration}"
            raise
        finally:
            self.n_iter_ = trainer.iteration
            self._estimate_log_partition()
        return self

    def _estimate_log_partition(self) -> None:
        """Set ``log_partition_``, its standard error and ``log_partition_info_``."""
        bounds = self.scaler_.model_bounds
        n_samples = self.n_partition_samples
        if n_samples == "auto":
            n_samples = 256 if self.log_partition == "ais" else 4096
        start = time.perf_counter()
        if self.log_partition == "ais":
            n_temperatures = self.partition_temperatures
            sampler = self._build_part(
                "sampler", self.partition_sampler, None, defaults={"n_steps": 1}
            )
            betas = torch.linspace(0.0, 1.0, n_temperatures + 1, dtype=torch.float64)
            estimate = ais_log_partition(
                self._model_energy(),
                self.flow_,
                sampler,
                n_samples,
                betas,
                self._generator(0),
                bounds,
                target_accept=getattr(sampler, "target_accept", None),
            )
        else:
            n_temperatures = 0
            estimate = log_partition(
                self._model_energy(),
                self.flow_,
                n_samples,
                self._generator(0),
                bounds,
                chunk=self._chunk,
            )
        self.log_partition_ = estimate.log_z
        self.log_partition_se_ = estimate.standard_error
        self.log_partition_info_ = {
            **dataclasses.asdict(estimate),
            "n_samples": int(n_samples),
            "n_temperatures": n_temperatures,
            "seconds": time.perf_counter() - start,
        }

    def _prepare(self, X: TrainingData, resume: str | Path | None) -> CoopTrainer:
        """The trainer to run: continued (warm start), restored (resume) or new."""
        if self.warm_start and resume is None and hasattr(self, "_trainer"):
            check_shape(X, self.scaler_)
            self._trainer.reconfigure(
                self._config(self.scaler_, self._trainer.config.data_seed, len(X))
            )
            return self._trainer
        checkpoint = read_checkpoint(resume, X.fingerprint) if resume is not None else None
        device = _resolve_device(self.device)
        if checkpoint is not None:
            scaler = scaler_from_dict(checkpoint["scaler"])
            check_shape(X, scaler)
        else:
            scaler = X.fit_scaler(self.data_range)
        seed = _seed(self.random_state)
        flow, energy, sampler = self._build_parts(scaler, seed)
        world = current_world(self.distributed)
        trainer = CoopTrainer(
            flow.to(device),
            energy.to(device),
            sampler,
            self._config(scaler, seed, len(X)),
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
        self._trainer = trainer
        self._energy_runner = trainer.run_energy
        self.scaler_, self.device_ = scaler, device
        self.settings_ = self._settings(scaler.kind)
        self.flow_, self.energy_, self.sampler_ = trainer.flow, trainer.energy, trainer.sampler
        self.n_features_in_ = int(np.prod(X.shape[1:]))
        self.history_ = trainer.history
        self._data_fingerprint = X.fingerprint
        return trainer

    def _run(self, trainer: CoopTrainer, data: torch.Tensor) -> None:
        callbacks: list[Callable[[CoopTrainer], None]] = []
        if self.checkpoint_dir is not None and trainer.world.is_main:
            callbacks.append(self._checkpoint)
        total = trainer.config.pretrain_iter + trainer.config.n_iter
        verbose = self.verbose and trainer.world.is_main
        if verbose:
            from tqdm.auto import tqdm

            bar = tqdm(total=total, initial=trainer.iteration, desc="CoopFlow", unit="it")

            def progress(t: CoopTrainer) -> None:
                bar.update(1)
                last = {k: v[-1] for k, v in t.history.items() if k in ("flow_nll", "revision")}
                bar.set_postfix({k: f"{v:.3g}" for k, v in last.items()}, refresh=False)

            callbacks.append(progress)
        try:
            trainer.run(data, lambda t: [callback(t) for callback in callbacks])
        finally:
            if verbose:
                bar.close()

    def _checkpoint(self, trainer: CoopTrainer) -> None:
        total = trainer.config.pretrain_iter + trainer.config.n_iter
        if trainer.iteration % self.checkpoint_every == 0 or trainer.iteration == total:
            write_checkpoint(
                Path(self.checkpoint_dir) / CHECKPOINT_NAME,
                {
                    "scaler": scaler_to_dict(self.scaler_),
                    "trainer": trainer.state_dict(),
                    "data": self._data_fingerprint,
                },
            )

    def save(self, path: str | Path) -> Path:
        """Write the fitted model to one file, atomically.

        Parameters are stored as JSON, the fitted state as plain values, the weights as
        state dicts; :meth:`load` reads it without unpickling arbitrary objects. Parts
        must be given by registered name. The optimisers' state is not kept: to continue
        training later, use ``checkpoint_dir`` and ``fit(X, resume=...)``.
        """
        check_is_fitted(self)
        specs = self._part_specs(self.scaler_.kind)
        unnamed = [kind for kind, spec in specs.items() if not isinstance(spec, str)]
        if unnamed:
            raise ValueError(
                f"save needs parts given by registered name; {', '.join(unnamed)} "
                "is not. Register the part (coopkit.register_plugin) or pickle the model."
            )
        parts = {
            kind: {"name": name, "origin": registry.resolve(kind, name).origin}
            for kind, name in specs.items()
        }
        return write_model(
            path,
            {
                "params": to_json(self.get_params(deep=False)),
                "parts": parts,
                "scaler": scaler_to_dict(self.scaler_),
                "flow": {k: v.cpu() for k, v in self.flow_.state_dict().items()},
                "energy": {k: v.cpu() for k, v in self.energy_.state_dict().items()},
                "sampler": sampler_state(self.sampler_),
                "fitted": {name: getattr(self, name) for name in _SAVED_ATTRIBUTES},
            },
        )

    @classmethod
    def load(cls, path: str | Path, device: str | None = None) -> CoopFlow:
        """Read a model written by :meth:`save`, onto ``device`` (default: the saved
        device when it is available here, else the CPU).

        Raises:
            ValueError: the file is corrupt or truncated, or not a coopkit model.
            UnknownPartError: a part's plugin is not installed (the message names both).
        """
        payload = read_model(path)
        params = json.loads(payload["params"])
        if params.get("data_range") is not None:
            params["data_range"] = tuple(params["data_range"])
        model = cls(**params)
        if device is None:
            saved = str(params.get("device", "auto"))
            device = saved if saved in ("auto", "cpu") or torch.cuda.is_available() else "cpu"
        model.device = device
        for kind, part in payload["parts"].items():
            try:
                registry.resolve(kind, part["name"])
            except registry.UnknownPartError as exc:
                raise registry.UnknownPartError(
                    f"This model needs the {kind} {part['name']!r} from {part['origin']}, "
                    f"which is not installed here; install {part['origin'].split()[0]!r} "
                    f"and load again. ({exc})"
                ) from exc
        scaler = scaler_from_dict(payload["scaler"])
        model.scaler_, model.device_ = scaler, _resolve_device(device)
        model.settings_ = model._settings(scaler.kind)
        flow, energy, sampler = model._build_parts(scaler, seed=0)
        flow.load_state_dict(payload["flow"])
        energy.load_state_dict(payload["energy"])
        for name, value in payload["sampler"].items():
            setattr(sampler, name, value)
        model.flow_ = flow.to(model.device_)
        model.energy_ = energy.to(model.device_)
        model.sampler_ = sampler
        for name, value in payload["fitted"].items():
            setattr(model, name, value)
        return model

    def _runner(self) -> EnergyRunner:
        """The fitted energy net in the estimator's precision, compiled once if asked."""
        if getattr(self, "_energy_runner", None) is None:
            self._energy_runner = EnergyRunner(self.energy_, self.precision, self.compile)
        return self._energy_runner

    def _langevin_flow(self) -> Sampler:
        """The sampler that :meth:`reconstruct`, :meth:`inpaint` and :meth:`interpolate`
        run in data space: the fitted one, or, when the fitted reviser runs in the flow's
        latent space (``energy_base="flow"``), the noise-free Langevin flow of
        :data:`coopkit.defaults.RECONSTRUCTION_LANGEVIN` on the tilted energy."""
        if self.settings_["energy_base"] == "uniform":
            return self.sampler_
        params = defaults.SAMPLER_PARAMS.get((self.scaler_.kind, "langevin"), {})
        return LangevinSampler(
            **{**params, **defaults.RECONSTRUCTION_LANGEVIN}, bounds=self.scaler_.model_bounds
        )

    def _model_energy(self, compiled: bool = True) -> nn.Module:
        """The fitted model's energy in data space (tilted by the flow with
        ``energy_base="flow"``); ``compiled=False`` for reconstruction, which
        back-propagates through the sampler (compiled graphs do not support that)."""
        runner = self._runner() if compiled else EnergyRunner(self.energy_, self.precision)
        return score_energy(runner, self.flow_, self.settings_["energy_base"])

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state.pop("_energy_runner", None)
        trainer = state.pop("_trainer", None)
        if trainer is not None and not self.compile:
            state["_trainer"] = trainer
        return state

    @property
    def _chunk(self) -> int:
        return min(_CHUNK[1], max(_CHUNK[0], 4 * int(self.batch_size)))

    def _generator(self, random_state: Any) -> torch.Generator:
        return torch.Generator().manual_seed(_seed(random_state))

    def _to_model(self, X: Any, name: str = "X") -> torch.Tensor:
        check_is_fitted(self)
        X = check_array(X, name=name)
        check_shape(X, self.scaler_, name=name)
        V = self.scaler_.to_model(X) + 0.5 * self.scaler_.dequantize_width
        return torch.as_tensor(V, dtype=torch.float32, device=self.device_)

    def _to_data(self, V: torch.Tensor) -> np.ndarray:
        return self.scaler_.to_data(V.detach().cpu().double().numpy())

    def sample(
        self, n_samples: int = 1, random_state: Any = None, *, revise: bool = True
    ) -> np.ndarray:
        """Draw ``n_samples`` from the model, in the layout and units of the training data.

        Args:
            n_samples: number of samples.
            random_state: seed for this draw (``None``: fresh randomness).
            revise: run the sampler on the flow's proposals (the CoopFlow generator);
                ``False`` returns the flow's proposals alone.

        Returns:
            ``(n_samples, *sample_shape)`` float array.
        """
        check_is_fitted(self)
        if not isinstance(n_samples, (int, np.integer)) or n_samples < 1:
            raise ValueError(f"n_samples must be a positive integer; got {n_samples!r}.")
        generator = self._generator(random_state)
        base = self.settings_["energy_base"]
        chunks = []
        for start in range(0, n_samples, self._chunk):
            m = min(self._chunk, n_samples - start)
            starts = propose(
                self.flow_, m, generator, self.proposal, self.scaler_.model_bounds, base == "flow"
            )
            if revise:
                x = revise_proposals(
                    self.flow_, self._runner(), self.sampler_, starts, base, generator
                )[1]
            else:
                x = decode(self.flow_, starts, base)
            chunks.append(x)
        return self._to_data(torch.cat(chunks))

    def flow_score_samples(self, X: Any) -> np.ndarray:
        """The flow's exact log-density ``log q_α(x)`` of each sample, in data units, ``(n,)``.

        Integer-valued images are scored at the centre of each level's dequantisation
        interval (width 1 in data units, so this approximates the level's log-probability).
        """
        V = self._to_model(X)
        with torch.no_grad():
            log_q = chunked(self.flow_.log_prob, V, self._chunk)
        return log_q.cpu().double().numpy() + self.scaler_.log_abs_det()

    def score_samples(self, X: Any) -> np.ndarray:
        """The energy model's log-density ``-E_θ(x) - log Z`` of each sample, in data units.

        The energy model's support is the box its chains are kept in (``[-1, 1]`` for
        images in model units; the training data's range plus one standard deviation
        for tables): samples outside it score ``-inf``. ``log Z`` is
        :attr:`log_partition_`, estimated after ``fit`` by importance sampling from the
        flow (standard error :attr:`log_partition_se_`). The flow's own exact
        log-density is :meth:`flow_score_samples`. Returns ``(n,)``.
        """
        V = self._to_model(X)
        with torch.no_grad():
            energies = chunked(self._model_energy(), V, self._chunk).double()
        energies = energies.masked_fill(~in_box(V, self.scaler_.model_bounds), math.inf)
        log_p = -energies.cpu().numpy() - self.log_partition_
        return log_p + self.scaler_.log_abs_det()

    def score(self, X: Any, y: None = None) -> float:
        """Mean log-density of ``X`` under the energy model (see :meth:`score_samples`)."""
        return float(np.mean(self.score_samples(X)))

    def bits_per_dim(self, X: Any) -> dict[str, float]:
        """Negative log-likelihood of integer-valued images ``X`` in bits per dimension,
        the unit image models are compared in, of the flow and of the energy model.

        Densities are those of the dequantised data, in units where each level is an
        interval of width 1, at the interval's centre (:meth:`flow_score_samples`,
        :meth:`score_samples`): ``-mean log p(x) / (D log 2)`` over ``D`` pixel values.
        The energy model's figure inherits the error of ``log Z``, reported as
        ``"energy_se"`` (:attr:`log_partition_se_` in bits per dimension). :meth:`score`
        stays one float, the mean log-density, as scikit-learn's model selection expects.

        Returns:
            ``{"flow": ..., "energy": ..., "energy_se": ...}``.

        Raises:
            ValueError: for tables or continuous-valued images, whose levels are unknown.
        """
        check_is_fitted(self)
        if self.scaler_.kind != "image" or not self.scaler_.integer:
            raise ValueError(
                "bits_per_dim needs integer-valued images (levels such as 0..255), whose "
                "dequantised density has a unit; this model was fitted on "
                f"{'a table' if self.scaler_.kind == 'table' else 'continuous images'}. "
                "Use score_samples for a log-density in data units."
            )
        scale = -1.0 / (math.prod(self.scaler_.input_shape) * math.log(2.0))
        return {
            "flow": float(np.mean(self.flow_score_samples(X))) * scale,
            "energy": float(np.mean(self.score_samples(X))) * scale,
            "energy_se": self.log_partition_se_ * -scale,
        }

    def transform(self, X: Any) -> np.ndarray:
        """The flow's latent codes ``z = g_α⁻¹(x)``, shaped like ``X``.

        Example:
            >>> from coopkit.datasets import moons
            >>> model = CoopFlow(n_iter=2, batch_size=32, random_state=0).fit(moons(64, 0))
            >>> X = moons(5, 1)
            >>> bool(np.allclose(model.inverse_transform(model.transform(X)), X, atol=1e-5))
            True
        """
        V = self._to_model(X)
        with torch.no_grad():
            Z = chunked(lambda v: self.flow_(v)[0], V, self._chunk)
        return Z.cpu().double().numpy().reshape(len(V), *self.scaler_.input_shape)

    def inverse_transform(self, Z: Any) -> np.ndarray:
        """Data ``x = g_α(z)`` of latent codes shaped like the training samples (no Langevin)."""
        check_is_fitted(self)
        Z = check_array(Z, name="Z")
        check_shape(Z, self.scaler_, name="Z")
        z = torch.as_tensor(Z, dtype=torch.float32, device=self.device_)
        with torch.no_grad():
            V = chunked(
                lambda v: self.flow_.inverse(v)[0],
                z.reshape(len(z), *self.flow_.event_shape),
                self._chunk,
            )
        return self._to_data(V)

    def _reconstruct(
        self,
        target: torch.Tensor,
        x0: torch.Tensor,
        mask: torch.Tensor | None,
        n_iter: int,
        lr: float,
        seed: int,
    ) -> Reconstruction:
        if not isinstance(n_iter, (int, np.integer)) or n_iter < 0:
            raise ValueError(f"n_iter must be a non-negative integer; got {n_iter!r}.")
        if not lr > 0:
            raise ValueError(f"lr must be positive; got {lr!r}.")
        energy = self._model_energy(compiled=False)
        parts = []
        for i in range(0, len(target), self.reconstruct_batch_size):
            rows = slice(i, i + self.reconstruct_batch_size)
            parts.append(
                reconstruct(
                    energy,
                    self._langevin_flow(),
                    target[rows],
                    x0[rows],
                    mask=None if mask is None else mask[rows],
                    n_iter=n_iter,
                    lr=lr,
                    bounds=self.scaler_.model_bounds,
                    seed=seed,
                )
            )
        return Reconstruction(
            *(
                torch.cat([getattr(p, f) for p in parts])
                for f in ("x0", "x", "initial_error", "error")
            )
        )

    def reconstruct(
        self,
        X: Any,
        n_iter: int = 200,
        lr: float = 0.01,
        *,
        init: str = "inverse",
        random_state: Any = None,
        return_error: bool = False,
    ) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """Reconstruct ``X`` with the generator "flow, then Langevin flow" (DESIGN §1).

        Optimises the Langevin flow's input ``x0`` by Adam on ``‖x − L(x0)‖²`` (model
        units), back-propagating through every Langevin step. ``init="inverse"`` starts
        at ``x0 = g_α(g_α⁻¹(x))`` (which is ``x`` itself, the flow being invertible): the
        generator's input that the flow maps to ``x``, so the descent only has to undo
        the Langevin revision and converges fastest. ``init="sample"`` starts from a flow
        sample, as when asking whether the generator can reach ``x`` at all.

        Memory grows linearly with the number of Langevin steps (the graph of every step
        is kept); batches of ``reconstruct_batch_size`` samples bound it.

        Returns:
            The reconstructions, shaped like ``X``; with ``return_error=True`` also the
            per-sample squared error ``(n,)`` in model units.
        """
        target = self._to_model(X)
        if init == "inverse":
            x0 = target
        elif init == "sample":
            x0 = propose(self.flow_, len(target), self._generator(random_state))
        else:
            raise ValueError(f"init must be 'inverse' or 'sample'; got {init!r}.")
        result = self._reconstruct(target, x0, None, n_iter, lr, _seed(random_state))
        recon = self._to_data(result.x)
        return (recon, result.error.cpu().double().numpy()) if return_error else recon

    def inpaint(
        self,
        X: Any,
        mask: Any,
        n_completions: int = 4,
        n_iter: int = 200,
        lr: float = 0.01,
        *,
        random_state: Any = None,
    ) -> np.ndarray:
        """Complete the unobserved entries of ``X``; several completions per sample.

        ``mask`` is 1 where ``X`` is observed, shaped like ``X`` or like one sample. Each
        completion starts the Langevin flow's input from a different flow sample (with
        the observed entries set to the data) and fits it on the observed entries only;
        the observed entries of the output are those of ``X``, exactly.

        Returns:
            ``(n, n_completions, *sample_shape)`` array.
        """
        target = self._to_model(X)
        observed = np.broadcast_to(np.asarray(mask), np.shape(X)).astype(bool)
        if not isinstance(n_completions, (int, np.integer)) or n_completions < 1:
            raise ValueError(f"n_completions must be a positive integer; got {n_completions!r}.")
        m = torch.as_tensor(
            observed.reshape(target.shape), dtype=target.dtype, device=target.device
        )
        n = len(target)
        starts = propose(self.flow_, n * n_completions, self._generator(random_state))
        starts = starts.reshape(n_completions, n, *target.shape[1:])
        x0 = (m * target + (1 - m) * starts).reshape(-1, *target.shape[1:])
        repeat = (n_completions,) + (1,) * (target.dim() - 1)
        result = self._reconstruct(
            target.repeat(repeat), x0, m.repeat(repeat), n_iter, lr, _seed(random_state)
        )
        completed = self._to_data(result.x).reshape(n_completions, *np.shape(X))
        completed = np.where(observed, np.asarray(X, dtype=np.float64), completed)
        return np.moveaxis(completed, 0, 1)

    def interpolate(
        self,
        x_a: Any,
        x_b: Any,
        n_points: int = 8,
        n_iter: int = 200,
        lr: float = 0.01,
        *,
        random_state: Any = None,
    ) -> np.ndarray:
        """Interpolate between two samples through the generator's latent space.

        Reconstructs both ends, maps their Langevin-flow inputs ``x0`` to latent codes
        with the flow, interpolates the codes linearly, and decodes each with the flow
        and then the Langevin flow. The end points equal :meth:`reconstruct`'s results.

        Returns:
            ``(n_points, *sample_shape)`` array.
        """
        if not isinstance(n_points, (int, np.integer)) or n_points < 2:
            raise ValueError(f"n_points must be an integer >= 2; got {n_points!r}.")
        ends = np.stack([np.asarray(x_a, dtype=np.float64), np.asarray(x_b, dtype=np.float64)])
        seed = _seed(random_state)
        result = self._reconstruct(
            self._to_model(ends), self._to_model(ends), None, n_iter, lr, seed
        )
        with torch.no_grad():
            z = self.flow_(result.x0)[0]
            t = torch.linspace(0, 1, n_points, device=z.device).view(-1, *([1] * (z.dim() - 1)))
            x0 = self.flow_.inverse((1 - t) * z[:1] + t * z[1:])[0].clamp(
                *self.scaler_.model_bounds
            )
        generator = torch.Generator().manual_seed(seed)
        x = self._langevin_flow()(self._model_energy(compiled=False), x0, generator=generator).x
        return self._to_data(x)

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "flow_")
