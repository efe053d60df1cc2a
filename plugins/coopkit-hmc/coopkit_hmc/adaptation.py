r"""Dual-averaging step-size adaptation (Hoffman & Gelman, 2014, §3.2, Algorithm 5).

After the :math:`m`-th warm-up transition with acceptance probability :math:`a_m`,

.. math::
    \bar H_m = \Bigl(1 - \frac{1}{m + t_0}\Bigr) \bar H_{m-1}
               + \frac{\delta - a_m}{m + t_0}, \qquad
    \log \varepsilon_m = \mu - \frac{\sqrt{m}}{\gamma} \bar H_m, \qquad
    \log \bar\varepsilon_m = m^{-\kappa} \log \varepsilon_m
                             + (1 - m^{-\kappa}) \log \bar\varepsilon_{m-1},

with :math:`\mu = \log(10\,\varepsilon_0)`, :math:`\gamma = 0.05`, :math:`t_0 = 10`,
:math:`\kappa = 0.75`. Sampling then uses the averaged :math:`\bar\varepsilon`, whose
acceptance rate approaches the target :math:`\delta`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass
class DualAveraging:
    r"""The state of one dual-averaging run.

    Args:
        step_size: the initial step size :math:`\varepsilon_0`.
        target_accept: the acceptance probability :math:`\delta` aimed for.

    Examples:
        >>> adapt = DualAveraging(step_size=0.01, target_accept=0.65)
        >>> for _ in range(500):  # acceptance probability exp(-step) for this toy problem
        ...     step = adapt.update(math.exp(-adapt.step_size))
        >>> round(adapt.final_step_size, 2), round(-math.log(0.65), 2)
        (0.43, 0.43)
    """

    step_size: float
    target_accept: float
    gamma: float = 0.05
    t0: float = 10.0
    kappa: float = 0.75
    iteration: int = field(default=0, init=False)
    _mu: float = field(default=0.0, init=False)
    _h_bar: float = field(default=0.0, init=False)
    _log_average: float = field(default=0.0, init=False)

    def __post_init__(self) -> None:
        self._mu = math.log(10 * self.step_size)
        self._log_average = math.log(self.step_size)

    def update(self, accept_prob: float) -> float:
        """Take in the last transition's acceptance probability; return the next step size."""
        self.iteration += 1
        m = self.iteration
        weight = 1 / (m + self.t0)
        self._h_bar = (1 - weight) * self._h_bar + weight * (self.target_accept - accept_prob)
        log_step = self._mu - math.sqrt(m) / self.gamma * self._h_bar
        eta = m**-self.kappa
        self._log_average = eta * log_step + (1 - eta) * self._log_average
        self.step_size = math.exp(log_step)
        return self.step_size

    @property
    def final_step_size(self) -> float:
        r"""The averaged step size :math:`\bar\varepsilon`, used once warm-up ends."""
        return math.exp(self._log_average)
