r"""Flow++'s logistic-mixture CDF coupling, with checkerboard and channel masks.

A binary mask :math:`m` splits the input: pixels with :math:`m = 1` are kept, and the
others go through the elementwise map

.. math:: y = \operatorname{logit} F(x;\, \pi, \mu, s)\; e^{a} + b,

where :math:`F` is a :math:`K`-component logistic-mixture CDF
(:mod:`coopkit_flowpp.mixture`) and :math:`(\pi, \mu, \log s, a, b)`, :math:`3K + 2`
numbers per free pixel, come from a convolutional conditioner
(:func:`~coopkit_flowpp.conditioner.conditioner`) that sees the kept pixels, the mask
and an optional context. Per sample, with :math:`\ell = \operatorname{logit} F`,

.. math:: \log |\det J| = \sum_{m = 0} \bigl(\log \ell'(x) + a\bigr).

:math:`\log s` and :math:`a` are soft-bounded, :math:`B \tanh(\cdot / B)`, by
``log_scale_bound`` and ``scale_bound``. The inverse solves :math:`\ell(x) = (y - b)
e^{-a}` by bisection (:func:`~coopkit_flowpp.mixture.inverse_logit_mixture_cdf`).
At initialisation the conditioner outputs only its bias: equal weights, means spread
over :math:`(-1, 1)` so the components can tell themselves apart, unit scales,
:math:`a = b = 0` — a near-identity monotone map.
"""

from __future__ import annotations

import torch
from coopkit.flows.base import Transform
from torch import Tensor

from coopkit_flowpp.conditioner import conditioner
from coopkit_flowpp.mixture import inverse_logit_mixture_cdf, logit_mixture_cdf


def checkerboard_mask(height: int, width: int, parity: int) -> Tensor:
    """``(1, 1, height, width)``: 1 where ``row + column + parity`` is even.

    Examples:
        >>> checkerboard_mask(2, 3, parity=1)[0, 0].tolist()
        [[0.0, 1.0, 0.0], [1.0, 0.0, 1.0]]
    """
    rows, cols = torch.arange(height)[:, None], torch.arange(width)[None, :]
    return ((rows + cols + parity) % 2 == 0).float().view(1, 1, height, width)


def channel_mask(channels: int, parity: int) -> Tensor:
    """``(1, channels, 1, 1)``: 1 on the first ``channels // 2`` channels (parity 0) or
    on the others (parity 1).

    Examples:
        >>> channel_mask(5, parity=1).flatten().tolist()
        [0.0, 0.0, 1.0, 1.0, 1.0]
    """
    first = torch.arange(channels) < channels // 2
    return (first != bool(parity)).float().view(1, channels, 1, 1)


