r"""An MLP energy net for tables, tilting a Gaussian reference.

.. math:: E(x) = f(x) + \frac{\lVert x \rVert^2}{2 \tau^2},

with :math:`f` an MLP with swish activations and :math:`\tau` = ``reference_scale``.
The quadratic term is the Gaussian reference distribution of Xie et al.'s generative
ConvNets: since :math:`f` grows at most linearly, it keeps :math:`e^{-E}` normalisable,
so Langevin chains on tables cannot escape to infinity where an MLP alone would let
the energy fall without bound. Tables reach the net standardised, so the default
:math:`\tau = 3` leaves the data's region almost untouched.

``fourier_features=k`` feeds the MLP :math:`[x, \sin(2\pi B x), \cos(2\pi B x)]`
instead of :math:`x`, with a fixed random :math:`B \in \mathbb{R}^{k \times d}` of
entries :math:`\mathcal{N}(0, \sigma^2)`, :math:`\sigma` = ``fourier_scale`` (in the
standardised units the net sees). A plain MLP on a few input dimensions learns
high-frequency functions very slowly (its spectral bias): on checkerboard it does not
learn, in thousands of steps, the sharp log-density ratio between a flow and the data,
which the sines and cosines let it express. ``octaves=L`` instead feeds it every
coordinate at octave frequencies (:class:`~coopkit.energies.features.OctaveFeatures`):
on images, flattened, each pixel's intensity gets the sharp edges that a flow's
proposals smooth over.

References:
    Xie, Zhu, Li & Li, "A Tale of Two Flows: Cooperative Learning of Langevin Flow and
    Normalizing Flow Toward Energy-Based Model", ICLR 2022.
    https://arxiv.org/abs/2205.06924

    Tancik et al., "Fourier Features Let Networks Learn High Frequency Functions in Low
    Dimensional Domains", NeurIPS 2020. https://arxiv.org/abs/2006.10739
"""

from __future__ import annotations

import math

import torch  # noqa: F401  (doctest namespace)
from torch import Tensor, nn

from coopkit.energies.features import FourierFeatures, OctaveFeatures


class MLPEnergy(nn.Module):
    r"""Energy ``(n,)`` of ``(n, features)`` inputs; lower means more likely.

    Args:
        event_shape: ``(features,)``.
        hidden_features: width of each hidden layer.
        n_hidden: number of hidden layers.
        reference_scale: ``τ``, standard deviation of the Gaussian reference; ``None``
            drops the quadratic term.
        fourier_features: ``k``, the number of random frequencies (0: none).
        fourier_scale: ``σ``, the standard deviation of the frequencies.
        octaves: ``L``, per-coordinate features at :math:`2^i \pi`, ``i < L`` (0: none;
            not together with ``fourier_features``).

    Examples:
        >>> energy = MLPEnergy((2,))
        >>> energy(torch.randn(5, 2)).shape
        torch.Size([5])
    """

    def __init__(
        self,
        event_shape: tuple[int, ...],
        hidden_features: int = 128,
        n_hidden: int = 3,
        reference_scale: float | None = 3.0,
        fourier_features: int = 0,
        fourier_scale: float = 1.0,
        octaves: int = 0,
    ) -> None:
        super().__init__()
        if fourier_features and octaves:
            raise ValueError(
                f"fourier_features and octaves are two kinds of input features; give one "
                f"(got fourier_features={fourier_features!r}, octaves={octaves!r})."
            )
        if reference_scale is not None and not reference_scale > 0:
            raise ValueError(f"reference_scale must be positive or None; got {reference_scale!r}.")
        self.reference_scale = reference_scale
        features = math.prod(event_shape)
        layers: list[nn.Module] = [nn.Flatten()]
        width = features
        if fourier_features != 0:
            layers.append(FourierFeatures(features, fourier_features, fourier_scale))
            width = features + 2 * fourier_features
        if octaves != 0:
            layers.append(OctaveFeatures(octaves))
            width = features * (1 + 2 * octaves)
        for _ in range(n_hidden):
            layers += [nn.Linear(width, hidden_features), nn.SiLU()]
            width = hidden_features
        layers.append(nn.Linear(width, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        energy = self.net(x).squeeze(1)
        if self.reference_scale is None:
            return energy
        return energy + 0.5 * (x.flatten(1) ** 2).sum(dim=1) / self.reference_scale**2
