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
This package never imports scikit-learn.

The loop is split by what each part holds: :mod:`coopkit.training.trainer` the trainer
and its step (:class:`CoopTrainer`), :mod:`coopkit.training.config` its hyper-parameters
(:class:`TrainingConfig`) and :class:`TrainingDivergedError`, :mod:`coopkit.training.energy`
the energy as the chains and the losses run it (:class:`EnergyRunner`, the flow-tilted
and latent energies, proposals and their revision), :mod:`coopkit.training.schedules`
the learning-rate factor and the sampler's step-size adaptation. Their public names are
importable from ``coopkit.training`` itself.
"""

from __future__ import annotations

from coopkit.training.config import TrainingConfig, TrainingDivergedError
from coopkit.training.energy import (
    EnergyRunner,
    FlowLogProb,
    FlowTiltedEnergy,
    LatentEnergy,
    Precision,
    decode,
    propose,
    revise_proposals,
    score_energy,
)
from coopkit.training.schedules import LearningRateFactor, adapted_step_size
from coopkit.training.trainer import CoopTrainer, gradient_norm, sampler_state

__all__ = [
    "CoopTrainer",
    "EnergyRunner",
    "FlowLogProb",
    "FlowTiltedEnergy",
    "LatentEnergy",
    "LearningRateFactor",
    "Precision",
    "TrainingConfig",
    "TrainingDivergedError",
    "adapted_step_size",
    "decode",
    "gradient_norm",
    "propose",
    "revise_proposals",
    "sampler_state",
    "score_energy",
]
