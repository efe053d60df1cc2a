r"""The paper's convolutional energy net for images, as in the released CoopFlow code.

For an input :math:`x` of shape ``(c, s, s)`` with :math:`s = 4 \cdot 2^k`,

.. math:: h_0 = \phi(W_0 * x), \qquad
          h_{i+1} = \operatorname{pool}\!\big(\phi(W_{i,2} * \phi(W_{i,1} * h_i))
          + \phi(V_i * h_i)\big),
          \qquad E(x) = \sum_{j=1}^{100} (U * h_k)_j,

with :math:`\phi` the swish (SiLU), :math:`W_0`, :math:`W_{i,\cdot}` and the skip
:math:`V_i` 3x3 convolutions (:math:`W_{i,1}` keeps the width, :math:`W_{i,2}` and
:math:`V_i` change it), pool a 2x2 average pooling and :math:`U` a 4x4 convolution to
100 outputs over the final 4x4 map (with ``octaves=L``, :math:`x` is first replaced
by its :class:`~coopkit.energies.features.OctaveFeatures`, :math:`2L` more channels per
channel, so the first convolution can see sharp functions of each pixel's value).
Block :math:`i` maps :math:`\min(2^i, 8)\,n_f` to
:math:`\min(2^{i+1}, 8)\,n_f` channels, so at 32x32 the widths are
:math:`n_f \to 2n_f \to 4n_f \to 8n_f` as in CoopFlow (Xie et al., 2022), which uses
:math:`n_f = 128` there: 17,129,444 parameters for 3 channels, the paper's 17.1M. No
spectral norm. Every operation is smooth, so the energy is twice differentiable in
:math:`x` (reconstruction back-propagates through Langevin steps, which contain
:math:`\nabla_x E`).

References:
    Xie, Zhu, Li & Wu, "A Tale of Two Flows: Cooperative Learning of Langevin Flow and
    Normalizing Flow Toward Energy-Based Model", ICLR 2022.
    https://arxiv.org/abs/2205.06924
"""

from __future__ import annotations

import itertools

import torch  # noqa: F401  (doctest namespace)
from torch import Tensor, nn

from coopkit.energies.features import OctaveFeatures

MAX_WIDTH_FACTOR = 8


class ResidualDown(nn.Module):
    """Residual block that halves the spatial size, ``(n, c_in, s, s)`` to
    ``(n, c_out, s/2, s/2)``: two 3x3 convolutions beside a 3x3 skip, each branch
    activated, summed, then average-pooled.

    Examples:
        >>> ResidualDown(4, 8)(torch.randn(2, 4, 8, 8)).shape
        torch.Size([2, 8, 4, 4])
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, in_channels, 3, padding=1),
            nn.SiLU(),
            nn.Conv2d(in_channels, out_channels, 3, padding=1),
            nn.SiLU(),
        )
        self.skip = nn.Sequential(nn.Conv2d(in_channels, out_channels, 3, padding=1), nn.SiLU())
        self.pool = nn.AvgPool2d(2)

    def forward(self, h: Tensor) -> Tensor:
        return self.pool(self.body(h) + self.skip(h))


def n_blocks(size: int) -> int:
    """Number of downsampling blocks ``k`` that bring ``size = 4 * 2**k`` to 4.

    Examples:
        >>> n_blocks(8), n_blocks(32)
        (1, 3)
    """
    k = (size // 4).bit_length() - 1
    if size < 4 or 4 * 2**k != size:
        raise ValueError(
            f"ConvEnergy needs an image size of the form 4 * 2**k (4, 8, 16, 32, 64, ...); "
            f"got {size}. Resize or pad the images to such a size."
        )
    return k


class ConvEnergy(nn.Module):
    r"""Energy ``(n,)`` of ``(n, c, h, w)`` images; lower means more likely.

    Args:
        event_shape: ``(c, h, w)`` with ``h == w == 4 * 2**k``; depth is ``k`` blocks
            (8x8: 1, 16x16: 2, 32x32: 3, 64x64: 4).
        n_f: width of the first layer. The default 32 is fast on a CPU for 8x8 digits;
            the paper uses 128 at 32x32 (17,129,444 parameters for 3 channels).
        n_outputs: outputs of the final 4x4 convolution, summed to the energy.
        octaves: ``L``, each pixel's value at :math:`2^i \pi`, ``i < L``, as extra input
            channels (0: none).

    Examples:
        >>> energy = ConvEnergy((1, 8, 8))
        >>> energy(torch.rand(5, 1, 8, 8)).shape
        torch.Size([5])
    """

    def __init__(
        self, event_shape: tuple[int, ...], n_f: int = 32, n_outputs: int = 100, octaves: int = 0
    ) -> None:
        super().__init__()
        if len(event_shape) != 3:
            raise ValueError(
                f"ConvEnergy takes images: event_shape must be (c, h, w); got {event_shape!r}. "
                "Use the 'mlp' energy for tables."
            )
        channels, height, width = (int(size) for size in event_shape)
        if height != width:
            raise ValueError(
                f"ConvEnergy needs square images; got height {height} and width {width}."
            )
        if n_f < 1 or n_outputs < 1:
            raise ValueError(f"n_f and n_outputs must be >= 1; got {n_f} and {n_outputs}.")
        self.event_shape = (channels, height, width)
        widths = [n_f * min(2**i, MAX_WIDTH_FACTOR) for i in range(n_blocks(height) + 1)]
        self.net = nn.Sequential(
            *([OctaveFeatures(octaves)] if octaves else []),
            nn.Conv2d(channels * (1 + 2 * octaves), n_f, 3, padding=1),
            nn.SiLU(),
            *(ResidualDown(c_in, c_out) for c_in, c_out in itertools.pairwise(widths)),
            nn.Conv2d(widths[-1], n_outputs, 4),
            nn.Flatten(),
        )

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 4 or tuple(x.shape[1:]) != self.event_shape:
            raise ValueError(
                f"ConvEnergy expects input of shape (n, {', '.join(map(str, self.event_shape))}); "
                f"got {tuple(x.shape)}."
            )
        return self.net(x).sum(dim=1)
