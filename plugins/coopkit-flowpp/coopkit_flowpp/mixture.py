r"""The logistic-mixture CDF of Flow++ in logit space, and its inverse by bisection.

Elementwise, with :math:`K` components of weights :math:`\pi = \operatorname{softmax}(w)`,
means :math:`\mu` and log-scales :math:`\log s`, and :math:`t_k = (x - \mu_k) / s_k`:

.. math::
    F(x) = \sum_k \pi_k\, \sigma(t_k), \qquad
    \ell(x) = \operatorname{logit} F(x) = \log F(x) - \log(1 - F(x)),

with every term in log space, so nothing underflows in the tails:

.. math::
    \log F = \operatorname{logsumexp}_k (\log \pi_k + \log \sigma(t_k)), \quad
    \log (1 - F) = \operatorname{logsumexp}_k (\log \pi_k + \log \sigma(-t_k)),

.. math::
    \log \ell'(x) = \log f(x) - \log F - \log(1 - F), \quad
    \log f = \operatorname{logsumexp}_k
        (\log \pi_k + \log \sigma(t_k) + \log \sigma(-t_k) - \log s_k).

:math:`\ell` is strictly increasing from :math:`-\infty` to :math:`\infty`. Its inverse
has no closed form; :func:`inverse_logit_mixture_cdf` brackets the root and bisects.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor


def _log_terms(
    x: Tensor, log_weights: Tensor, means: Tensor, inverse_scales: Tensor
) -> tuple[Tensor, Tensor, Tensor]:
    """``log F``, ``log(1 - F)`` and the components' ``log σ(t) + log σ(-t)``."""
    t = (x.unsqueeze(-1) - means) * inverse_scales
    log_below, log_above = F.logsigmoid(t), F.logsigmoid(-t)
    log_cdf = torch.logsumexp(log_weights + log_below, dim=-1)
    log_sf = torch.logsumexp(log_weights + log_above, dim=-1)
    return log_cdf, log_sf, log_below + log_above


def logit_mixture_cdf(
    x: Tensor, logits: Tensor, means: Tensor, log_scales: Tensor
) -> tuple[Tensor, Tensor]:
    r""":math:`\ell(x)` and :math:`\log \ell'(x)`, elementwise.

    With identical components :math:`\ell(x) = \operatorname{logit} \sigma(x) = x`.

    Args:
        x: any shape ``S``.
        logits, means, log_scales: shape ``(*S, K)``, the mixture of each element.

    Returns:
        Two tensors of shape ``S``.

    Examples:
        >>> x = torch.tensor([-3.0, 0.0, 2.0])
        >>> zeros = torch.zeros(3, 4)
        >>> value, log_slope = logit_mixture_cdf(x, zeros, zeros, zeros)
        >>> torch.allclose(value, x), torch.allclose(log_slope, torch.zeros(3), atol=1e-6)
        (True, True)
    """
    log_weights = torch.log_softmax(logits, dim=-1)
    log_cdf, log_sf, log_density = _log_terms(x, log_weights, means, torch.exp(-log_scales))
    log_pdf = torch.logsumexp(log_weights + log_density - log_scales, dim=-1)
    return log_cdf - log_sf, log_pdf - log_cdf - log_sf


def bisection_steps(dtype: torch.dtype) -> int:
    """Halvings of the bracket: the mantissa bits of ``dtype`` plus 12 (64 for float64,
    35 for float32)."""
    return round(-math.log2(torch.finfo(dtype).eps)) + 12


def inverse_logit_mixture_cdf(
    y: Tensor, logits: Tensor, means: Tensor, log_scales: Tensor
) -> Tensor:
    r"""The :math:`x` with :math:`\ell(x) = y`, elementwise, by bisection.

    **Bracket.** :math:`F(x)` is a convex combination of the :math:`\sigma(t_k)`, so
    :math:`\min_k t_k(x) \le \ell(x) \le \max_k t_k(x)`. At
    :math:`a = \min_k (\mu_k + s_k y)` every :math:`t_k(a) \le y`, hence
    :math:`\ell(a) \le y`; at :math:`b = \max_k (\mu_k + s_k y)` every
    :math:`t_k(b) \ge y`, hence :math:`\ell(b) \ge y`. The root lies in :math:`[a, b]`.

    **Tolerance.** :math:`n` = :func:`bisection_steps` halvings, all elements at once
    (64 in float64, 35 in float32); the midpoint of the last interval is within
    :math:`(b - a)\, 2^{-n-1}` of the root, or within rounding once the interval spans
    adjacent floating-point numbers. In float64 that is below :math:`10^{-10}` for
    every bracket narrower than :math:`10^{9}` (:math:`b - a \le \max \mu - \min \mu
    + |y| (\max s - \min s)`); in float32 it is rounding for brackets up to
    :math:`2^{11} |x|` wide.

    **Gradients.** The midpoint :math:`x_0` carries no graph; the result is
    :math:`x_0 + \delta - \operatorname{sg}(\delta)` with
    :math:`\delta = (y - \ell(x_0)) / \operatorname{sg}(\ell'(x_0))` (``sg``: stop
    gradient), equal to :math:`x_0` in value, with the implicit-function gradient
    :math:`dx = (dy - d\ell) / \ell'` with respect to ``y`` and the parameters.
    :math:`1 / \ell'` is capped at :math:`\epsilon^{-2}` (machine epsilon), where
    :math:`x` is ill-determined anyway, so no gradient is infinite.

    Args:
        y: any shape ``S``.
        logits, means, log_scales: shape ``(*S, K)``.

    Returns:
        ``x`` of shape ``S``.

    Examples:
        >>> generator = torch.Generator().manual_seed(0)
        >>> params = torch.randn(3, 5, 4, generator=generator, dtype=torch.float64)
        >>> x = 10 * torch.randn(5, generator=generator, dtype=torch.float64)
        >>> y, _ = logit_mixture_cdf(x, *params)
        >>> bool((inverse_logit_mixture_cdf(y, *params) - x).abs().max() < 1e-10)
        True
    """
    with torch.no_grad():
        ends = means + torch.exp(log_scales) * y.unsqueeze(-1)
        low, high = ends.amin(dim=-1), ends.amax(dim=-1)
        log_weights, inverse_scales = torch.log_softmax(logits, dim=-1), torch.exp(-log_scales)
        for _ in range(bisection_steps(y.dtype)):
            middle = (low + high) / 2
            log_cdf, log_sf, _ = _log_terms(middle, log_weights, means, inverse_scales)
            above = log_cdf - log_sf > y
            low = torch.where(above, low, middle)
            high = torch.where(above, middle, high)
        start = (low + high) / 2
    value, log_slope = logit_mixture_cdf(start, logits, means, log_scales)
    inverse_slope = torch.exp(-log_slope.detach()).clamp(max=torch.finfo(y.dtype).eps ** -2)
    delta = (y - value) * inverse_slope
    return start + (delta - delta.detach())
