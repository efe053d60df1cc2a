r"""A full-covariance affine layer that starts at the data's own Gaussian.

.. math:: y = L^{-1} (x - \mu), \qquad
          \log\left|\det \frac{\partial y}{\partial x}\right| = -\sum_i \log L_{ii},

with :math:`L` lower triangular with a positive diagonal. The first forward call in the
data → latent direction sets :math:`\mu` and :math:`L L^\top` to the batch's mean and
covariance (shrunk toward its diagonal by ``shrinkage``, so that a batch with fewer rows
than features, or features that never vary, still gives an invertible map). A flow whose
first layer this is, followed by couplings that start as the identity, starts exactly
at the full-covariance Gaussian fit of its inputs: on nearly Gaussian data, such as
natural-image patches, every step of training then starts from that baseline, where a
per-feature ActNorm leaves the whole covariance for the couplings to learn. ``μ`` and
``L`` are trained with the rest of the flow. Inputs ``(n, features)``.

References:
    Xie, Zhu, Li & Li, "A Tale of Two Flows: Cooperative Learning of Langevin Flow and
    Normalizing Flow Toward Energy-Based Model", ICLR 2022.
    https://arxiv.org/abs/2205.06924

    Kingma & Dhariwal, "Glow: Generative Flow with Invertible 1x1 Convolutions",
    NeurIPS 2018 (the data-dependent initialisation). https://arxiv.org/abs/1807.03039

Examples:
    >>> g = torch.Generator().manual_seed(0)
    >>> x = torch.randn(2000, 2, generator=g) @ torch.tensor([[2.0, 0.0], [1.5, 0.5]]) + 3
    >>> layer = Whitening(2, shrinkage=0.0)
    >>> y, logdet = layer(x)
    >>> torch.allclose(torch.cov(y.T), torch.eye(2), atol=0.01)
    True
    >>> torch.allclose(layer.inverse(y)[0], x, atol=1e-4)
    True
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from coopkit.flows.base import Transform


class Whitening(Transform):
    """``y = L⁻¹(x - μ)`` with ``μ`` and ``L`` set from the first batch (module docstring).

    Args:
        features: the number of features.
        shrinkage: ``λ`` in [0, 1], the covariance starts as ``(1 - λ) Σ + λ diag(Σ)``,
            with variances below ``min_variance`` raised to 1 first (as ActNorm does).
    """

    min_variance = 1e-6

    def __init__(self, features: int, shrinkage: float = 0.05) -> None:
        super().__init__()
        if not 0 <= shrinkage <= 1:
            raise ValueError(f"shrinkage must lie in [0, 1]; got {shrinkage!r}.")
        self.shrinkage = shrinkage
        self.shift = nn.Parameter(torch.zeros(features))
        self.lower = nn.Parameter(torch.zeros(features, features))
        self.log_diagonal = nn.Parameter(torch.zeros(features))
        self.register_buffer("initialized", torch.tensor(False))

    @torch.no_grad()
    def _initialize(self, x: Tensor) -> None:
        x = x.double()
        centred = x - x.mean(dim=0)
        covariance = centred.T @ centred / max(len(x) - 1, 1)
        variance = covariance.diagonal()
        small = variance < self.min_variance
        covariance[small, :], covariance[:, small] = 0.0, 0.0
        covariance.diagonal()[small] = 1.0
        diagonal = torch.diag(covariance.diagonal())
        covariance = (1 - self.shrinkage) * covariance + self.shrinkage * diagonal
        factor = torch.linalg.cholesky(covariance)
        self.shift.copy_(x.mean(dim=0))
        self.lower.copy_(factor.tril(-1))
        self.log_diagonal.copy_(factor.diagonal().log())
        self.initialized.fill_(True)

    def _factor(self) -> Tensor:
        return self.lower.tril(-1) + torch.diag(self.log_diagonal.exp())

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        if not self.initialized:
            self._initialize(x)
        solved = torch.linalg.solve_triangular(self._factor(), (x - self.shift).T, upper=False)
        return solved.T, (-self.log_diagonal.sum()).expand(len(x))

    def inverse(self, y: Tensor) -> tuple[Tensor, Tensor]:
        return y @ self._factor().T + self.shift, self.log_diagonal.sum().expand(len(y))
