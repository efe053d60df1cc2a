from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import scipy.linalg
import scipy.stats
import torch
from scipy.spatial.distance import pdist

from coopkit import metrics
from coopkit.metrics import (
    c2st,
    digits_classifier,
    digits_classifier_accuracy,
    digits_frechet_distance,
    digits_split,
    frechet_distance,
    mmd,
    sliced_wasserstein,
)


@pytest.fixture
def gaussians() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.standard_normal((2000, 2)), rng.standard_normal((1500, 2))


# Sliced Wasserstein


def test_swd_near_zero_for_one_distribution_far_for_a_shift(gaussians) -> None:
    x, y = gaussians
    assert sliced_wasserstein(x, y, random_state=0) < 0.1
    assert sliced_wasserstein(x, y + 3.0, random_state=0) > 1.0


def test_swd_of_a_pure_shift_is_the_mean_projected_shift(gaussians) -> None:
    x, _ = gaussians
    shift = np.array([3.0, 4.0])
    value = sliced_wasserstein(x, x + shift, n_projections=4000, random_state=0)
    # E|θ·δ| over uniform directions in 2-D is 2|δ|/π.
    assert value == pytest.approx(2 * 5.0 / math.pi, abs=0.05)


def test_swd_in_one_dimension_is_exact_w1_for_unequal_sizes() -> None:
    rng = np.random.default_rng(1)
    x, y = rng.normal(0, 1, 37), rng.exponential(2.0, 23)
    expected = scipy.stats.wasserstein_distance(x, y)
    value = sliced_wasserstein(x[:, None], y[:, None], n_projections=3, random_state=0)
    assert value == pytest.approx(expected, rel=1e-12)


def test_swd_is_deterministic_given_a_seed_and_symmetric(gaussians) -> None:
    x, y = gaussians
    y = y * [1.0, 3.0]
    first = sliced_wasserstein(x, y, n_projections=16, random_state=3)
    assert sliced_wasserstein(x, y, n_projections=16, random_state=3) == first
    assert sliced_wasserstein(y, x, n_projections=16, random_state=3) == pytest.approx(first)
    assert sliced_wasserstein(x, y, n_projections=16, random_state=4) != first


# MMD


def test_mmd_near_zero_for_one_distribution_far_for_a_shift(gaussians) -> None:
    x, y = gaussians
    assert abs(mmd(x, y)) < 0.01
    assert mmd(x, y + 3.0) > 0.5


def test_mmd_matches_the_unbiased_estimator_by_loops() -> None:
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(5, 3)), rng.normal(1.0, 1.0, size=(4, 3))

    def k(a: np.ndarray, b: np.ndarray) -> float:
        return math.exp(-np.sum((a - b) ** 2) / (2 * 1.5**2))

    xx = sum(k(a, b) for i, a in enumerate(x) for j, b in enumerate(x) if i != j) / 20
    yy = sum(k(a, b) for i, a in enumerate(y) for j, b in enumerate(y) if i != j) / 12
    xy = sum(k(a, b) for a in x for b in y) / 20
    assert mmd(x, y, bandwidth=1.5) == pytest.approx(xx + yy - 2 * xy, rel=1e-12)


def test_mmd_median_heuristic_bandwidth_and_scale_invariance(gaussians) -> None:
    x, y = gaussians[0][:200], gaussians[1][:150] + 1.0
    median = float(np.median(pdist(np.concatenate([x, y]))))
    assert mmd(x, y) == pytest.approx(mmd(x, y, bandwidth=median), rel=1e-12)
    assert mmd(10 * x, 10 * y) == pytest.approx(mmd(x, y), rel=1e-9)
    assert mmd(x, y) == mmd(x, y)


def test_mmd_bad_bandwidth_raises() -> None:
    x = np.zeros((4, 2))
    with pytest.raises(ValueError, match="bandwidth must be positive"):
        mmd(x, x + 1, bandwidth=0.0)
    with pytest.raises(ValueError, match="pass bandwidth="):
        mmd(x, x)


# Classifier two-sample test


def test_c2st_of_real_against_real_is_chance(gaussians) -> None:
    x, y = gaussians
    assert abs(c2st(x, y, random_state=0) - 0.5) < 0.04


def test_c2st_of_shifted_data_is_near_one(gaussians) -> None:
    x, y = gaussians
    assert c2st(x, y + 3.0, random_state=0) > 0.97


