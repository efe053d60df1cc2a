"""The cooperative trainer: its iteration (:meth:`CoopTrainer.coop_step`,
:meth:`CoopTrainer.pretrain_step`), the all-or-nothing check that stops a diverging run,
and its whole state for checkpoints. The loop itself is described in
:mod:`coopkit.training`, its hyper-parameters in :mod:`coopkit.training.config`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import DistributedSampler

from coopkit.distributed import World, mean_across, wrap
from coopkit.flows.base import Flow
from coopkit.samplers.base import Sampler
from coopkit.training.config import TrainingConfig, TrainingDivergedError
from coopkit.training.energy import EnergyRunner, FlowLogProb, propose, revise_proposals
from coopkit.training.schedules import LearningRateFactor, adapted_step_size


class CoopTrainer:
    """Trains a flow and an energy net together; ``history`` holds one row per iteration.

    The trainer holds every piece of state a run needs to continue exactly where it
    stopped (weights, optimisers, warm-up schedules, the generator, the position in the
    current pass over the data, the history): :meth:`state_dict` and
    :meth:`load_state_dict` save and restore it, and :meth:`run` may be called again
    with a larger ``n_iter`` (warm start) with the same result as one longer run.

    An iteration either completes for both models or changes neither: no optimiser steps
    until both models' losses and gradients (and the revised samples) are finite, so the
    weights are always those of the last completed iteration. On a failure :meth:`run`
    raises :class:`~coopkit.training.config.TrainingDivergedError`, or with
    ``on_divergence="restore"`` halves the sampler's step size and repeats the iteration
    on the same batch (``restored`` in the history says where), at most ``max_restores``
    times.

    Args:
        flow: the normalizing flow ``g_α``; data-dependent initialisation on the first batch.
        energy: the energy net ``E_θ``, ``(n, *event) -> (n,)``.
        sampler: the Langevin flow (any :class:`~coopkit.samplers.base.Sampler`).
        config: the hyper-parameters.
        generator: the source of all randomness (batches, latents, dequantisation, noise).
    """

    max_restores = 10
    adapt_rate = 0.1

    def __init__(
        self,
        flow: Flow,
        energy: nn.Module,
        sampler: Sampler,
        config: TrainingConfig,
        generator: torch.Generator,
        world: World | None = None,
    ) -> None:
        world = world or World()
        if config.batch_size % world.size:
            raise ValueError(
                f"batch_size={config.batch_size} must be a multiple of the {world.size} "
                "processes: each trains on an equal share of every batch."
            )
        if config.target_revision is not None and not hasattr(sampler, "step_size"):
            raise ValueError(
                f"target_revision adapts the sampler's step_size, which "
                f"{type(sampler).__name__} does not have; use a sampler with a step size "
                "(langevin, mala, pcn, hmc) or target_revision=None."
            )
        self.flow = flow
        self.energy = energy
        self.run_energy = EnergyRunner(energy, config.precision, config.compile)
        self.sampler = sampler
        self.config = config
        self.generator = generator
        self.world = world
        self.device = next(flow.parameters()).device
        self.flow_loss = wrap(FlowLogProb(flow), world, self.device)
        self.energy_loss = wrap(self.run_energy, world, self.device)
        self.flow_optimizer = torch.optim.Adam(
            flow.parameters(), lr=config.flow_lr, betas=config.flow_betas
        )
        self.energy_optimizer = torch.optim.Adam(
            energy.parameters(), lr=config.energy_lr, betas=config.energy_betas
        )
        self.flow_scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.flow_optimizer,
            LearningRateFactor(config.warmup_iter, self._decay(config.pretrain_iter)),
        )
        self.energy_scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.energy_optimizer, LearningRateFactor(config.warmup_iter, self._decay(0))
        )
        self.iteration = 0
        self.restores = 0
        self.restored_now = False
        self.history: dict[str, list[float]] = {}
        self.epoch = 0
        self._position = 0
        self._shard = torch.empty(0, dtype=torch.long)

    def reconfigure(self, config: TrainingConfig) -> None:
        """Continue under ``config`` (a warm start with a larger ``n_iter``): the learning-rate
        factors are re-planned for its length, so a cosine decay runs to 0 over the new
        total from where it is (such a run then differs from one uninterrupted run)."""
        self.config = config
        self.flow_scheduler.lr_lambdas = [
            LearningRateFactor(config.warmup_iter, self._decay(config.pretrain_iter))
        ]
        self.energy_scheduler.lr_lambdas = [LearningRateFactor(config.warmup_iter, self._decay(0))]

    def _decay(self, extra_steps: int) -> int:
        """Steps of the cosine decay (0: none) for an optimiser that also takes
        ``extra_steps`` before the cooperative iterations."""
        return self.config.n_iter + extra_steps if self.config.lr_schedule == "cosine" else 0

    @property
    def local_batch_size(self) -> int:
        return self.config.batch_size // self.world.size

    def _next_batch(self, data: Tensor) -> Tensor:
        """This rank's share of the next global batch: passes over ``data`` in the order
        of a :class:`~torch.utils.data.DistributedSampler` (seeded, epoch set each pass,
        last partial batch dropped), so that the shares of all ranks together are the
        batch one process would take."""
        m = self.local_batch_size
        if self._position + m > len(self._shard):
            sampler = DistributedSampler(
                range(len(data)),
                num_replicas=self.world.size,
                rank=self.world.rank,
                shuffle=True,
                seed=self.config.data_seed,
                drop_last=True,
            )
            sampler.set_epoch(self.epoch)
            self._shard = torch.tensor(list(sampler), dtype=torch.long)
            self.epoch += 1
            self._position = 0
        rows = self._shard[self._position : self._position + m]
        self._position += m
        return data[rows.to(data.device)]

    def _global_draw(self, draw: Callable[..., Tensor], shape: tuple[int, ...]) -> Tensor:
        """``draw`` of a whole global batch (on every rank alike); this rank's rows: those
        of its samples, which a DistributedSampler interleaves (rank, rank + size, ...)."""
        full = draw((self.config.batch_size, *shape), generator=self.generator, device="cpu")
        return full[self.world.rank :: self.world.size]

    def _dequantize(self, batch: Tensor) -> Tensor:
        width = self.config.dequantize_width
        if not any(width if isinstance(width, tuple) else (width,)):
            return batch
        u = self._global_draw(torch.rand, tuple(batch.shape[1:]))
        return batch + self._width(batch) * u.to(batch.device, batch.dtype)

    def _width(self, batch: Tensor) -> Tensor:
        """``dequantize_width`` (one number, or one per table column) as a tensor."""
        return torch.as_tensor(self.config.dequantize_width, dtype=batch.dtype, device=batch.device)

    def propose(self) -> Tensor:
        """This rank's chain starts for one iteration: flow samples ``g_α(z)`` for its
        part of the global batch's latent codes (the codes themselves with
        ``energy_base="flow"``), or uniform noise (see :func:`~coopkit.training.energy.propose`)."""
        if self.config.proposal == "noise":
            return propose(
                self.flow, self.local_batch_size, self.generator, "noise", self.config.noise_bounds
            )
        reference = next(self.flow.parameters())
        z = self._global_draw(torch.randn, self.flow.event_shape)
        z = z.to(reference.device, reference.dtype)
        if self.config.energy_base == "flow":
            return z
        with torch.no_grad():
            return self.flow.inverse(z)[0]

    def _gradients(
        self, loss: Tensor, optimizer: torch.optim.Optimizer, clip: float | None
    ) -> Tensor:
        """Back-propagate ``loss`` into freshly zeroed gradients of ``optimizer``'s
        parameters, clipped to norm ``clip`` (``None`` or 0: not clipped); their norm
        before clipping, a 0-dim tensor left on the device (read later, in one transfer
        with the step's other scalars)."""
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        parameters = [p for group in optimizer.param_groups for p in group["params"]]
        if clip:
            return nn.utils.clip_grad_norm_(parameters, clip)
        return gradient_norm(parameters)

    @torch.no_grad()
    def _fetch(self, checked: list[Tensor], row: dict[str, Tensor | float]) -> list[float]:
        """``checked`` and then ``row``'s values as floats, the row's averaged across
        processes, in one device-to-host transfer (one host sync on a GPU)."""
        values = [*checked, *row.values()]
        if self.world.size > 1:
            local = [torch.as_tensor(v, dtype=torch.float64, device=self.device) for v in values]
            n = len(checked)
            stacked = torch.stack(local)
            return torch.cat([stacked[:n], mean_across(stacked[n:], self.world)]).tolist()
        tensors = [v.to(self.device) for v in values if isinstance(v, Tensor)]
        fetched = iter(torch.stack(tensors).tolist())
        return [next(fetched) if isinstance(v, Tensor) else float(v) for v in values]

    def _conclude(
        self,
        checked: dict[str, Tensor],
        steps: list[tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]],
        row: dict[str, Tensor | float] | None,
        phase: str = "coop",
    ) -> None:
        """Read ``checked`` (losses and gradient norms, by the names an error gives them)
        and ``row`` from the device together; raise
        :class:`~coopkit.training.config.TrainingDivergedError` on the first checked value
        that is not finite, before any of the ``steps`` (optimiser, schedule) is taken;
        else take them all and, unless ``row`` is ``None`` (the iteration goes on), append
        ``row`` to the history."""
        values = self._fetch(list(checked.values()), row or {})
        for name, value in zip(checked, values[: len(checked)], strict=True):
            if not math.isfinite(value):
                raise TrainingDivergedError(self.iteration, name)
        for optimizer, scheduler in steps:
            optimizer.step()
            scheduler.step()
        if row is None:
            return
        recorded = {
            "iteration": float(self.iteration),
            "pretrain": float(phase == "pretrain"),
            "restored": float(self.restored_now),
            **dict(zip(row, values[len(checked) :], strict=True)),
        }
        for name, value in recorded.items():
            self.history.setdefault(name, []).append(value)

    def pretrain_step(self, batch: Tensor) -> None:
        """One maximum-likelihood step of the flow on data (CoopFlow(Pre))."""
        nll = -self.flow_loss(self._dequantize(batch)).mean()
        grad_norm = self._gradients(nll, self.flow_optimizer, self.config.flow_grad_clip)
        checked = {"flow_nll": nll, "gradient of flow_nll": grad_norm}
        steps = [(self.flow_optimizer, self.flow_scheduler)]
        self._conclude(checked, steps, {"flow_nll": nll}, "pretrain")

    def coop_step(self, batch: Tensor) -> None:
        """One cooperative iteration (steps 1-4 of the module docstring), all or nothing.

        Both models' gradients are computed before either steps (the flow's loss does
        not depend on the energy's weights), so a non-finite value anywhere leaves both
        unchanged. Scalars cross from the device twice: the energy's loss and gradient
        norm and the revised samples' finiteness first (the flow must not see non-finite
        samples: image flows refuse them), then the flow's with the whole history row."""
        x_data = self._dequantize(batch)
        proposal, revised, stats = revise_proposals(
            self.flow,
            self.run_energy,
            self.sampler,
            self.propose(),
            self.config.energy_base,
            self.generator,
        )
        energies = self.energy_loss(torch.cat([x_data, revised]))
        energy_data = energies[: len(x_data)].mean()
        energy_revised = energies[len(x_data) :].mean()
        loss = energy_data - energy_revised
        if self.config.energy_l2 > 0:
            loss = loss + self.config.energy_l2 * energies.square().mean()
        checked = {
            "energy": loss,
            "gradient of energy": self._gradients(loss, self.energy_optimizer, None),
            "revised samples": torch.where(torch.isfinite(revised).all(), 0.0, math.nan),
        }
        steps = [(self.energy_optimizer, self.energy_scheduler)]
        row: dict[str, Tensor | float] = {}
        if self.config.proposal == "flow":
            self._conclude(checked, [], None)
            nll = -self.flow_loss(self._flow_target(x_data, revised)).mean()
            grad_norm = self._gradients(nll, self.flow_optimizer, self.config.flow_grad_clip)
            checked = {"flow_nll": nll, "gradient of flow_nll": grad_norm}
            steps.append((self.flow_optimizer, self.flow_scheduler))
            row["flow_nll"] = nll
        row["energy_data"] = energy_data
        row["energy_revised"] = energy_revised
        row["revision"] = (revised - proposal).flatten(1).norm(dim=1).mean()
        row.update({f"sampler_{k}": v for k, v in stats.items()})
        self._conclude(checked, steps, row)
        if self.config.target_revision is not None:
            self._adapt_step_size(self.history["revision"][-1])

    def _adapt_step_size(self, revision: float) -> None:
        """Move the sampler's step size toward ``config.target_revision`` (see
        :class:`~coopkit.training.config.TrainingConfig` and
        :func:`~coopkit.training.schedules.adapted_step_size`),
        never above the sampler's ``max_step_size`` if it has one."""
        self.sampler.step_size = adapted_step_size(
            self.sampler.step_size,
            revision,
            self.config.target_revision,
            self.adapt_rate,
            getattr(self.sampler, "max_step_size", math.inf),
        )

    def _flow_target(self, x_data: Tensor, revised: Tensor) -> Tensor:
        """The batch the flow's maximum-likelihood step learns from (``flow_learns_from``)."""
        if self.config.flow_learns_from == "data":
            return x_data
        if self.config.flow_learns_from == "both":
            return torch.cat([x_data, revised])
        return revised

    def initialize(self, data: Tensor) -> None:
        """Data-dependent initialisation of the flow on the first global batch of ``data``
        (every rank computes it from the whole batch, so all start alike, as one
        process would)."""
        rows = torch.randperm(len(data), generator=self.generator, device="cpu")
        batch = data[rows[: self.config.batch_size].to(data.device)]
        u = torch.rand(batch.shape, generator=self.generator, device="cpu")
        self.flow.initialize(batch + self._width(batch) * u.to(batch.device, batch.dtype))

    def run(
        self, data: Tensor, callback: Callable[[CoopTrainer], bool | None] | None = None
    ) -> None:
        """Pre-training, then cooperative iterations on ``data`` (``(N, *event)`` in model
        units, on the training device), until ``pretrain_iter + n_iter`` in all, or until
        ``callback``, called after each iteration, returns ``True``."""
        total = self.config.pretrain_iter + self.config.n_iter
        self.restored_now = False
        batch: Tensor | None = None
        while self.iteration < total:
            if batch is None:
                batch = self._next_batch(data)
            try:
                if self.iteration < self.config.pretrain_iter:
                    self.pretrain_step(batch)
                else:
                    self.coop_step(batch)
            except TrainingDivergedError:
                if self.config.on_divergence != "restore" or self.restores >= self.max_restores:
                    raise
                self.restores += 1
                self.sampler.step_size /= 2
                self.restored_now = True
                continue
            batch = None
            self.restored_now = False
            self.iteration += 1
            if callback is not None and callback(self):
                return

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue this run exactly (tensors and plain values)."""
        return {
            "flow": self.flow.state_dict(),
            "energy": self.energy.state_dict(),
            "flow_optimizer": self.flow_optimizer.state_dict(),
            "energy_optimizer": self.energy_optimizer.state_dict(),
            "flow_scheduler": self.flow_scheduler.state_dict(),
            "energy_scheduler": self.energy_scheduler.state_dict(),
            "generator": self.generator.get_state(),
            "sampler": sampler_state(self.sampler),
            "iteration": self.iteration,
            "restores": self.restores,
            "epoch": self.epoch,
            "shard": self._shard,
            "position": self._position,
            "history": self.history,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` saved."""
        self.flow.load_state_dict(state["flow"])
        self.energy.load_state_dict(state["energy"])
        self.flow_optimizer.load_state_dict(state["flow_optimizer"])
        self.energy_optimizer.load_state_dict(state["energy_optimizer"])
        self.flow_scheduler.load_state_dict(state["flow_scheduler"])
        self.energy_scheduler.load_state_dict(state["energy_scheduler"])
        self.generator.set_state(state["generator"])
        for name, value in state["sampler"].items():
            setattr(self.sampler, name, value)
        self.iteration = state["iteration"]
        self.restores = state["restores"]
        self.epoch = state["epoch"]
        self._shard = state["shard"]
        self._position = state["position"]
        self.history.clear()
        self.history.update(state["history"])


def gradient_norm(parameters: list[Tensor]) -> Tensor:
    """The 2-norm of all gradients of ``parameters`` together (0 without any), the norm
    :func:`torch.nn.utils.clip_grad_norm_` returns, without scaling the gradients: a
    0-dim tensor on their device."""
    norms = [torch.linalg.vector_norm(p.grad) for p in parameters if p.grad is not None]
    if not norms:
        return torch.zeros(())
    return torch.linalg.vector_norm(torch.stack(norms))


def sampler_state(sampler: Sampler) -> dict[str, Any]:
    """The sampler's public attributes that are plain values (its settings)."""
    plain = (int, float, bool, str, tuple, list, type(None))
    return {
        name: value
        for name, value in vars(sampler).items()
        if not name.startswith("_") and isinstance(value, plain)
    }
