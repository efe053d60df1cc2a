r"""The Fréchet Inception Distance through torchmetrics (``pip install coopkit[fid]``).

:func:`fid` hands images to :class:`torchmetrics.image.fid.FrechetInceptionDistance`, the
implementation most papers' numbers can be compared with: Inception-v3 features (the
2048-wide pool layer by default) of both sets, and the Fréchet distance between the two
Gaussians fitted to them,

.. math:: \lVert \mu_1 - \mu_2 \rVert^2
          + \operatorname{tr}\big(\Sigma_1 + \Sigma_2 - 2 (\Sigma_1 \Sigma_2)^{1/2}\big).

The Inception weights are downloaded by torchmetrics (through torch-fidelity) on first
use. Any ``nn.Module`` can stand in for Inception (``feature=``), as torchmetrics allows:
the test suite uses a small one, so nothing is downloaded there.

References:
    Heusel, Ramsauer, Unterthiner, Nessler & Hochreiter, "GANs Trained by a Two
    Time-Scale Update Rule Converge to a Local Nash Equilibrium", NeurIPS 2017.
    https://arxiv.org/abs/1706.08500
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.error import URLError

import numpy as np
import torch
from torch import Tensor, nn

INSTALL_HINT = "pip install 'coopkit[fid]' (torchmetrics and torch-fidelity)"
WEIGHTS_HINT = (
    "torchmetrics downloads the Inception-v3 weights (torch-fidelity's "
    "weights-inception-2015-12-05-6726825d.pth) on first use, and this machine could not "
    "fetch them. Download that file where there is a network and pass its path as "
    "weights_path=..., or copy it into torch hub's checkpoint folder "
    "(torch.hub.get_dir() + '/checkpoints')."
)


def fid(
    samples: Any,
    reference: Any,
    *,
    data_range: tuple[float, float] = (0.0, 255.0),
    feature: int | nn.Module = 2048,
    weights_path: str | None = None,
    batch_size: int = 256,
    device: str | torch.device = "cpu",
) -> float:
    """The Fréchet Inception Distance between two sets of images (lower is better).

    Args:
        samples: ``(n, c, h, w)`` or ``(n, h, w)`` images with values in ``data_range``,
            such as ``CoopFlow.sample``'s output; 1 channel is repeated to 3.
        reference: the same for the data, for example held-out images.
        data_range: ``(low, high)`` of the values; they are mapped to 0..255 and rounded
            to ``uint8``, what Inception's torchmetrics wrapper expects.
        feature: Inception's feature layer (64, 192, 768 or 2048), or a module that maps
            ``uint8`` images ``(n, 3, h, w)`` to features ``(n, d)``.
        weights_path: a local copy of the Inception weights (no download).
        batch_size: images passed through the network at once.
        device: where the features are computed.

    Raises:
        ImportError: torchmetrics (or, for Inception, torch-fidelity) is not installed.
        OSError: the Inception weights could not be downloaded (the message says how to
            provide them).

    Examples:
        A feature module of its own (no download); identical sets are 0 apart:

        >>> class MeanColour(torch.nn.Module):
        ...     def forward(self, x):
        ...         return x.float().flatten(2).mean(dim=2)
        >>> rng = np.random.default_rng(0)
        >>> a = rng.integers(0, 256, (64, 3, 8, 8))
        >>> abs(fid(a, a, feature=MeanColour())) < 1e-6
        True
        >>> fid(a, 255 - a // 2, feature=MeanColour()) > 1
        True
    """
    metric = _frechet_metric(feature, weights_path).to(device)
    for real, images in ((True, reference), (False, samples)):
        for batch in _uint8_batches(images, data_range, batch_size):
            metric.update(batch.to(device), real=real)
    return float(metric.compute())


def _frechet_metric(feature: int | nn.Module, weights_path: str | None) -> nn.Module:
    """torchmetrics' ``FrechetInceptionDistance``, with coopkit's errors when the library
    or the weights are missing."""
    try:
        from torchmetrics.image.fid import FrechetInceptionDistance
    except ImportError as exc:
        raise ImportError(f"coopkit.metrics.fid needs torchmetrics: {INSTALL_HINT}.") from exc
    try:
        return FrechetInceptionDistance(
            feature=feature, feature_extractor_weights_path=weights_path
        )
    except ModuleNotFoundError as exc:
        raise ImportError(
            f"FID with Inception features needs torch-fidelity: {INSTALL_HINT}."
        ) from exc
    except (URLError, ConnectionError, TimeoutError) as exc:
        raise OSError(f"{WEIGHTS_HINT} ({type(exc).__name__}: {exc})") from exc


def _uint8_batches(
    images: Any, data_range: tuple[float, float], batch_size: int
) -> Iterator[Tensor]:
    """``uint8`` tensors ``(b, 3, h, w)`` of ``images`` mapped from ``data_range`` to 0..255."""
    array = np.asarray(images)
    if array.ndim == 3:
        array = array[:, None]
    if array.ndim != 4 or array.shape[1] not in (1, 3) or len(array) < 2:
        raise ValueError(
            "FID takes at least 2 images shaped (n, c, h, w) with c = 1 or 3, or (n, h, w); "
            f"got shape {array.shape}."
        )
    low, high = data_range
    for start in range(0, len(array), batch_size):
        part = (array[start : start + batch_size].astype(np.float64) - low) / (high - low)
        levels = np.clip(np.rint(part * 255.0), 0, 255).astype(np.uint8)
        yield torch.from_numpy(levels).expand(-1, 3, -1, -1).contiguous()