def test_c2st_sees_a_missing_mode_that_moments_hide() -> None:
    """Two modes against one wide Gaussian of the same mean and variance."""
    rng = np.random.default_rng(1)
    modes = rng.choice([-1.0, 1.0], size=(1000, 1)) + 0.1 * rng.standard_normal((1000, 1))
    wide = rng.standard_normal((1000, 1)) * float(modes.std())
    assert c2st(modes, wide, random_state=0) > 0.8


def test_c2st_uses_as_many_rows_of_each_and_is_seeded(gaussians) -> None:
    x, y = gaussians
    first = c2st(x, y[:300], random_state=3)
    assert first == c2st(x[:300], y[:300], random_state=3)
    assert c2st(x, y[:300], random_state=4) != first


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"n_folds": 1}, "n_folds must be an integer >= 2"), ({"n_folds": 200}, "at least n_folds")],
)
def test_c2st_bad_arguments_are_named(gaussians, kwargs: dict, message: str) -> None:
    x, y = gaussians
    with pytest.raises(ValueError, match=message):
        c2st(x[:100], y[:100], **kwargs)


# Fréchet distance


def test_frechet_distance_matches_scipy_sqrtm() -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(50, 5)) @ rng.normal(size=(5, 5))
    y = rng.normal(size=(40, 5)) @ rng.normal(size=(5, 5)) + 1.0
    cov_x, cov_y = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    root = scipy.linalg.sqrtm(cov_x @ cov_y).real
    expected = np.sum((x.mean(0) - y.mean(0)) ** 2) + np.trace(cov_x + cov_y - 2 * root)
    assert frechet_distance(x, y) == pytest.approx(expected, rel=1e-8)


def test_frechet_distance_near_zero_for_one_distribution_far_for_a_shift(gaussians) -> None:
    x, y = gaussians
    assert frechet_distance(x, y) < 0.05
    assert frechet_distance(x, y + 3.0) == pytest.approx(18.0, rel=0.05)
    assert frechet_distance(x[:, :1], x[:, :1] + 2.0) == pytest.approx(4.0)


# Table validation


