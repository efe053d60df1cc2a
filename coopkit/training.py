r"""The cooperative training loop of CoopFlow, in plain PyTorch.

One iteration on a data batch :math:`x_{1..m}` (:meth:`CoopTrainer.coop_step`):

1. propose :math:`\hat{x} = g_\alpha(z)`, :math:`z \sim \mathcal{N}(0, I)` (no gradient);
2. revise :math:`\hat{x}` with the sampler (``T`` Langevin steps toward
   :math:`p_\theta \propto e^{-E_\theta}`), giving :math:`\tilde{x}`;
3. EBM step on :math:`\overline{E_\theta(x)} - \overline{E_\theta(\tilde{x})}`;
4. flow step on :math:`-\overline{\log q_\alpha(\tilde{x})}`.

CoopFlow(Pre) first runs ``pretrain_iter`` maximum-likelihood steps of the flow on the
data. Both optimisers are Adam with linear learning-rate warm-up; the flow's gradient
norm is clipped. An iteration either completes for both models or changes neither: both
losses and gradient norms are checked before either optimiser steps, and a non-finite
one stops the loop with :class:`TrainingDivergedError`, leaving the weights of the last
completed iteration.
This module never imports scikit-learn.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import Tensor, nn
from torch.utils.data import DistributedSampler

from coopkit.distributed import World, mean_across, wrap
from coopkit.flows.base import Flow
from coopkit.samplers.base import Sampler

Precision = Literal["float32", "bfloat16"]


class TrainingDivergedError(RuntimeError):
    """A loss, gradient or revised sample became NaN or infinite; neither model took that
    iteration's step, so both keep the weights of the last completed iteration."""

    def __init__(self, iteration: int, quantity: str) -> None:
        self.iteration = iteration
        self.quantity = quantity
        super().__init__(
            f"Training diverged at iteration {iteration}: {quantity} is not finite. Both models "
            "keep the weights of the last completed iteration. Likely causes: a Langevin "
            "step_size too large for the energy's gradients, or learning rates too high; lower "
            "them (sampler_params={'step_size': ...}, energy_lr, flow_lr) and fit again."
        )


@dataclass(frozen=True)
class TrainingConfig:
    r"""Hyper-parameters of the loop; defaults are the paper's released settings.

    ``proposal="noise"`` starts every chain from uniform noise in ``noise_bounds``
    instead of the flow, and leaves the flow untrained: the short-run EBM of
    Nijkamp et al. (2019), the non-cooperative baseline CoopFlow improves on.
    ``flow_learns_from`` is what the flow's maximum-likelihood step sees: the revised
    samples (``"revised"``, the paper), the data batch (``"data"``), or both batches
    together (``"both"``). ``energy_l2`` adds
    :math:`\lambda` times the mean squared energy over the data and revised batches
    together to the EBM's loss (Du & Mordatch, 2019), which keeps the energies near 0
    without changing where they are low. ``energy_base="flow"`` makes the EBM an
    exponential tilt of the flow,
    :math:`p(x) \propto q_\alpha(x)\,e^{-E_\theta(x)}` (see :class:`FlowTiltedEnergy`);
    ``"uniform"`` is the paper's :math:`p(x) \propto e^{-E_\theta(x)}` on the chains' box.
    ``target_revision`` adapts the sampler's ``step_size`` during training toward a
    mean revision (how far each chain moves, the norm of revised minus proposal, in
    model units): after each iteration it is multiplied by
    :math:`(r^\star / \bar r)^{0.1}`, clamped to [0.5, 2], where :math:`\bar r` is the
    iteration's mean revision (across processes). ``None`` keeps the step fixed.
    """

    n_iter: int
    batch_size: int
    flow_lr: float = 1e-4
    energy_lr: float = 1e-4
    flow_betas: tuple[float, float] = (0.9, 0.999)
    energy_betas: tuple[float, float] = (0.5, 0.5)
    warmup_iter: int = 0
    lr_schedule: Literal["constant", "cosine"] = "constant"
    flow_grad_clip: float | None = 1.0
    pretrain_iter: int = 0
    dequantize_width: float = 0.0
    precision: Precision = "float32"
    compile: bool = False
    on_divergence: Literal["raise", "restore"] = "raise"
    data_seed: int = 0
    proposal: Literal["flow", "noise"] = "flow"
    noise_bounds: tuple[float, float] = (-1.0, 1.0)
    flow_learns_from: Literal["revised", "data", "both"] = "revised"
    energy_l2: float = 0.0
    energy_base: Literal["uniform", "flow"] = "uniform"
    target_revision: float | None = None


