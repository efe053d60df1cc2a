r"""Neural spline flow: rational-quadratic spline couplings for tables and small images
(Durkan et al., 2019).

A monotone rational-quadratic spline maps :math:`[-B, B]` onto itself through
:math:`K` bins with knots :math:`(x_k, y_k)`, :math:`x_0 = y_0 = -B`,
:math:`x_K = y_K = B`, and positive derivatives :math:`d_k` at the knots. In bin
:math:`k`, with :math:`w_k = x_{k+1} - x_k`, :math:`h_k = y_{k+1} - y_k`,
:math:`s_k = h_k / w_k` and :math:`\xi = (x - x_k) / w_k \in [0, 1]`,

.. math:: y = y_k + \frac{h_k \left(s_k \xi^2 + d_k \xi (1 - \xi)\right)}
                        {s_k + (d_{k+1} + d_k - 2 s_k)\, \xi (1 - \xi)},

.. math:: \frac{dy}{dx} = \frac{s_k^2 \left(d_{k+1} \xi^2 + 2 s_k \xi (1 - \xi)
                                 + d_k (1 - \xi)^2\right)}
                                {\left(s_k + (d_{k+1} + d_k - 2 s_k)\, \xi (1 - \xi)\right)^2}.

Outside :math:`[-B, B]` the map is the identity (linear tails), and :math:`d_0 = d_K
= 1`, so value and slope are continuous at :math:`\pm B`: points that Langevin moves
far outside the data's range still map, invert exactly and have a finite
log-determinant (zero from the tails). The inverse solves, per bin, the quadratic
:math:`a \xi^2 + b \xi + c = 0` with

.. math:: a = h_k (s_k - d_k) + (y - y_k)\, \delta_k, \quad
          b = h_k d_k - (y - y_k)\, \delta_k, \quad
          c = -s_k (y - y_k), \quad \delta_k = d_{k+1} + d_k - 2 s_k,

through the cancellation-free root :math:`\xi = 2c / (-b - \sqrt{b^2 - 4ac})`.

On images ``(c, h, w)`` in [-1, 1] the flow first applies the exact logit map of the
image flows (:class:`~coopkit.flows.glow.Logit`), then the couplings on the
:math:`chw` flattened pixels: every pixel conditions every other, which on 8x8 to 16x16
greyscale images learns faster than a convolutional Glow of the same budget
(``docs/guide/tuning.md``).

References:
    Durkan, Bekasov, Murray & Papamakarios, "Neural Spline Flows", NeurIPS 2019.
    https://arxiv.org/abs/1906.04032

    Xie, Zhu, Li & Li, "A Tale of Two Flows: Cooperative Learning of Langevin Flow and
    Normalizing Flow Toward Energy-Based Model", ICLR 2022.
    https://arxiv.org/abs/2205.06924
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from coopkit.flows.base import ActNorm, Chain, Flow, Transform
from coopkit.flows.coupling import mlp
from coopkit.flows.glow import Logit
from coopkit.flows.whitening import Whitening

MIN_BIN_SIZE = 1e-3
MIN_DERIVATIVE = 1e-3
# softplus(raw + _DERIVATIVE_SHIFT) + MIN_DERIVATIVE == 1 at raw == 0: a zero conditioner
# output gives equal bins with unit slopes everywhere, i.e. the identity.
_DERIVATIVE_SHIFT = math.log(math.expm1(1 - MIN_DERIVATIVE))


def _knots(raw: Tensor, bound: float) -> tuple[Tensor, Tensor]:
    """Knot positions ``(..., K + 1)`` from ``-bound`` to ``bound`` and bin sizes ``(..., K)``."""
    n_bins = raw.shape[-1]
    fractions = MIN_BIN_SIZE + (1 - MIN_BIN_SIZE * n_bins) * torch.softmax(raw, dim=-1)
    inner = bound * (2 * torch.cumsum(fractions, dim=-1)[..., :-1] - 1)
    edge = inner.new_full((*inner.shape[:-1], 1), bound)
    knots = torch.cat([-edge, inner, edge], dim=-1)
    return knots, knots.diff(dim=-1)


def _log_slope(xi: Tensor, slope: Tensor, d_left: Tensor, d_right: Tensor) -> Tensor:
    """``log dy/dx`` inside a bin at the relative position ``xi`` (the module's formula)."""
    between = xi * (1 - xi)
    denominator = slope + (d_right + d_left - 2 * slope) * between
    numerator = d_right * xi**2 + 2 * slope * between + d_left * (1 - xi) ** 2
    return 2 * slope.log() + numerator.log() - 2 * denominator.log()


def rational_quadratic_spline(
    x: Tensor,
    widths: Tensor,
    heights: Tensor,
    derivatives: Tensor,
    bound: float,
    inverse: bool = False,
) -> tuple[Tensor, Tensor]:
    r"""Monotone rational-quadratic spline on ``[-bound, bound]``, identity outside.

    The unconstrained parameters become bins and slopes as in Durkan et al. (2019):
    bin sizes are a softmax (each at least ``MIN_BIN_SIZE`` of the interval), interior
    knot derivatives :math:`10^{-3} + \operatorname{softplus}(\cdot)`, shifted so that
    all-zero parameters give the identity; the derivatives at :math:`\pm B` are 1.

    Args:
        x: inputs of any shape ``S`` (outputs of the spline when ``inverse``).
        widths: unnormalised bin widths, ``(*S, K)``.
        heights: unnormalised bin heights, ``(*S, K)``.
        derivatives: unconstrained interior knot derivatives, ``(*S, K - 1)``.
        bound: ``B``, half-width of the interval where the spline acts.
        inverse: map ``y`` back to ``x`` instead.

    Returns:
        The transformed values, shape ``S``, and elementwise :math:`\log |dy/dx|` (of
        the direction computed), shape ``S``.

    Examples:
        >>> x = torch.tensor([-30.0, -1.0, 0.5, 4.9, 30.0])
        >>> params = torch.randn(3, 5, 4, generator=torch.Generator().manual_seed(0))
        >>> y, logdet = rational_quadratic_spline(x, params[0], params[1], params[2, :, :3], 5.0)
        >>> y[[0, 4]].tolist(), logdet[[0, 4]].tolist()  # identity tails
        ([-30.0, 30.0], [0.0, 0.0])
        >>> back, inverse_logdet = rational_quadratic_spline(
        ...     y, params[0], params[1], params[2, :, :3], 5.0, inverse=True
        ... )
        >>> torch.allclose(back, x, atol=1e-5), bool((logdet + inverse_logdet).abs().max() < 1e-5)
        (True, True)
    """
    knots_x, bin_widths = _knots(widths, bound)
    knots_y, bin_heights = _knots(heights, bound)
    one = derivatives.new_ones((*derivatives.shape[:-1], 1))
    slopes = torch.cat([one, MIN_DERIVATIVE + F.softplus(derivatives + _DERIVATIVE_SHIFT), one], -1)

    inside = (x >= -bound) & (x <= bound)
    clamped = x.clamp(-bound, bound).unsqueeze(-1)
    knots = knots_y if inverse else knots_x
    k = torch.searchsorted(knots, clamped, right=True).clamp(1, widths.shape[-1]) - 1

    def pick(t: Tensor) -> Tensor:
        return t.gather(-1, k).squeeze(-1)

    x_k, w_k, y_k, h_k = pick(knots_x), pick(bin_widths), pick(knots_y), pick(bin_heights)
    d_left, d_right = pick(slopes[..., :-1]), pick(slopes[..., 1:])
    slope = h_k / w_k
    value = clamped.squeeze(-1)
    if inverse:
        rise = value - y_k
        curvature = d_right + d_left - 2 * slope
        a = h_k * (slope - d_left) + rise * curvature
        b = h_k * d_left - rise * curvature
        c = -slope * rise
        discriminant = (b**2 - 4 * a * c).clamp_min(0)
        xi = (2 * c / (-b - discriminant.sqrt())).clamp(0, 1)
        out = x_k + xi * w_k
        log_slope = -_log_slope(xi, slope, d_left, d_right)
    else:
        xi = ((value - x_k) / w_k).clamp(0, 1)
        between = xi * (1 - xi)
        denominator = slope + (d_right + d_left - 2 * slope) * between
        out = y_k + h_k * (slope * xi**2 + d_left * between) / denominator
        log_slope = _log_slope(xi, slope, d_left, d_right)
    return torch.where(inside, out, x), torch.where(inside, log_slope, torch.zeros_like(x))


class SplineCoupling(Transform):
    r"""One masked rational-quadratic spline coupling layer on ``(n, features)`` inputs.

    The features with ``mask == 1`` pass unchanged and condition, through an MLP, the
    spline applied to each of the others. The MLP sees them squashed into the spline's
    interval, :math:`B \tanh(x / B)`, so a coordinate that Langevin moved far out
    cannot make the other coordinates' splines arbitrarily steep (their inverse would
    lose precision). With no feature kept (one-feature tables) the MLP sees a constant,
    so the spline is learned unconditionally.

    Examples:
        >>> layer = SplineCoupling(torch.tensor([1, 0]), 16, n_hidden=1, n_bins=8, bound=5.0)
        >>> x = torch.randn(4, 2)
        >>> y, logdet = layer(x)
        >>> torch.allclose(y, x, atol=1e-6), logdet.abs().max().item() < 1e-6  # identity
        (True, True)
    """

    def __init__(
        self, mask: Tensor, hidden_features: int, n_hidden: int, n_bins: int, bound: float
    ) -> None:
        super().__init__()
        self.register_buffer("kept", mask.nonzero().flatten(), persistent=False)
        self.register_buffer("free", (mask == 0).nonzero().flatten(), persistent=False)
        self.n_bins = n_bins
        self.bound = bound
        n_params = self.free.numel() * (3 * n_bins - 1)
        self.net = mlp(max(self.kept.numel(), 1), n_params, hidden_features, n_hidden)

    def _spline(self, x: Tensor, inverse: bool) -> tuple[Tensor, Tensor]:
        if self.kept.numel():
            kept = self.bound * torch.tanh(x[:, self.kept] / self.bound)
        else:
            kept = x.new_ones(x.shape[0], 1)
        params = self.net(kept).view(x.shape[0], self.free.numel(), 3 * self.n_bins - 1)
        widths, heights, derivatives = params.split([self.n_bins, self.n_bins, self.n_bins - 1], -1)
        free, log_slope = rational_quadratic_spline(
            x[:, self.free], widths, heights, derivatives, self.bound, inverse=inverse
        )
        return x.index_copy(1, self.free, free), log_slope.sum(dim=1)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return self._spline(x, inverse=False)

    def inverse(self, y: Tensor) -> tuple[Tensor, Tensor]:
        return self._spline(y, inverse=True)


class NSF(Flow):
    """Neural spline flow: ActNorm (or whitening), then ``n_layers`` spline couplings
    with alternating masks, each followed by an ActNorm. Input ``(n, features)``, or images
    ``(n, c, h, w)`` in [-1, 1], which pass the :class:`~coopkit.flows.glow.Logit` map
    and are flattened to ``(n, c*h*w)`` first.

    Tables reach flows standardised, and the first ActNorm standardises them again
    (for images: their logits), so the default ``bound`` 5 covers the data; beyond it
    every layer is the identity.

    Args:
        event_shape: ``(features,)`` or ``(c, h, w)``.
        n_layers: number of spline coupling layers.
        hidden_features: width of each conditioner MLP.
        n_hidden: hidden layers per conditioner.
        n_bins: spline bins ``K`` (at least 2).
        bound: ``B``, the splines act on ``[-B, B]``.
        whiten: a first layer that whitens with the data's mean and covariance
            (:class:`~coopkit.flows.whitening.Whitening`) instead of the first ActNorm,
            so that the flow starts at the data's full-covariance Gaussian fit.

    Examples:
        >>> flow = NSF((2,), n_layers=2, hidden_features=16)
        >>> x = torch.randn(64, 2)
        >>> flow.initialize(x)
        >>> far = torch.tensor([[50.0, -1e3]])
        >>> z, logdet = flow(far)
        >>> bool(torch.isfinite(z).all() and torch.isfinite(logdet).all())
        True
        >>> torch.allclose(flow.inverse(z)[0], far)
        True
        >>> images = NSF((1, 4, 4), hidden_features=16)
        >>> pixels = torch.rand(8, 1, 4, 4) * 2 - 1
        >>> images.initialize(pixels)
        >>> z, logdet = images(pixels)
        >>> z.shape, torch.allclose(images.inverse(z)[0], pixels, atol=1e-5)
        (torch.Size([8, 1, 4, 4]), True)
    """

    def __init__(
        self,
        event_shape: tuple[int, ...],
        n_layers: int = 4,
        hidden_features: int = 64,
        n_hidden: int = 2,
        n_bins: int = 8,
        bound: float = 5.0,
        whiten: bool = False,
    ) -> None:
        if len(event_shape) not in (1, 3):
            raise ValueError(
                f"nsf takes tables, event_shape (features,), or images (c, h, w); got "
                f"{tuple(event_shape)}."
            )
        for name, value in [("n_layers", n_layers), ("hidden_features", hidden_features)]:
            if value < 1:
                raise ValueError(f"{name} must be >= 1; got {value!r}.")
        if n_hidden < 0:
            raise ValueError(f"n_hidden must be >= 0; got {n_hidden!r}.")
        if not 2 <= n_bins < 1 / MIN_BIN_SIZE:
            raise ValueError(
                f"n_bins must lie in [2, {round(1 / MIN_BIN_SIZE) - 1}]; got {n_bins!r}."
            )
        if not bound > 0:
            raise ValueError(f"bound must be positive; got {bound!r}.")
        super().__init__(event_shape)
        features = math.prod(self.event_shape)
        self.logit = Logit() if len(self.event_shape) == 3 else None
        layers: list[Transform] = [Whitening(features) if whiten else ActNorm(features)]
        for i in range(n_layers):
            mask = (torch.arange(features) + i) % 2 if features > 1 else torch.zeros(1)
            layers += [
                SplineCoupling(mask, hidden_features, n_hidden, n_bins, float(bound)),
                ActNorm(features),
            ]
        self.chain = Chain(layers)

    def _check(self, x: Tensor) -> None:
        if x.dim() != len(self.event_shape) + 1 or tuple(x.shape[1:]) != self.event_shape:
            shape = ", ".join(str(s) for s in self.event_shape)
            raise ValueError(
                f"nsf was built for batches of shape (n, {shape}); got a batch of shape "
                f"{tuple(x.shape)}. Build the flow with the event_shape of the data."
            )

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        self._check(x)
        if self.logit is None:
            return self.chain(x)
        u, logit_logdet = self.logit(x)
        z, logdet = self.chain(u.flatten(1))
        return z.view_as(x), logit_logdet + logdet

    def inverse(self, z: Tensor) -> tuple[Tensor, Tensor]:
        self._check(z)
        if self.logit is None:
            return self.chain.inverse(z)
        u, logdet = self.chain.inverse(z.flatten(1))
        x, logit_logdet = self.logit.inverse(u.view_as(z))
        return x, logdet + logit_logdet
