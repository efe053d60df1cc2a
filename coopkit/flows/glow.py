r"""Glow: a multiscale image flow (Kingma & Dhariwal, 2018) ending in the map to [-1, 1].

Data :math:`x \in [-1, 1]^{c \times h \times w}` first pass through :class:`Logit`,
then through ``n_scales`` scales. Each scale squeezes every 2x2 patch into channels,
:math:`(c, h, w) \to (4c, h/2, w/2)`, applies ``n_steps`` steps of

.. math:: \text{ActNorm} \;\to\; \text{invertible } 1 \times 1 \text{ convolution}
          \;\to\; \text{affine coupling},

and, except at the last scale, factors out half of its channels straight into the
latent. The factored parts are put back where they came from (concatenated along
channels, then unsqueezed), so the latent :math:`z` has the data's shape
``(n, c, h, w)`` and every scale is itself a bijection of that shape.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from coopkit.flows.base import ActNorm, Chain, Flow, Transform


def squeeze(x: Tensor) -> Tensor:
    """Move each 2x2 patch into channels: ``(n, c, h, w) -> (n, 4c, h/2, w/2)``.

    Examples:
        >>> squeeze(torch.zeros(2, 3, 8, 8)).shape
        torch.Size([2, 12, 4, 4])
    """
    n, c, h, w = x.shape
    x = x.reshape(n, c, h // 2, 2, w // 2, 2).permute(0, 1, 3, 5, 2, 4)
    return x.reshape(n, 4 * c, h // 2, w // 2)


def unsqueeze(x: Tensor) -> Tensor:
    """Inverse of :func:`squeeze`: ``(n, 4c, h, w) -> (n, c, 2h, 2w)``.

    Examples:
        >>> x = torch.arange(32.0).reshape(2, 1, 4, 4)
        >>> torch.equal(unsqueeze(squeeze(x)), x)
        True
    """
    n, c, h, w = x.shape
    x = x.reshape(n, c // 4, 2, 2, h, w).permute(0, 1, 4, 2, 5, 3)
    return x.reshape(n, c // 4, 2 * h, 2 * w)


class Logit(Transform):
    r"""The map between pixels in [-1, 1] and the real line, with its log-determinant.

    Data → latent, with ``shrink`` :math:`= 1 - 2\alpha = 0.9`:

    .. math:: y = \tfrac{x + 1}{2}, \quad y' = \alpha + (1 - 2\alpha)\, y, \quad
              u = \operatorname{logit}(y') = 2 \operatorname{artanh}(0.9\, x),

    so :math:`\log |du/dx| = \log 1.8 - \log(1 - 0.81\, x^2)` per pixel. Latent → data
    is the exact inverse, :math:`y' = \sigma(u)`, :math:`y = (y' - \alpha) / (1 - 2\alpha)`,
    :math:`x = 2y - 1`, i.e. :math:`x = \tanh(u / 2) / 0.9`.

    This is the released CoopFlow code's shrink of pixels toward the centre before the
    logit, made exactly invertible: pixels clamped at ±1 by Langevin map to
    :math:`u = \pm 2 \operatorname{artanh}(0.9)` and keep a finite log-density. Only
    :math:`|x| < 1 / 0.9 \approx 1.111` has a preimage, so ``forward`` rejects anything
    else, and ``inverse`` returns values in that open interval (callers clip to [-1, 1]).

    Examples:
        >>> x = torch.tensor([[-1.0, 0.0, 1.0]])
        >>> u, logdet = Logit()(x)
        >>> torch.allclose(Logit().inverse(u)[0], x)
        True
    """

    def __init__(self, shrink: float = 0.9) -> None:
        super().__init__()
        if not 0 < shrink < 1:
            raise ValueError(f"shrink must lie in (0, 1); got {shrink!r}.")
        self.shrink = shrink

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        scaled = self.shrink * x
        if not bool((scaled.abs() < 1).all()):
            raise ValueError(
                f"image pixels must lie in [-1, 1] (at least inside ±{1 / self.shrink:.4f}) "
                "and be finite; scale the data to [-1, 1] first."
            )
        per_pixel = math.log(2 * self.shrink) - torch.log1p(-(scaled**2))
        return 2 * torch.atanh(scaled), per_pixel.flatten(1).sum(dim=1)

    def inverse(self, u: Tensor) -> tuple[Tensor, Tensor]:
        a = u.abs()
        per_pixel = 2 * math.log(2) - math.log(2 * self.shrink) - a - 2 * F.softplus(-a)
        return torch.tanh(u / 2) / self.shrink, per_pixel.flatten(1).sum(dim=1)


class InvertibleConv1x1(Transform):
    r"""Invertible 1x1 convolution :math:`y = W x` at every pixel, LU-parametrised.

    :math:`W = P L (U + \operatorname{diag}(\operatorname{sign} \odot e^{s}))` with a fixed
    permutation :math:`P`, unit lower-triangular :math:`L`, strictly upper-triangular
    :math:`U` and fixed signs, so :math:`\log |\det J| = h\, w \sum_i s_i` costs
    :math:`O(c)`. Starts at a random rotation. Input ``(n, c, h, w)``.

    Examples:
        >>> conv = InvertibleConv1x1(4)
        >>> x = torch.randn(2, 4, 3, 3)
        >>> torch.allclose(conv.inverse(conv(x)[0])[0], x, atol=1e-5)
        True
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        rotation, _ = torch.linalg.qr(torch.randn(channels, channels))
        perm, lower, upper = torch.linalg.lu(rotation)
        diag = upper.diagonal()
        self.register_buffer("perm", perm)
        self.register_buffer("sign", diag.sign())
        self.lower = nn.Parameter(lower.tril(-1))
        self.upper = nn.Parameter(upper.triu(1))
        self.log_s = nn.Parameter(diag.abs().log())

    def _factors(self) -> tuple[Tensor, Tensor]:
        eye = torch.eye(self.log_s.numel(), dtype=self.log_s.dtype, device=self.log_s.device)
        lower = self.lower.tril(-1) + eye
        upper = self.upper.triu(1) + torch.diag(self.sign * self.log_s.exp())
        return lower, upper

    def _logdet(self, x: Tensor) -> Tensor:
        return (self.log_s.sum() * x.shape[2] * x.shape[3]).expand(x.shape[0])

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        lower, upper = self._factors()
        weight = self.perm @ lower @ upper
        return F.conv2d(x, weight[:, :, None, None]), self._logdet(x)

    def inverse(self, y: Tensor) -> tuple[Tensor, Tensor]:
        lower, upper = self._factors()
        unpermuted = torch.linalg.solve_triangular(
            lower, self.perm.T, upper=False, unitriangular=True
        )
        weight = torch.linalg.solve_triangular(upper, unpermuted, upper=True)
        return F.conv2d(y, weight[:, :, None, None]), -self._logdet(y)


def conv_net(in_channels: int, out_channels: int, hidden_channels: int) -> nn.Sequential:
    """3x3 conv, SiLU, 1x1 conv, SiLU, then a 3x3 conv that starts at zero (identity)."""
    last = nn.Conv2d(hidden_channels, out_channels, 3, padding=1)
    nn.init.zeros_(last.weight)
    nn.init.zeros_(last.bias)
    return nn.Sequential(
        nn.Conv2d(in_channels, hidden_channels, 3, padding=1),
        nn.SiLU(),
        nn.Conv2d(hidden_channels, hidden_channels, 1),
        nn.SiLU(),
        last,
    )


class ConvCoupling(Transform):
    r"""Affine coupling over channels with a convolutional conditioner.

    Splits ``(n, c, h, w)`` into the first :math:`\lfloor c/2 \rfloor` channels
    :math:`x_a` (kept) and the rest :math:`x_b`, then

    .. math:: y_b = x_b \odot e^{s(x_a)} + t(x_a), \qquad
              s = B \tanh(\hat{s} / B), \qquad \log|\det J| = \textstyle\sum s,

    so one layer scales by at most :math:`e^{\pm B}`; it starts as the identity.

    Examples:
        >>> coupling = ConvCoupling(4, hidden_channels=8, scale_bound=2.0)
        >>> x = torch.randn(2, 4, 3, 3)
        >>> torch.equal(coupling(x)[0], x)
        True
    """

    def __init__(self, channels: int, hidden_channels: int, scale_bound: float) -> None:
        super().__init__()
        self.split = [channels // 2, channels - channels // 2]
        self.net = conv_net(self.split[0], 2 * self.split[1], hidden_channels)
        self.scale_bound = scale_bound

    def _scale_shift(self, kept: Tensor) -> tuple[Tensor, Tensor]:
        raw_scale, shift = self.net(kept).chunk(2, dim=1)
        return self.scale_bound * torch.tanh(raw_scale / self.scale_bound), shift

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        kept, free = x.split(self.split, dim=1)
        scale, shift = self._scale_shift(kept)
        y = torch.cat([kept, free * scale.exp() + shift], dim=1)
        return y, scale.flatten(1).sum(dim=1)

    def inverse(self, y: Tensor) -> tuple[Tensor, Tensor]:
        kept, free = y.split(self.split, dim=1)
        scale, shift = self._scale_shift(kept)
        x = torch.cat([kept, (free - shift) * (-scale).exp()], dim=1)
        return x, -scale.flatten(1).sum(dim=1)


StepFactory = Callable[[int, int, int], list[Transform]]


class MultiscaleFlow(Flow):
    """The multiscale architecture of Glow, for images in [-1, 1].

    ``forward`` maps data ``(n, c, h, w)`` to a latent of the same shape: :class:`Logit`,
    then per scale a :func:`squeeze`, the steps that ``make_steps(channels, height,
    width)`` builds for the squeezed shape, and half the channels factored out (all
    scales but the last); the factored parts are put back with :func:`unsqueeze`, so
    the latent keeps the data's layout. Flows differ only in their steps: see
    :class:`Glow` here and Flow++ in the ``coopkit-flowpp`` plugin.

    Args:
        event_shape: ``(c, h, w)``; ``h`` and ``w`` divisible by ``2**n_scales``.
        n_scales: number of scales.
        make_steps: the transforms of one scale, given its squeezed ``(c, h, w)``.

    Examples:
        >>> flow = MultiscaleFlow((1, 8, 8), 2, lambda c, h, w: [InvertibleConv1x1(c)])
        >>> x = torch.rand(3, 1, 8, 8) * 2 - 1
        >>> z, logdet = flow(x)
        >>> z.shape, torch.allclose(flow.inverse(z)[0], x, atol=1e-4)
        (torch.Size([3, 1, 8, 8]), True)
    """

    name = "multiscale flow"

    def __init__(
        self, event_shape: tuple[int, ...], n_scales: int, make_steps: StepFactory
    ) -> None:
        if len(event_shape) != 3:
            raise ValueError(
                f"{self.name} takes images, event_shape (channels, height, width); got "
                f"{tuple(event_shape)}. Add a channel axis for greyscale, e.g. (1, h, w)."
            )
        if n_scales < 1:
            raise ValueError(f"n_scales must be >= 1; got {n_scales!r}.")
        super().__init__(event_shape)
        c, h, w = self.event_shape
        if h % 2**n_scales or w % 2**n_scales:
            most = (math.gcd(h, w) & -math.gcd(h, w)).bit_length() - 1
            fix = f"use n_scales <= {most}" if most else "pad or resize the images"
            raise ValueError(
                f"{self.name} with n_scales={n_scales} needs height and width divisible by "
                f"2**n_scales = {2**n_scales}; got event_shape {self.event_shape}. "
                f"Change n_scales ({fix})."
            )
        self.logit = Logit()
        self.scales = nn.ModuleList()
        self.factored: list[int] = []
        for _ in range(n_scales):
            c, h, w = 4 * c, h // 2, w // 2
            self.scales.append(Chain(make_steps(c, h, w)))
            self.factored.append(c // 2)
            c -= c // 2
        self.factored[-1] = 0

    def _check(self, x: Tensor) -> None:
        if tuple(x.shape[1:]) != self.event_shape:
            raise ValueError(
                f"{self.name} was built for images of shape {self.event_shape}; got a batch "
                f"of shape {tuple(x.shape)}. Build the flow with "
                f"event_shape={tuple(x.shape[1:])}."
            )

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        self._check(x)
        x, logdet = self.logit(x)
        parts = []
        for scale, k in zip(self.scales, self.factored, strict=True):
            x, ld = scale(squeeze(x))
            logdet = logdet + ld
            part, x = x.split([k, x.shape[1] - k], dim=1)
            parts.append(part)
        for part in reversed(parts):
            x = unsqueeze(torch.cat([part, x], dim=1))
        return x, logdet

    def inverse(self, z: Tensor) -> tuple[Tensor, Tensor]:
        self._check(z)
        parts = []
        for k in self.factored:
            part, z = squeeze(z).split([k, 4 * z.shape[1] - k], dim=1)
            parts.append(part)
        logdet = z.new_zeros(z.shape[0])
        for scale, part in zip(reversed(self.scales), reversed(parts), strict=True):
            z, ld = scale.inverse(torch.cat([part, z], dim=1))
            logdet = logdet + ld
            z = unsqueeze(z)
        x, ld = self.logit.inverse(z)
        return x, logdet + ld


class Glow(MultiscaleFlow):
    r"""Multiscale Glow for images in [-1, 1], with the exact logit map in front.

    ``forward`` maps data ``(n, c, h, w)`` to a latent of the same shape:
    :class:`Logit`, then per scale a :func:`squeeze`, ``n_steps`` steps of
    :class:`~coopkit.flows.base.ActNorm` (per channel, data-dependent initialisation),
    :class:`InvertibleConv1x1` and :class:`ConvCoupling`, then half the channels
    factored out (all scales but the last). After the squeeze there are always
    :math:`4c` channels, so odd ``c`` (greyscale) works too.

    Args:
        event_shape: ``(c, h, w)``; ``h`` and ``w`` divisible by ``2**n_scales``.
        n_scales: number of scales. The default 2 suits 8x8 digits and works for any
            size divisible by 4 (8x8, 16x16, 28x28, 32x32); Glow used 3 at 32x32.
        n_steps: flow steps per scale.
        hidden_channels: width of each coupling's conditioner.
        scale_bound: bound ``B`` on each coupling's log-scale.

    Examples:
        >>> flow = Glow((1, 8, 8), hidden_channels=8)
        >>> x = torch.rand(4, 1, 8, 8) * 2 - 1
        >>> flow.initialize(x)
        >>> z, logdet = flow(x)
        >>> z.shape, logdet.shape
        (torch.Size([4, 1, 8, 8]), torch.Size([4]))
        >>> torch.allclose(flow.inverse(z)[0], x, atol=1e-4)
        True
    """

    name = "glow"

    def __init__(
        self,
        event_shape: tuple[int, ...],
        n_scales: int = 2,
        n_steps: int = 4,
        hidden_channels: int = 64,
        scale_bound: float = 2.0,
    ) -> None:
        for name, value in [("n_steps", n_steps), ("hidden_channels", hidden_channels)]:
            if value < 1:
                raise ValueError(f"{name} must be >= 1; got {value!r}.")

        def make_steps(c: int, h: int, w: int) -> list[Transform]:
            steps: list[Transform] = []
            for _ in range(n_steps):
                steps += [
                    ActNorm(c),
                    InvertibleConv1x1(c),
                    ConvCoupling(c, hidden_channels, scale_bound),
                ]
            return steps

        super().__init__(event_shape, n_scales, make_steps)
