r"""Fixed input features that let small energy nets express sharp functions.

An MLP or a convolution applied to raw inputs learns high-frequency functions of them
very slowly (its spectral bias). Two fixed maps lift that limit:

* :class:`FourierFeatures`, random projections :math:`[x, \sin(2\pi Bx), \cos(2\pi Bx)]`
  of the whole input (tables, where the sharp structure runs across coordinates);
* :class:`OctaveFeatures`, every coordinate on its own at octave frequencies,
  :math:`[x, \sin(2^i \pi x), \cos(2^i \pi x)]_{i < L}` (images, where each pixel's
  intensity distribution has sharp edges: pixels that sit exactly at the bounds, level
  boundaries of quantised data).

References:
    Tancik et al., "Fourier Features Let Networks Learn High Frequency Functions in Low
    Dimensional Domains", NeurIPS 2020. https://arxiv.org/abs/2006.10739

    Xie, Zhu, Li & Li, "A Tale of Two Flows: Cooperative Learning of Langevin Flow and
    Normalizing Flow Toward Energy-Based Model", ICLR 2022.
    https://arxiv.org/abs/2205.06924
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


class FourierFeatures(nn.Module):
    r"""``(n, d)`` to ``(n, d + 2k)``: :math:`[x, \sin(2\pi B x), \cos(2\pi B x)]`, with
    :math:`B` a fixed ``(k, d)`` draw of :math:`\mathcal{N}(0, \sigma^2)` (a buffer, saved
    with the weights).

    Examples:
        >>> FourierFeatures(2, 8, scale=1.0)(torch.zeros(3, 2)).shape
        torch.Size([3, 18])
    """

    def __init__(self, features: int, n_frequencies: int, scale: float = 1.0) -> None:
        super().__init__()
        if (
            isinstance(n_frequencies, bool)
            or not isinstance(n_frequencies, int)
            or n_frequencies < 0
        ):
            raise ValueError(f"fourier_features must be an integer >= 0; got {n_frequencies!r}.")
        if not scale > 0:
            raise ValueError(f"fourier_scale must be positive; got {scale!r}.")
        self.register_buffer("frequencies", scale * torch.randn(n_frequencies, features))

    def forward(self, x: Tensor) -> Tensor:
        phase = 2 * math.pi * x @ self.frequencies.T
        return torch.cat([x, phase.sin(), phase.cos()], dim=1)


class OctaveFeatures(nn.Module):
    r"""Every coordinate at ``n_octaves`` octave frequencies: ``(n, c, *rest)`` to
    ``(n, c (1 + 2L), *rest)``,

    .. math:: \gamma(x) = \big[x,\ \sin(2^i \pi x),\ \cos(2^i \pi x)\big]_{i = 0}^{L - 1},

    stacked along dimension 1, so that a table ``(n, d)`` becomes ``(n, d (1 + 2L))`` and
    an image ``(n, c, h, w)`` gets :math:`2L` more channels per channel. The highest
    frequency has period :math:`2^{2 - L}`: in the image units [-1, 1], ``L = 5`` gives
    0.125, about the width of one level of 17-level data (2/17).

    Examples:
        >>> OctaveFeatures(5)(torch.zeros(2, 64)).shape
        torch.Size([2, 704])
        >>> OctaveFeatures(2)(torch.zeros(2, 1, 8, 8)).shape
        torch.Size([2, 5, 8, 8])
    """

    def __init__(self, n_octaves: int) -> None:
        super().__init__()
        if isinstance(n_octaves, bool) or not isinstance(n_octaves, int) or n_octaves < 0:
            raise ValueError(f"octaves must be an integer >= 0; got {n_octaves!r}.")
        self.register_buffer(
            "frequencies", math.pi * 2.0 ** torch.arange(n_octaves), persistent=False
        )

    def forward(self, x: Tensor) -> Tensor:
        shape = (1, 1, -1) + (1,) * (x.dim() - 2)
        phase = x.unsqueeze(2) * self.frequencies.view(shape)
        return torch.cat([x, phase.sin().flatten(1, 2), phase.cos().flatten(1, 2)], dim=1)
