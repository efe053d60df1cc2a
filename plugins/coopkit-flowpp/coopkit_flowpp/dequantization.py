r"""Dequantisation: from a discrete image to a continuous point of its bin, with density.

An image with quantisation levels of width :math:`w` (model units, :math:`w = 2/L` for
:math:`L` levels in [-1, 1]) is given by the lower edges :math:`x` of its levels; the
bin it stands for is :math:`x + [0, w)^D`. For any density :math:`q(u \mid x)` on
:math:`[0, w)^D`, Jensen's inequality gives the bound that Flow++ trains on,

.. math::
    \log P(x) = \log \int_{[0, w)^D} p(x + u)\, du
    \;\ge\; \mathbb{E}_{u \sim q(\cdot \mid x)}\bigl[\log p(x + u) - \log q(u \mid x)\bigr],

with equality when :math:`q(u \mid x) \propto p(x + u)`. Both dequantisers here have
``dequantize(x, generator) -> (x + u, log q(u | x))``:

* :class:`UniformDequantizer`: :math:`u \sim U[0, w)^D`, :math:`\log q = -D \log w`.
  This is the noise coopkit's training loop adds to every data batch
  (``dequantize_width * U[0, 1)``): the energy net's data term sees such points, and so
  does the flow in maximum-likelihood pre-training (``pretrain_iter``, or ``n_iter=0``),
  which therefore maximises this bound. In the cooperative phase the flow learns from
  Langevin-revised samples, which are continuous already.
* :class:`VariationalDequantizer` (Flow++'s variational dequantisation): a small
  conditional flow learns :math:`q(u \mid x)` so that the bound gets tighter.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from coopkit_flowpp.coupling import MixtureCoupling, alternating_masks


def _standard_normal(shape: torch.Size, like: Tensor, generator: torch.Generator | None) -> Tensor:
    """Noise drawn on the generator's device (CPU by default), then moved to ``like``'s."""
    device = generator.device if generator is not None else torch.device("cpu")
    eps = torch.randn(shape, generator=generator, device=device, dtype=like.dtype)
    return eps.to(like.device)


def _normal_log_density(eps: Tensor) -> Tensor:
    flat = eps.flatten(1)
    return -0.5 * (flat**2).sum(dim=1) - 0.5 * flat.shape[1] * math.log(2 * math.pi)


class UniformDequantizer(nn.Module):
    r""":math:`u \sim U[0, w)^D` added to ``(n, *event)`` lower edges; no parameters.

    Examples:
        >>> dequantizer = UniformDequantizer(width=0.5)
        >>> x = torch.zeros(2, 1, 2, 2)
        >>> y, log_q = dequantizer.dequantize(x, torch.Generator().manual_seed(0))
        >>> bool(((y >= 0) & (y < 0.5)).all()), log_q.tolist()  # -4 log 0.5
        (True, [2.7725887298583984, 2.7725887298583984])
    """

    def __init__(self, width: float) -> None:
        super().__init__()
        if not width > 0:
            raise ValueError(f"width must be positive (2 / levels); got {width!r}.")
        self.width = float(width)

    def dequantize(
        self, x: Tensor, generator: torch.Generator | None = None
    ) -> tuple[Tensor, Tensor]:
        """``(x + u, log q(u | x))``, shapes ``(n, *event)`` and ``(n,)``."""
        device = generator.device if generator is not None else torch.device("cpu")
        u = torch.rand(x.shape, generator=generator, device=device, dtype=x.dtype).to(x.device)
        log_q = x.new_full((x.shape[0],), -math.prod(x.shape[1:]) * math.log(self.width))
        return x + self.width * u, log_q


class VariationalDequantizer(nn.Module):
    r"""Flow++'s learned :math:`q(u \mid x)`: a conditional flow squashed into the bin.

    .. math::
        \varepsilon \sim \mathcal{N}(0, I), \quad v = g(\varepsilon; x), \quad
        u = w\, \sigma(v),

    where :math:`g` is ``n_steps`` :class:`~coopkit_flowpp.coupling.MixtureCoupling`
    layers whose conditioners also see the image :math:`x` (masks from
    :func:`~coopkit_flowpp.coupling.alternating_masks`). By the change of variables,

    .. math::
        \log q(u \mid x) = \log \mathcal{N}(\varepsilon; 0, I)
            - \log |\det \partial g / \partial \varepsilon|
            - \textstyle\sum (\log \sigma(v) + \log \sigma(-v)) - D \log w,

    and ``u`` lies in :math:`(0, w)^D`. Sampling is reparametrised, so the bound is
    differentiable with respect to these parameters and the flow's.

    Args:
        event_shape: ``(c, h, w)``, at least two pixels or two channels.
        width: the quantisation width ``w`` in model units.
        hidden_channels: width of the conditioners.
        n_steps: coupling layers.
        n_components: mixture components per coupling.

    Examples:
        >>> dequantizer = VariationalDequantizer((1, 4, 4), width=2 / 17, hidden_channels=8)
        >>> x = torch.zeros(3, 1, 4, 4)
        >>> y, log_q = dequantizer.dequantize(x, torch.Generator().manual_seed(0))
        >>> bool(((y > 0) & (y < 2 / 17)).all()), log_q.shape
        (True, torch.Size([3]))
    """

    def __init__(
        self,
        event_shape: tuple[int, int, int],
        width: float,
        hidden_channels: int = 16,
        n_steps: int = 4,
        n_components: int = 4,
    ) -> None:
        super().__init__()
        c, h, w = event_shape
        if not width > 0:
            raise ValueError(f"width must be positive (2 / levels); got {width!r}.")
        self.width = float(width)
        self.couplings = nn.ModuleList(
            MixtureCoupling(c, mask, hidden_channels, n_components, context_channels=c)
            for mask in alternating_masks(c, h, w, n_steps)
        )

    def _squash_logdet(self, v: Tensor) -> Tensor:
        """``log |det ∂u/∂v|`` of ``u = w σ(v)``, per sample."""
        squash = F.logsigmoid(v) + F.logsigmoid(-v)
        return squash.flatten(1).sum(dim=1) + v[0].numel() * math.log(self.width)

    def transform(self, eps: Tensor, x: Tensor) -> tuple[Tensor, Tensor]:
        """``u`` and ``log |det ∂u/∂ε|``, for noise ``eps`` and images ``x``, ``(n, c, h, w)``."""
        logdet = eps.new_zeros(eps.shape[0])
        v = eps
        for coupling in self.couplings:
            v, ld = coupling(v, context=x)
            logdet = logdet + ld
        return self.width * torch.sigmoid(v), logdet + self._squash_logdet(v)

    def dequantize(
        self, x: Tensor, generator: torch.Generator | None = None
    ) -> tuple[Tensor, Tensor]:
        """``(x + u, log q(u | x))`` with ``u ~ q(· | x)``; shapes ``(n, c, h, w)``, ``(n,)``."""
        eps = _standard_normal(x.shape, x, generator)
        u, logdet = self.transform(eps, x)
        return x + u, _normal_log_density(eps) - logdet

    def log_prob(self, u: Tensor, x: Tensor) -> Tensor:
        """``log q(u | x)`` of offsets ``u`` in ``(0, w)^D`` (inverts the couplings)."""
        v = torch.logit(u / self.width)
        logdet = self._squash_logdet(v)
        for coupling in reversed(self.couplings):
            v, ld = coupling.inverse(v, context=x)
            logdet = logdet - ld
        return _normal_log_density(v) - logdet
