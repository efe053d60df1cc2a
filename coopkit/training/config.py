"""The training loop's hyper-parameters (:class:`TrainingConfig`) and the error that stops
a diverging run (:class:`TrainingDivergedError`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from coopkit.training.energy import Precision


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
    exponential tilt of the flow, :math:`p(x) \propto q_\alpha(x)\,e^{-E_\theta(x)}`
    (see :class:`~coopkit.training.energy.FlowTiltedEnergy`);
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
    dequantize_width: float | tuple[float, ...] = 0.0
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
