r"""RealNVP: affine coupling layers with MLP conditioners, for tables.

With a binary mask :math:`m` (1 = kept), one coupling layer maps

.. math:: y = m \odot x + (1 - m) \odot \left(x \odot e^{s(m \odot x)} + t(m \odot x)\right),
          \qquad \log|\det J| = \sum_i (1 - m_i)\, s_i(m \odot x),

with the log-scale bounded smoothly, :math:`s = B \tanh(\hat{s} / B)`, so one layer
can never scale by more than :math:`e^{\pm B}` (Dinh et al., 2017).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from coopkit.flows.base import ActNorm, Chain, Flow, Transform


def mlp(in_features: int, out_features: int, hidden_features: int, n_hidden: int) -> nn.Sequential:
    """An MLP with SiLU activations whose last layer starts at zero (identity coupling).

    Examples:
        >>> net = mlp(2, 4, hidden_features=16, n_hidden=2)
        >>> net(torch.randn(3, 2)).abs().max().item()
        0.0
    """
    layers: list[nn.Module] = []
    width = in_features
    for _ in range(n_hidden):
        layers += [nn.Linear(width, hidden_features), nn.SiLU()]
        width = hidden_features
    last = nn.Linear(width, out_features)
    nn.init.zeros_(last.weight)
    nn.init.zeros_(last.bias)
    return nn.Sequential(*layers, last)


class AffineCoupling(Transform):
    """One masked affine coupling layer on ``(n, features)`` inputs.

    Examples:
        >>> layer = AffineCoupling(torch.tensor([1, 0]), 16, n_hidden=1, scale_bound=3.0)
        >>> x = torch.randn(4, 2)
        >>> y, logdet = layer(x)
        >>> torch.equal(y, x), logdet.abs().max().item()  # it starts as the identity
        (True, 0.0)
    """

    def __init__(
        self, mask: Tensor, hidden_features: int, n_hidden: int, scale_bound: float
    ) -> None:
        super().__init__()
        features = mask.numel()
        self.register_buffer("mask", mask.float())
        self.net = mlp(features, 2 * features, hidden_features, n_hidden)
        self.scale_bound = scale_bound

    def _scale_shift(self, kept: Tensor) -> tuple[Tensor, Tensor]:
        raw_scale, shift = self.net(kept).chunk(2, dim=1)
        free = 1 - self.mask
        scale = self.scale_bound * (raw_scale / self.scale_bound).tanh() * free
        return scale, shift * free

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        mask = self.mask.to(x.dtype)
        scale, shift = self._scale_shift(x * mask)
        return x * scale.exp() + shift, scale.sum(dim=1)

    def inverse(self, y: Tensor) -> tuple[Tensor, Tensor]:
        mask = self.mask.to(y.dtype)
        scale, shift = self._scale_shift(y * mask)
        return (y - shift) * (-scale).exp(), -scale.sum(dim=1)


class RealNVP(Flow):
    """ActNorm, then ``n_layers`` affine couplings with alternating masks, each followed
    by an ActNorm. Input ``(n, features)``.

    Args:
        event_shape: ``(features,)``.
        n_layers: number of coupling layers.
        hidden_features: width of each conditioner MLP.
        n_hidden: hidden layers per conditioner.
        scale_bound: bound ``B`` on each layer's log-scale.

    Examples:
        >>> flow = RealNVP((2,), n_layers=4)
        >>> x = torch.randn(8, 2)
        >>> z, logdet = flow(x)
        >>> torch.allclose(flow.inverse(z)[0], x, atol=1e-5)
        True
    """

    def __init__(
        self,
        event_shape: tuple[int, ...],
        n_layers: int = 8,
        hidden_features: int = 64,
        n_hidden: int = 2,
        scale_bound: float = 3.0,
    ) -> None:
        if len(event_shape) != 1:
            raise ValueError(
                f"realnvp takes tables, event_shape (features,); got {tuple(event_shape)}. "
                "Use an image flow such as 'glow' for images."
            )
        if n_layers < 1:
            raise ValueError(f"n_layers must be >= 1; got {n_layers}.")
        super().__init__(event_shape)
        (features,) = self.event_shape
        parity = torch.arange(features) % 2
        layers: list[Transform] = [ActNorm(features)]
        for i in range(n_layers):
            mask = parity if i % 2 == 0 else 1 - parity
            layers += [
                AffineCoupling(mask, hidden_features, n_hidden, scale_bound),
                ActNorm(features),
            ]
        self.chain = Chain(layers)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return self.chain(x)

    def inverse(self, z: Tensor) -> tuple[Tensor, Tensor]:
        return self.chain.inverse(z)
