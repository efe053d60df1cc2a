"""``coopkit.metrics.fid`` runs torchmetrics' ``FrechetInceptionDistance``; a small
feature module of the test's own stands in for Inception, so nothing is downloaded."""

from __future__ import annotations

import sys
from urllib.error import URLError

import numpy as np
import pytest
import torch

from coopkit import metrics


class PatchFeatures(torch.nn.Module):
    """8 features of ``uint8`` images ``(n, 3, h, w)``: a fixed random projection of the
    4x4-pooled pixels, so the test can compute the same features itself."""

    def __init__(self) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(0)
        self.register_buffer("projection", torch.randn(48, 8, generator=generator))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        pooled = torch.nn.functional.adaptive_avg_pool2d(images.float() / 255.0, 4)
        return pooled.flatten(1) @ self.projection


def images(n: int, seed: int, brightness: float = 1.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(rng.integers(0, 256, (n, 3, 16, 16)) * brightness, 0, 255).astype(np.uint8)


def test_fid_is_the_frechet_distance_of_the_features() -> None:
    samples, reference = images(200, 0, brightness=0.8), images(300, 1)
    extractor = PatchFeatures()
    with torch.no_grad():
        features = [extractor(torch.from_numpy(x)).double().numpy() for x in (samples, reference)]
    expected = metrics.frechet_distance(*features)
    assert metrics.fid(samples, reference, feature=extractor, batch_size=64) == pytest.approx(
        expected, rel=1e-4
    )
    assert expected > 0.01


def test_data_range_and_grey_images_are_mapped_to_three_channel_levels() -> None:
    grey = images(100, 2)[:, 0] / 255.0  # (n, h, w) in [0, 1]
    as_levels = np.repeat((grey * 255.0).round().astype(np.uint8)[:, None], 3, axis=1)
    reference = images(100, 3)
    extractor = PatchFeatures()
    in_unit_range = metrics.fid(grey, reference / 255.0, data_range=(0.0, 1.0), feature=extractor)
    assert in_unit_range == pytest.approx(metrics.fid(as_levels, reference, feature=extractor))


@pytest.mark.parametrize("shape", [(10, 2, 8, 8), (1, 3, 8, 8), (10, 64)])
def test_bad_image_shapes_are_named(shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match=r"FID takes at least 2 images shaped \(n, c, h, w\)"):
        metrics.fid(np.zeros(shape), images(4, 0), feature=PatchFeatures())


def test_without_torchmetrics_the_error_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "torchmetrics.image.fid", None)
    with pytest.raises(ImportError, match=r"pip install 'coopkit\[fid\]'"):
        metrics.fid(images(4, 0), images(4, 1), feature=PatchFeatures())


def test_without_a_network_the_error_says_how_to_provide_the_weights(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import torchmetrics.image.fid

    def unreachable(*args: object, **kwargs: object) -> None:
        raise URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(torchmetrics.image.fid, "FrechetInceptionDistance", unreachable)
    with pytest.raises(OSError, match="weights_path=") as error:
        metrics.fid(images(4, 0), images(4, 1))
    assert "could not fetch them" in str(error.value)
    assert "name resolution" in str(error.value)