@pytest.mark.parametrize("metric", [sliced_wasserstein, mmd, frechet_distance])
@pytest.mark.parametrize(
    ("x", "y", "error", "match"),
    [
        (np.zeros(5), np.zeros((5, 1)), ValueError, r"x must be a table of shape"),
        (np.zeros((5, 2)), np.zeros((5, 2, 2)), ValueError, r"y must be a table of shape"),
        (np.zeros((5, 2)), np.zeros((5, 3)), ValueError, "same number of features; got 2 and 3"),
        (np.zeros((1, 2)), np.zeros((5, 2)), ValueError, "at least 2 samples"),
        (np.full((5, 2), np.nan), np.zeros((5, 2)), ValueError, "NaN or infinite"),
        ([["a", "b"], ["c", "d"]], np.zeros((5, 2)), TypeError, "numeric array"),
    ],
)
def test_bad_tables_raise(metric, x, y, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        metric(x, y)


def test_swd_bad_n_projections_raises(gaussians) -> None:
    with pytest.raises(ValueError, match="n_projections must be a positive integer"):
        sliced_wasserstein(*gaussians, n_projections=0)


def test_metrics_accept_torch_tensors(gaussians) -> None:
    x, y = gaussians[0][:100], gaussians[1][:80]
    tx = torch.tensor(x, requires_grad=True)
    assert mmd(tx, torch.tensor(y)) == mmd(x, y)
    assert sliced_wasserstein(tx, y, random_state=0) == sliced_wasserstein(x, y, random_state=0)


# Digits


@pytest.fixture(scope="module")
def digits_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A trained classifier in a private cache dir, shared by this module's tests."""
    folder = tmp_path_factory.mktemp("coopkit-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("COOPKIT_CACHE_DIR", str(folder))
        patch.setattr(metrics, "_classifiers", {})
        digits_classifier()
        yield folder


@pytest.fixture
def empty_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """An empty cache dir and a fast stand-in trainer that counts its calls."""
    monkeypatch.setenv("COOPKIT_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(metrics, "_classifiers", {})
    calls: list[int] = []

    def train() -> metrics.DigitsClassifier:
        calls.append(1)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(len(calls))
            return metrics.DigitsClassifier()

    monkeypatch.setattr(metrics, "_train_classifier", train)
    return calls


def test_digits_split_is_fixed_stratified_and_in_digits_units() -> None:
    X_train, X_test, y_train, y_test = digits_split()
    assert X_train.shape == (1257, 8, 8)
    assert X_test.shape == (540, 8, 8)
    assert X_train.min() == 0
    assert X_train.max() == 16
    np.testing.assert_allclose(np.bincount(y_test) / 540, np.bincount(y_train) / 1257, atol=0.01)
    np.testing.assert_array_equal(digits_split()[1], X_test)


def test_classifier_accuracy_on_held_out_digits(digits_cache: Path) -> None:
    assert digits_classifier_accuracy() > 0.95


def test_digits_fd_near_zero_for_held_out_digits_far_for_noise(digits_cache: Path) -> None:
    X_train, X_test, _, _ = digits_split()
    held_out = digits_frechet_distance(X_train)
    noise = digits_frechet_distance(np.random.default_rng(0).uniform(0, 16, (500, 8, 8)))
    assert held_out < 10.0
    assert noise > 20 * held_out
    assert digits_frechet_distance(X_test, X_test) == pytest.approx(0.0, abs=1e-6)


def test_digits_fd_accepts_every_layout(digits_cache: Path) -> None:
    X_train, X_test, _, _ = digits_split()
    images = X_train[:300]
    expected = digits_frechet_distance(images)
    assert digits_frechet_distance(images) == expected
    for layout in (images.reshape(300, 64), images[:, None], torch.tensor(images)):
        assert digits_frechet_distance(layout) == pytest.approx(expected, rel=1e-9)
    assert digits_frechet_distance(images, X_test.reshape(-1, 64)) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("images", "match"),
    [
        (np.zeros((10, 7, 7)), r"shaped \(n, 8, 8\), \(n, 1, 8, 8\) or \(n, 64\)"),
        (np.zeros((10, 2, 8, 8)), r"got shape \(10, 2, 8, 8\)"),
        (np.zeros((1, 8, 8)), "at least 2 samples"),
        (np.full((10, 8, 8), np.inf), "NaN or infinite"),
    ],
)
def test_digits_fd_bad_images_raise(digits_cache: Path, images: np.ndarray, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        digits_frechet_distance(images)


def test_digits_fd_warns_about_rescaled_images(digits_cache: Path) -> None:
    X_train = digits_split()[0]
    with pytest.warns(UserWarning, match=r"units \[0, 16\]"):
        digits_frechet_distance(X_train / 16)


def test_training_is_deterministic_and_leaves_global_rng(digits_cache: Path) -> None:
    state = torch.get_rng_state()
    model = metrics._train_classifier()
    assert torch.equal(torch.get_rng_state(), state)
    cached = digits_classifier().state_dict()
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, cached[name]), name


def test_cache_is_written_atomically_and_reused(empty_cache: list[int], tmp_path: Path) -> None:
    first = digits_classifier()
    assert empty_cache == [1]
    assert (tmp_path / metrics.CLASSIFIER_FILE).is_file()
    assert list(tmp_path.glob("*.tmp")) == []
    assert digits_classifier() is first
    metrics._classifiers.clear()
    state = torch.get_rng_state()
    loaded = digits_classifier()
    assert torch.equal(torch.get_rng_state(), state)
    assert empty_cache == [1]
    assert loaded is not first
    for name, tensor in first.state_dict().items():
        assert torch.equal(tensor, loaded.state_dict()[name]), name


@pytest.mark.parametrize("content", [b"", b"not a torch file", b"PK\x03\x04truncated zip"])
def test_corrupt_cache_is_retrained_over(
    empty_cache: list[int], tmp_path: Path, content: bytes
) -> None:
    path = tmp_path / metrics.CLASSIFIER_FILE
    path.write_bytes(content)
    with pytest.warns(UserWarning, match="Corrupt classifier cache"):
        model = digits_classifier()
    assert empty_cache == [1]
    saved = torch.load(path, weights_only=True)
    assert all(torch.equal(tensor, saved[name]) for name, tensor in model.state_dict().items())


def test_unwritable_cache_warns_and_still_works(
    empty_cache: list[int], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "a-file").write_text("")
    monkeypatch.setenv("COOPKIT_CACHE_DIR", str(tmp_path / "a-file" / "cache"))
    with pytest.warns(UserWarning, match="Could not cache the digits classifier"):
        model = digits_classifier()
    assert isinstance(model, metrics.DigitsClassifier)
    assert empty_cache == [1]


def test_default_cache_dir_is_under_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COOPKIT_CACHE_DIR", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    expected = tmp_path / ".cache" / "coopkit" / metrics.CLASSIFIER_FILE
    assert metrics._cache_path() == expected
