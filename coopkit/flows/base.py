r"""The flow contract: invertible transforms with exact log-determinants.

A :class:`Transform` is a bijection :math:`y = f(x)` that also returns
:math:`\log |\det \partial f / \partial x|` per sample. A :class:`Flow` is a transform
from data to latent space, :math:`z = f(x)`, with a standard normal base density, so

.. math:: \log q(x) = \log \mathcal{N}(f(x); 0, I) + \log |\det \partial f / \partial x|.

Sampling runs the other way: :math:`x = f^{-1}(z)`, :math:`z \sim \mathcal{N}(0, T^2 I)`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch import Tensor, nn


class Transform(nn.Module):
    """An invertible map with log-determinants; subclasses define both directions.

    ``forward(x) -> (y, logdet)`` and ``inverse(y) -> (x, logdet)``, each ``logdet`` of
    shape ``(n,)`` and equal to the log absolute Jacobian determinant of that direction.
    """

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:  # pragma: no cover - abstract
        raise NotImplementedError

    def inverse(self, y: Tensor) -> tuple[Tensor, Tensor]:  # pragma: no cover - abstract
        raise NotImplementedError


class Chain(Transform):
    """Transforms applied one after another; log-determinants add up.

    Examples:
        >>> chain = Chain([ActNorm(3), ActNorm(3)])
        >>> y, logdet = chain(torch.randn(5, 3))
        >>> y.shape, logdet.shape
        (torch.Size([5, 3]), torch.Size([5]))
    """

    def __init__(self, transforms: Iterable[Transform]) -> None:
        super().__init__()
        self.transforms = nn.ModuleList(transforms)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        logdet = x.new_zeros(x.shape[0])
        for transform in self.transforms:
            x, ld = transform(x)
            logdet = logdet + ld
        return x, logdet

    def inverse(self, y: Tensor) -> tuple[Tensor, Tensor]:
        logdet = y.new_zeros(y.shape[0])
        for transform in reversed(self.transforms):
            y, ld = transform.inverse(y)
            logdet = logdet + ld
        return y, logdet


class ActNorm(Transform):
    r"""Per-feature (or per-channel) affine map with data-dependent initialisation.

    :math:`y = (x - b) \odot e^{-s}`. The first forward call in the data → latent
    direction sets :math:`b` and :math:`e^{s}` to the batch mean and standard deviation
    of each feature, so that the output starts standardised (Kingma & Dhariwal, 2018).
    A feature with no spread in that batch (standard deviation below ``min_scale``, such
    as a pixel that is blank in every image of the batch) starts with scale 1 instead:
    dividing by its near-zero spread would blow up every later batch where it varies.
    Inputs are ``(n, features)`` or ``(n, channels, h, w)``; for images the statistics
    are per channel and the log-determinant counts every pixel.

    Examples:
        >>> norm = ActNorm(2)
        >>> y, _ = norm(torch.randn(100, 2) * 3 + 1)
        >>> bool(abs(y.mean()) < 1e-5)
        True
    """

    min_scale = 1e-3

    def __init__(self, features: int) -> None:
        super().__init__()
        self.shift = nn.Parameter(torch.zeros(features))
        self.log_scale = nn.Parameter(torch.zeros(features))
        self.register_buffer("initialized", torch.tensor(False))

    def _view(self, param: Tensor, x: Tensor) -> Tensor:
        return param.view(1, -1, *([1] * (x.dim() - 2)))

    @torch.no_grad()
    def _initialize(self, x: Tensor) -> None:
        dims = [d for d in range(x.dim()) if d != 1]
        self.shift.copy_(x.mean(dim=dims))
        scale = x.std(dim=dims) if x.numel() // x.shape[1] > 1 else torch.ones_like(self.shift)
        self.log_scale.copy_(torch.where(scale > self.min_scale, scale, 1.0).log())
        self.initialized.fill_(True)

    def _logdet(self, x: Tensor) -> Tensor:
        pixels = math.prod(x.shape[2:])
        return (-self.log_scale.sum() * pixels).expand(x.shape[0])

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        if not self.initialized:
            self._initialize(x)
        y = (x - self._view(self.shift, x)) * torch.exp(-self._view(self.log_scale, x))
        return y, self._logdet(x)

    def inverse(self, y: Tensor) -> tuple[Tensor, Tensor]:
        x = y * torch.exp(self._view(self.log_scale, y)) + self._view(self.shift, y)
        return x, -self._logdet(y)


class Flow(Transform):
    """A normalizing flow from data to latent space with a standard normal base.

    Subclasses implement ``forward`` (data → latent) and ``inverse`` (latent → data)
    and set ``event_shape``, the shape of one sample. Latents have the same number of
    elements as data, shaped ``(n, *event_shape)``.

    Examples:
        >>> from coopkit.flows import RealNVP
        >>> flow = RealNVP((2,))
        >>> flow.initialize(torch.randn(256, 2))  # ActNorm's data-dependent initialisation
        >>> flow.log_prob(torch.zeros(3, 2)).shape
        torch.Size([3])
        >>> flow.sample(5, generator=torch.Generator().manual_seed(0)).shape
        torch.Size([5, 2])
    """

    event_shape: tuple[int, ...]

    def __init__(self, event_shape: tuple[int, ...]) -> None:
        super().__init__()
        self.event_shape = tuple(int(s) for s in event_shape)

    def _reference(self) -> Tensor:
        for tensor in [*self.parameters(), *self.buffers()]:
            if tensor.is_floating_point():
                return tensor
        return torch.empty(0)

    def log_prob(self, x: Tensor) -> Tensor:
        """Exact log-density ``log q(x)`` of ``x``, ``(n, *event_shape)`` -> ``(n,)``."""
        z, logdet = self(x)
        flat = z.reshape(z.shape[0], -1)
        base = -0.5 * (flat**2).sum(dim=1) - 0.5 * flat.shape[1] * math.log(2 * math.pi)
        return base + logdet

    def sample(
        self,
        n: int,
        generator: torch.Generator | None = None,
        temperature: float = 1.0,
    ) -> Tensor:
        """Draw ``(n, *event_shape)`` samples by inverting ``z ~ N(0, temperature² I)``.

        ``z`` is drawn on the generator's device (a CPU generator gives the same
        samples whatever device the flow is on), then moved to the flow's.
        """
        ref = self._reference()
        device = generator.device if generator is not None else ref.device
        z = torch.randn((n, *self.event_shape), generator=generator, device=device)
        x, _ = self.inverse(z.to(ref.device, ref.dtype) * temperature)
        return x

    @torch.no_grad()
    def initialize(self, x: Tensor) -> None:
        """Run the data-dependent initialisation (ActNorm layers) on the batch ``x``."""
        self(x)
