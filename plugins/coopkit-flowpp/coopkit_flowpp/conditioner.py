r"""The convolutional network that computes a coupling's parameters from the kept half.

3x3 convolution, SiLU, 1x1 convolution, SiLU, optionally
:class:`~coopkit_flowpp.attention.GatedSelfAttention`, then a 3x3 convolution whose
weights start at zero, so that at initialisation every pixel gets the output layer's
bias and nothing else (the coupling starts as a fixed, input-independent map).
"""

from __future__ import annotations

from torch import nn

from coopkit_flowpp.attention import GatedSelfAttention


def conditioner(
    in_channels: int,
    out_channels: int,
    hidden_channels: int,
    attention: bool = False,
    attention_heads: int = 4,
) -> nn.Sequential:
    """``(n, in_channels, h, w) -> (n, out_channels, h, w)``; the last layer starts at zero.

    Examples:
        >>> import torch
        >>> net = conditioner(2, 6, hidden_channels=8, attention=True, attention_heads=2)
        >>> net(torch.randn(3, 2, 4, 4)).shape
        torch.Size([3, 6, 4, 4])
    """
    layers: list[nn.Module] = [
        nn.Conv2d(in_channels, hidden_channels, 3, padding=1),
        nn.SiLU(),
        nn.Conv2d(hidden_channels, hidden_channels, 1),
        nn.SiLU(),
    ]
    if attention:
        layers.append(GatedSelfAttention(hidden_channels, attention_heads))
    last = nn.Conv2d(hidden_channels, out_channels, 3, padding=1)
    nn.init.zeros_(last.weight)
    nn.init.zeros_(last.bias)
    return nn.Sequential(*layers, last)