class FlowLogProb(nn.Module):
    """``flow.log_prob`` as a module's forward, so that DistributedDataParallel sees it."""

    def __init__(self, flow: Flow) -> None:
        super().__init__()
        self.flow = flow

    def forward(self, x: Tensor) -> Tensor:
        return self.flow.log_prob(x)


class EnergyRunner(nn.Module):
    """Runs an energy net in the chosen precision and, optionally, compiled.

    ``bfloat16`` autocasts the energy net's forward pass (the Langevin loop's cost);
    energies come back in ``float32`` and the chains stay ``float32``. The flow always
    runs in ``float32``: its log-determinants sum thousands of terms and lose too much
    in bfloat16. ``compile=True`` wraps the net in :func:`torch.compile`; compiled
    graphs do not support double backward, so reconstruction uses the plain net.
    """

    def __init__(self, energy: nn.Module, precision: Precision = "float32", compile: bool = False):
        super().__init__()
        self.energy = energy
        self.precision = precision
        self.compiled = torch.compile(energy) if compile else energy

    def forward(self, x: Tensor) -> Tensor:
        if self.precision == "float32":
            return self.compiled(x)
        with torch.autocast(x.device.type, dtype=torch.bfloat16):
            return self.compiled(x).float()


class FlowTiltedEnergy(nn.Module):
    r"""The energy of an EBM whose base measure is the flow: :math:`E(x) - \log q_\alpha(x)`.

    The model :math:`p(x) \propto q_\alpha(x)\,e^{-E_\theta(x)}` starts where the flow is
    (an energy net near 0 leaves it unchanged), so the energy net only has to learn
    where the flow is wrong, :math:`E_\theta \approx \log q_\alpha - \log p_{\rm data}`.
    This is the data-space form, used for scores, ``log Z`` and reconstruction;
    sampling uses the same model in the flow's latent space (:class:`LatentEnergy`).
    ``(n, *event)`` to ``(n,)``.

    References:
        Xiao, Kreis, Kautz & Vahdat, "VAEBM: A Symbiosis between Variational
        Autoencoders and Energy-based Models", ICLR 2021. https://arxiv.org/abs/2010.00654
    """

    def __init__(self, energy: nn.Module, flow: Flow) -> None:
        super().__init__()
        self.energy = energy
        self.flow = flow

    def forward(self, x: Tensor) -> Tensor:
        return self.energy(x) - self.flow.log_prob(x)


class LatentEnergy(nn.Module):
    r"""The flow-tilted EBM in the flow's latent space: :math:`U(z) = E_\theta(g_\alpha(z))
    + \tfrac12 \lVert z \rVert^2`.

    If :math:`z \sim e^{-U}` then :math:`g_\alpha(z) \sim q_\alpha\, e^{-E_\theta}` (the
    log-determinants of the change of variables cancel), so chains can run where the
    flow has made the geometry nearly Gaussian. ``(n, *event)`` latents to ``(n,)``.
    """

    def __init__(self, energy: nn.Module, flow: Flow) -> None:
        super().__init__()
        self.energy = energy
        self.flow = flow

    def forward(self, z: Tensor) -> Tensor:
        x = self.flow.inverse(z)[0]
        return self.energy(x) + 0.5 * z.flatten(1).square().sum(dim=1)


def score_energy(energy: nn.Module, flow: Flow, base: Literal["uniform", "flow"]) -> nn.Module:
    """The model's energy in data space: ``energy``, or its flow tilt (``base="flow"``)."""
    return FlowTiltedEnergy(energy, flow) if base == "flow" else energy


@torch.no_grad()
def decode(flow: Flow, starts: Tensor, base: Literal["uniform", "flow"]) -> Tensor:
    """Chain states in data space: latent codes (``base="flow"``) through the flow."""
    return flow.inverse(starts)[0] if base == "flow" else starts


