r"""The schedules of training: the learning-rate factor of both optimisers and the
adaptation of the sampler's step size toward a target revision."""

from __future__ import annotations

import math
from dataclasses import dataclass


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


def adapted_step_size(
    step_size: float,
    revision: float,
    target: float,
    rate: float,
    max_step_size: float = math.inf,
) -> float:
    r"""``step_size`` moved toward a mean ``revision`` of ``target``: multiplied by
    :math:`(r^\star / \bar r)^{\mathrm{rate}}`, clamped to [0.5, 2], and never above
    ``max_step_size``; a ``revision`` that is 0 or not finite leaves it unchanged.

    Examples:
        >>> adapted_step_size(0.1, revision=2.0, target=1.0, rate=1.0)
        0.05
        >>> adapted_step_size(0.1, revision=0.0, target=1.0, rate=0.1)
        0.1
    """
    if not (revision > 0 and math.isfinite(revision)):
        return step_size
    factor = (target / revision) ** rate
    return min(step_size * min(2.0, max(0.5, factor)), max_step_size)
