r"""An MLP energy net for tables: :math:`E(x) = w^\top h(x) + b`, swish activations."""

from __future__ import annotations

import math

import torch  # noqa: F401  (doctest namespace)
from torch import Tensor, nn


class MLPEnergy(nn.Module):
    """Energy ``(n,)`` of ``(n, features)`` inputs; lower means more likely.

    Args:
        event_shape: ``(features,)``.
        hidden_features: width of each hidden layer.
        n_hidden: number of hidden layers.

    Example:
        >>> energy = MLPEnergy((2,))
        >>> energy(torch.randn(5, 2)).shape
        torch.Size([5])
    """

    def __init__(
        self, event_shape: tuple[int, ...], hidden_features: int = 128, n_hidden: int = 3
    ) -> None:
        super().__init__()
        features = math.prod(event_shape)
        layers: list[nn.Module] = [nn.Flatten()]
        width = features
        for _ in range(n_hidden):
            layers += [nn.Linear(width, hidden_features), nn.SiLU()]
            width = hidden_features
        layers.append(nn.Linear(width, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x).squeeze(1)