def revise_proposals(
    flow: Flow,
    energy: nn.Module,
    sampler: Sampler,
    starts: Tensor,
    base: Literal["uniform", "flow"],
    generator: torch.Generator,
) -> tuple[Tensor, Tensor, dict[str, float]]:
    """Run the sampler from ``starts``: ``(proposals, revised, stats)`` in data space.

    With ``base="uniform"`` the starts are data-space proposals and the chains run on
    ``energy``; with ``base="flow"`` they are latent codes ``z``, the chains run on
    :class:`LatentEnergy`, and both ends are decoded by the flow.
    """
    target = LatentEnergy(energy, flow) if base == "flow" else energy
    result = sampler(target, starts, generator=generator)
    return decode(flow, starts, base), decode(flow, result.x, base), result.stats


@torch.no_grad()
def propose(
    flow: Flow,
    m: int,
    generator: torch.Generator,
    proposal: Literal["flow", "noise"] = "flow",
    noise_bounds: tuple[float, float] = (-1.0, 1.0),
    latent: bool = False,
) -> Tensor:
    """``(m, *event_shape)`` chain starts: flow samples ``g_α(z)`` (their codes ``z``
    with ``latent=True``), or uniform noise.

    Draws on the CPU from ``generator`` (so results do not depend on the device),
    then moves to the flow's device and dtype.
    """
    reference = next(flow.parameters())
    shape = (m, *flow.event_shape)
    if proposal == "noise":
        low, high = noise_bounds
        u = torch.rand(shape, generator=generator, device="cpu")
        return (low + (high - low) * u).to(reference.device, reference.dtype)
    z = torch.randn(shape, generator=generator, device="cpu").to(reference.device, reference.dtype)
    return z if latent else flow.inverse(z)[0]


@dataclass(frozen=True)
class LearningRateFactor:
    r"""Learning-rate factor: linear warm-up, then constant or a cosine decay to 0.

    ``min(1, (step + 1) / warmup)``, times
    :math:`\tfrac12\big(1 + \cos(\pi \min(1, \mathrm{step} / \mathrm{decay}))\big)`
    when ``decay > 0`` (``decay`` steps in all). Picklable, unlike a lambda.

    Examples:
        >>> factor = LearningRateFactor(warmup=2, decay=4)
        >>> [round(factor(step), 3) for step in range(5)]
        [0.5, 0.854, 0.5, 0.146, 0.0]
    """

    warmup: int
    decay: int = 0

    def __call__(self, step: int) -> float:
        factor = min(1.0, (step + 1) / self.warmup) if self.warmup > 0 else 1.0
        if self.decay > 0:
            factor *= 0.5 * (1.0 + math.cos(math.pi * min(1.0, step / self.decay)))
        return factor


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
    raises :class:`TrainingDivergedError`, or with ``on_divergence="restore"`` halves the
    sampler's step size and repeats the iteration on the same batch (``restored`` in the
    history says where), at most ``max_restores`` times.

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
        if self.config.dequantize_width == 0:
            return batch
        u = self._global_draw(torch.rand, tuple(batch.shape[1:]))
        return batch + self.config.dequantize_width * u.to(batch.device, batch.dtype)

    def propose(self) -> Tensor:
        """This rank's chain starts for one iteration: flow samples ``g_α(z)`` for its
        part of the global batch's latent codes (the codes themselves with
        ``energy_base="flow"``), or uniform noise (see :func:`propose`)."""
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
        and ``row`` from the device together; raise :class:`TrainingDivergedError` on the
        first checked value that is not finite, before any of the ``steps`` (optimiser,
        schedule) is taken; else take them all and, unless ``row`` is ``None`` (the
        iteration goes on), append ``row`` to the history."""
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
        :class:`TrainingConfig`), never above the sampler's ``max_step_size`` if it has
        one; a revision that is 0 or not finite changes nothing."""
        if not (revision > 0 and math.isfinite(revision)):
            return
        factor = (self.config.target_revision / revision) ** self.adapt_rate
        step = self.sampler.step_size * min(2.0, max(0.5, factor))
        self.sampler.step_size = min(step, getattr(self.sampler, "max_step_size", math.inf))

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
        self.flow.initialize(batch + self.config.dequantize_width * u.to(batch.device, batch.dtype))

    def run(self, data: Tensor, callback: Callable[[CoopTrainer], None] | None = None) -> None:
        """Pre-training, then cooperative iterations on ``data`` (``(N, *event)`` in model
        units, on the training device), until ``pretrain_iter + n_iter`` in all."""
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
            if callback is not None:
                callback(self)

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