def alternating_masks(channels: int, height: int, width: int, n: int) -> list[Tensor]:
    """``n`` masks for ``(channels, height, width)`` images: channel and checkerboard masks
    in turn (only the kind that splits the image when the other cannot: one channel, or
    one pixel), each kind alternating its parity.

    Examples:
        >>> [tuple(m.shape) for m in alternating_masks(4, 2, 2, 3)]
        [(1, 4, 1, 1), (1, 1, 2, 2), (1, 4, 1, 1)]
        >>> [m.flatten().tolist() for m in alternating_masks(1, 1, 2, 2)]
        [[1.0, 0.0], [0.0, 1.0]]
    """
    kinds = [channel_mask] if channels > 1 else []
    if height * width > 1:
        kinds.append(lambda _, parity: checkerboard_mask(height, width, parity))
    if not kinds:
        raise ValueError("a coupling needs at least two pixels or two channels to split.")
    return [kinds[i % len(kinds)](channels, i // len(kinds) % 2) for i in range(n)]


class MixtureCoupling(Transform):
    """Logistic-mixture CDF coupling of ``(n, channels, h, w)`` images.

    Args:
        channels: image channels ``c``.
        mask: 1 for kept pixels, broadcastable to ``(1, c, h, w)``, with kept and free
            pixels both present (see :func:`checkerboard_mask`, :func:`channel_mask`).
        hidden_channels: width of the conditioner.
        n_components: mixture components ``K``.
        scale_bound: bound on the output log-scale ``a``.
        log_scale_bound: bound on the components' log-scales.
        attention: self-attention in the conditioner.
        attention_heads: its number of heads.
        context_channels: channels of a ``context`` the conditioner also sees (e.g. the
            image being dequantised); ``forward`` and ``inverse`` then require it.

    Examples:
        >>> coupling = MixtureCoupling(4, channel_mask(4, 0), hidden_channels=8, n_components=3)
        >>> x = torch.randn(2, 4, 3, 3)
        >>> y, logdet = coupling(x)
        >>> torch.equal(y[:, :2], x[:, :2]), logdet.shape
        (True, torch.Size([2]))
        >>> torch.allclose(coupling.inverse(y)[0], x, atol=1e-5)
        True
    """

    def __init__(
        self,
        channels: int,
        mask: Tensor,
        hidden_channels: int,
        n_components: int,
        scale_bound: float = 2.0,
        log_scale_bound: float = 7.0,
        attention: bool = False,
        attention_heads: int = 4,
        context_channels: int = 0,
    ) -> None:
        super().__init__()
        if not (bool(mask.any()) and not bool(mask.all())):
            raise ValueError("the mask must keep some pixels and leave some free.")
        self.register_buffer("mask", mask, persistent=False)
        self.n_components = n_components
        self.context_channels = context_channels
        self.scale_bound = scale_bound
        self.log_scale_bound = log_scale_bound
        n_params = 3 * n_components + 2
        self.net = conditioner(
            2 * channels + context_channels,
            n_params * channels,
            hidden_channels,
            attention,
            attention_heads,
        )
        spread = (2 * torch.arange(n_components) - (n_components - 1)) / n_components
        with torch.no_grad():
            bias = self.net[-1].bias.view(n_params, channels)
            bias[n_components : 2 * n_components] = spread[:, None]

    def _params(self, kept: Tensor, context: Tensor | None) -> tuple[Tensor, ...]:
        """``logits, means, log_scales`` ``(n, c, h, w, K)`` and ``a, b`` ``(n, c, h, w)``."""
        if (context is None) != (self.context_channels == 0):
            raise ValueError(
                f"this coupling takes a context of {self.context_channels} channels; "
                "pass context=... exactly when context_channels > 0."
            )
        inputs = [kept * self.mask, self.mask.expand_as(kept)]
        out = self.net(torch.cat([*inputs, *([] if context is None else [context])], dim=1))
        out = out.view(kept.shape[0], -1, *kept.shape[1:]).movedim(1, -1)
        k = self.n_components
        logits, means, log_scales = out[..., : 3 * k].split(k, dim=-1)
        log_scales = self.log_scale_bound * torch.tanh(log_scales / self.log_scale_bound)
        a = self.scale_bound * torch.tanh(out[..., 3 * k] / self.scale_bound)
        return logits, means, log_scales, a, out[..., 3 * k + 1]

    def _logdet(self, log_slope: Tensor, a: Tensor) -> Tensor:
        return ((log_slope + a) * (1 - self.mask)).flatten(1).sum(dim=1)

    def forward(self, x: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        logits, means, log_scales, a, b = self._params(x, context)
        value, log_slope = logit_mixture_cdf(x, logits, means, log_scales)
        y = torch.where(self.mask.bool(), x, value * torch.exp(a) + b)
        return y, self._logdet(log_slope, a)

    def inverse(self, y: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        logits, means, log_scales, a, b = self._params(y, context)
        free = inverse_logit_mixture_cdf((y - b) * torch.exp(-a), logits, means, log_scales)
        x = torch.where(self.mask.bool(), y, free)
        _, log_slope = logit_mixture_cdf(x, logits, means, log_scales)
        return x, -self._logdet(log_slope, a)
