r"""The cooperative training loop of CoopFlow, in plain PyTorch.

One iteration on a data batch :math:`x_{1..m}` (DESIGN §1):

1. propose :math:`\hat{x} = g_\alpha(z)`, :math:`z \sim \mathcal{N}(0, I)` (no gradient);
2. revise :math:`\hat{x}` with the sampler (``T`` Langevin steps toward
   :math:`p_\theta \propto e^{-E_\theta}`), giving :math:`\tilde{x}`;
3. EBM step on :math:`\overline{E_\theta(x)} - \overline{E_\theta(\tilde{x})}`;
4. flow step on :math:`-\overline{\log q_\alpha(\tilde{x})}`.

CoopFlow(Pre) first runs ``pretrain_iter`` maximum-likelihood steps of the flow on the
data. Both optimisers are Adam with linear learning-rate warm-up; the flow's gradient
norm is clipped. A non-finite loss stops the loop before any optimiser step with
:class:`TrainingDivergedError`, so the weights stay those of the last good step.
This module never imports scikit-learn.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn

from coopkit.flows.base import Flow
from coopkit.samplers.base import Sampler

Precision = Literal["float32", "bfloat16"]


class TrainingDivergedError(RuntimeError):
    """A loss or energy became NaN or infinite; the weights of the last good step are kept."""

    def __init__(self, iteration: int, quantity: str) -> None:
        self.iteration = iteration
        self.quantity = quantity
        super().__init__(
            f"Training diverged at iteration {iteration}: {quantity} is not finite. The model "
            "keeps the weights of the last good iteration. Likely causes: a Langevin step_size "
            "too large for the energy's gradients, or learning rates too high; lower them "
            "(sampler_params={'step_size': ...}, energy_lr, flow_lr) and fit again."
        )


@dataclass(frozen=True)
class TrainingConfig:
    """Hyper-parameters of the loop; defaults are the paper's released settings.

    ``proposal="noise"`` starts every chain from uniform noise in ``noise_bounds``
    instead of the flow, and leaves the flow untrained: the short-run EBM of
    Nijkamp et al. (2019), the non-cooperative baseline CoopFlow improves on.
    """

    n_iter: int
    batch_size: int
    flow_lr: float = 1e-4
    energy_lr: float = 1e-4
    flow_betas: tuple[float, float] = (0.9, 0.999)
    energy_betas: tuple[float, float] = (0.5, 0.5)
    warmup_iter: int = 0
    flow_grad_clip: float | None = 1.0
    pretrain_iter: int = 0
    dequantize_width: float = 0.0
    precision: Precision = "float32"
    compile: bool = False
    proposal: Literal["flow", "noise"] = "flow"
    noise_bounds: tuple[float, float] = (-1.0, 1.0)


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


@torch.no_grad()
def propose(
    flow: Flow,
    m: int,
    generator: torch.Generator,
    proposal: Literal["flow", "noise"] = "flow",
    noise_bounds: tuple[float, float] = (-1.0, 1.0),
) -> Tensor:
    """``(m, *event_shape)`` chain starts: flow samples ``g_α(z)``, or uniform noise.

    Draws on the CPU from ``generator`` (so results do not depend on the device),
    then moves to the flow's device and dtype.
    """
    reference = next(flow.parameters())
    shape = (m, *flow.event_shape)
    if proposal == "noise":
        low, high = noise_bounds
        u = torch.rand(shape, generator=generator, device="cpu")
        return (low + (high - low) * u).to(reference.device, reference.dtype)
    z = torch.randn(shape, generator=generator, device="cpu")
    return flow.inverse(z.to(reference.device, reference.dtype))[0]


def _warmup(iterations: int) -> Callable[[int], float]:
    return lambda step: min(1.0, (step + 1) / iterations) if iterations > 0 else 1.0


class CoopTrainer:
    """Trains a flow and an energy net together; ``history`` holds one row per iteration.

    Args:
        flow: the normalizing flow ``g_α``; data-dependent initialisation on the first batch.
        energy: the energy net ``E_θ``, ``(n, *event) -> (n,)``.
        sampler: the Langevin flow (any :class:`~coopkit.samplers.base.Sampler`).
        data: ``(N, *event)`` training data in model units, on the training device.
        config: the hyper-parameters.
        generator: the source of all randomness (batches, latents, dequantisation, noise).
    """

    def __init__(
        self,
        flow: Flow,
        energy: nn.Module,
        sampler: Sampler,
        data: Tensor,
        config: TrainingConfig,
        generator: torch.Generator,
    ) -> None:
        self.flow = flow
        self.energy = energy
        self.run_energy = EnergyRunner(energy, config.precision, config.compile)
        self.sampler = sampler
        self.data = data
        self.config = config
        self.generator = generator
        self.flow_optimizer = torch.optim.Adam(
            flow.parameters(), lr=config.flow_lr, betas=config.flow_betas
        )
        self.energy_optimizer = torch.optim.Adam(
            energy.parameters(), lr=config.energy_lr, betas=config.energy_betas
        )
        self.flow_scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.flow_optimizer, _warmup(config.warmup_iter)
        )
        self.energy_scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.energy_optimizer, _warmup(config.warmup_iter)
        )
        self.iteration = 0
        self.history: dict[str, list[float]] = {}

    def _batches(self) -> Iterator[Tensor]:
        n = self.data.shape[0]
        device = self.data.device
        while True:
            order = torch.randperm(n, generator=self.generator, device="cpu").to(device)
            for start in range(0, n - self.config.batch_size + 1, self.config.batch_size):
                yield self.data[order[start : start + self.config.batch_size]]

    def _dequantize(self, batch: Tensor) -> Tensor:
        if self.config.dequantize_width == 0:
            return batch
        u = torch.rand(batch.shape, generator=self.generator, device="cpu")
        return batch + self.config.dequantize_width * u.to(batch.device, batch.dtype)

    def propose(self, m: int) -> Tensor:
        """``m`` starting points for the sampler (see :func:`propose`)."""
        return propose(self.flow, m, self.generator, self.config.proposal, self.config.noise_bounds)

    def _flow_step(self, loss: Tensor) -> None:
        self.flow_optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.config.flow_grad_clip is not None:
            nn.utils.clip_grad_norm_(self.flow.parameters(), self.config.flow_grad_clip)
        self.flow_optimizer.step()
        self.flow_scheduler.step()

    def _record(self, row: dict[str, Tensor | float], phase: str) -> None:
        floats = torch.stack([torch.as_tensor(v, dtype=torch.float64).cpu() for v in row.values()])
        self.history.setdefault("iteration", []).append(float(self.iteration))
        self.history.setdefault("pretrain", []).append(float(phase == "pretrain"))
        for name, value in zip(row, floats.tolist(), strict=True):
            self.history.setdefault(name, []).append(value)

    def pretrain_step(self, batch: Tensor) -> None:
        """One maximum-likelihood step of the flow on data (CoopFlow(Pre))."""
        nll = -self.flow.log_prob(self._dequantize(batch)).mean()
        self._check_finite(nll, "flow_nll")
        self._flow_step(nll)
        self._record({"flow_nll": nll.detach()}, "pretrain")

    def coop_step(self, batch: Tensor) -> None:
        """One cooperative iteration (steps 1-4 of the module docstring)."""
        x_data = self._dequantize(batch)
        proposal = self.propose(x_data.shape[0])
        result = self.sampler(self.run_energy, proposal, generator=self.generator)
        revised = result.x

        energy_data = self.run_energy(x_data).mean()
        energy_revised = self.run_energy(revised).mean()
        energy_loss = energy_data - energy_revised
        self._check_finite(energy_loss, "energy")
        self.energy_optimizer.zero_grad(set_to_none=True)
        energy_loss.backward()
        self.energy_optimizer.step()
        self.energy_scheduler.step()

        row: dict[str, Tensor | float] = {}
        if self.config.proposal == "flow":
            nll = -self.flow.log_prob(revised).mean()
            self._check_finite(nll, "flow_nll")
            self._flow_step(nll)
            row["flow_nll"] = nll.detach()

        revision = (revised - proposal).flatten(1).norm(dim=1).mean()
        row.update(
            {
                "energy_data": energy_data.detach(),
                "energy_revised": energy_revised.detach(),
                "revision": revision,
            }
        )
        row.update({f"sampler_{k}": v for k, v in result.stats.items()})
        self._record(row, "coop")

    def _check_finite(self, value: Tensor, name: str) -> None:
        if not torch.isfinite(value).all():
            raise TrainingDivergedError(self.iteration, name)

    def initialize(self) -> None:
        """Data-dependent initialisation of the flow on one batch."""
        batch = next(self._batches())
        self.flow.initialize(self._dequantize(batch))

    def run(self, callback: Callable[[CoopTrainer], None] | None = None) -> None:
        """Pre-training, then the cooperative iterations, until ``n_iter`` in all."""
        batches = self._batches()
        total = self.config.pretrain_iter + self.config.n_iter
        while self.iteration < total:
            batch = next(batches)
            if self.iteration < self.config.pretrain_iter:
                self.pretrain_step(batch)
            else:
                self.coop_step(batch)
            self.iteration += 1
            if callback is not None:
                callback(self)
