r"""Early stopping on the validation rows, as scikit-learn's ``MLPClassifier`` does it.

With ``early_stopping=True``, ``fit`` holds out ``validation_fraction`` of the rows (the
same rows on which ``tilt="auto"`` chooses β, :mod:`coopkit.tilt`) and, once per epoch
(every :math:`\lceil n_\text{train} / \text{batch\_size} \rceil` iterations, and at least
every :data:`MIN_CHECK_EVERY`), scores the flow by the exact mean log-likelihood of those
rows,

.. math:: s = \frac{1}{m} \sum_{j=1}^m \log q_\alpha(v_j),

in nats per row in model units. Training stops when :math:`s` has not risen by more than
``tol`` above its best for ``n_iter_no_change`` checks in a row, and the flow and the
energy net are put back to their weights at the best check (the energy net trained
beside that flow, so that the pair stays a CoopFlow).

Why the flow's likelihood: it is exact and cheap, and it is the quantity a few hundred
rows overfit first (the flow memorises them, its held-out likelihood falls). The EBM's
own held-out likelihood needs ``log Z`` at every check; its strength is instead chosen
afterwards on the same rows, by the tilt.

References:
    Xie, Zhu, Li & Li, "A Tale of Two Flows: Cooperative Learning of Langevin Flow and
    Normalizing Flow Toward Energy-Based Model", ICLR 2022.
    https://arxiv.org/abs/2205.06924

    Prechelt, "Early Stopping — But When?", Neural Networks: Tricks of the Trade, 1998.

Examples:
    A flow that stops improving on the validation rows stops training and is put back
    to its best weights:

    >>> from coopkit.flows import RealNVP
    >>> flow, energy = RealNVP((2,)), torch.nn.Linear(2, 1)
    >>> flow.initialize(torch.randn(256, 2))
    >>> stopper = EarlyStopping(torch.randn(64, 2), n_iter_no_change=2, tol=0.0, check_every=1)
    >>> stopper.check(1, flow, energy)  # the first check is the best so far
    False
    >>> best = {k: v.clone() for k, v in flow.state_dict().items()}
    >>> with torch.no_grad():
    ...     _ = [p.add_(5.0) for p in flow.parameters()]  # ruin the flow
    >>> stopper.check(2, flow, energy), stopper.check(3, flow, energy)
    (False, True)
    >>> stopper.restore_best(flow, energy)
    >>> all(torch.equal(best[k], v) for k, v in flow.state_dict().items()), stopper.best_iteration
    (True, 1)
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from coopkit.flows.base import Flow
from coopkit.inference import chunked

MIN_CHECK_EVERY = 10


def check_interval(n_train: int, batch_size: int) -> int:
    """Iterations between two checks: one epoch of ``n_train`` rows in batches of
    ``batch_size``, and at least :data:`MIN_CHECK_EVERY` (so that a table of a few
    hundred rows is not judged on one noisy step)."""
    return max(MIN_CHECK_EVERY, math.ceil(n_train / batch_size))


class EarlyStopping:
    """Scores the flow on ``validation`` rows ``(m, *event)`` (model units) at every
    ``check_every``-th iteration, keeps the weights of the best check, and raises
    says to stop (``stopped``) after ``n_iter_no_change`` checks without a gain above
    ``tol``.

    ``scores`` lists every check's score (``validation_scores_``); ``best_score`` and
    ``best_iteration`` are the best check's.
    """

    def __init__(
        self,
        validation: Tensor,
        n_iter_no_change: int,
        tol: float,
        check_every: int,
        chunk: int = 1024,
    ) -> None:
        self.validation = validation
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.check_every = check_every
        self.chunk = chunk
        self.scores: list[float] = []
        self.best_score = -math.inf
        self.best_iteration = 0
        self.no_change = 0
        self.stopped = False
        self._best: tuple[dict[str, Tensor], dict[str, Tensor]] | None = None

    @torch.no_grad()
    def score(self, flow: Flow) -> float:
        """The flow's mean log-likelihood of the validation rows."""
        log_q = chunked(lambda v: flow.log_prob(v).double(), self.validation, self.chunk)
        return log_q.mean().item()

    def check(self, iteration: int, flow: Flow, energy: nn.Module) -> bool:
        """Score ``flow`` if ``iteration`` is a check and keep its and ``energy``'s
        weights if it is the best so far; whether patience is out (then ``stopped``)."""
        if iteration % self.check_every:
            return False
        score = self.score(flow)
        self.scores.append(score)
        if score > self.best_score:
            improved = score > self.best_score + self.tol
            self.best_score, self.best_iteration = score, iteration
            self._best = (_copy(flow), _copy(energy))
            self.no_change = 0 if improved else self.no_change + 1
        else:
            self.no_change += 1
        self.stopped = self.no_change >= self.n_iter_no_change
        return self.stopped

    def restore_best(self, flow: Flow, energy: nn.Module) -> None:
        """Put ``flow`` and ``energy`` back to the weights of the best check (if any)."""
        if self._best is not None:
            flow.load_state_dict(self._best[0])
            energy.load_state_dict(self._best[1])


def _copy(module: nn.Module) -> dict[str, Tensor]:
    return {name: value.detach().clone() for name, value in module.state_dict().items()}
