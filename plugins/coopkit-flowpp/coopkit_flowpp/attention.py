r"""Gated multi-head self-attention over the spatial positions of a feature map.

Flow++ puts self-attention in its conditioners so that a coupling's parameters at one
pixel can depend on the whole image. For a feature map :math:`h` of shape
``(n, c, height, width)`` with its :math:`P = height \cdot width` positions as tokens:

.. math::
    q, k, v = W_{qkv}\, \operatorname{norm}(h), \qquad
    o = \operatorname{softmax}\!\bigl(q k^\top / \sqrt{c / H}\bigr) v
        \text{ per head (} H \text{ heads)},

.. math:: a, g = W_o\, o, \qquad h' = h + a \odot \sigma(g),

with :math:`W_{qkv}` and :math:`W_o` 1x1 convolutions and ``norm`` a layer norm over
channels (a one-group :class:`~torch.nn.GroupNorm`). The gate lets a block start
close to the identity and open up as it learns.
"""

from __future__ import annotations

from torch import Tensor, nn
from torch.nn import functional as F


class GatedSelfAttention(nn.Module):
    """Residual, gated multi-head self-attention; ``(n, c, h, w) -> (n, c, h, w)``.

    Args:
        channels: ``c``, divisible by ``heads``.
        heads: number of attention heads.

    Examples:
        >>> import torch
        >>> block = GatedSelfAttention(8, heads=2)
        >>> block(torch.randn(3, 8, 4, 4)).shape
        torch.Size([3, 8, 4, 4])
    """

    def __init__(self, channels: int, heads: int) -> None:
        super().__init__()
        if heads < 1 or channels % heads:
            raise ValueError(
                f"attention needs channels divisible by heads; got channels={channels}, "
                f"heads={heads}. Pick a hidden_channels that is a multiple of attention_heads."
            )
        self.heads = heads
        self.norm = nn.GroupNorm(1, channels)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.out = nn.Conv2d(channels, 2 * channels, 1)

    def forward(self, h: Tensor) -> Tensor:
        n, c, height, width = h.shape
        qkv = self.qkv(self.norm(h)).reshape(n, 3, self.heads, c // self.heads, height * width)
        q, k, v = qkv.transpose(-1, -2).unbind(dim=1)
        o = F.scaled_dot_product_attention(q, k, v)
        o = o.transpose(-1, -2).reshape(n, c, height, width)
        a, g = self.out(o).chunk(2, dim=1)
        return h + a * g.sigmoid()
