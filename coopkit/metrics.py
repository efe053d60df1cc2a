r"""Sample-quality metrics: classifier two-sample test, sliced Wasserstein, MMD, Fréchet.

For tables, :func:`c2st`, :func:`sliced_wasserstein` and :func:`mmd` compare two samples
``(n, d)`` and ``(m, d)`` directly; :func:`frechet_distance` compares Gaussians fitted
to them. For scikit-learn's 8x8 digits, :func:`digits_frechet_distance` is the
Fréchet distance in the 64 penultimate features of a small CNN that coopkit trains
deterministically on the training split of :func:`digits_split` (an FID for digits);
the classifier is cached in memory and on disk, in ``$COOPKIT_CACHE_DIR`` or
``~/.cache/coopkit``. For natural images, :func:`fid` is the Fréchet Inception Distance
of torchmetrics (:mod:`coopkit.fid`, the optional extra ``coopkit[fid]``).
"""

from __future__ import annotations

import os
import pickle
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.spatial.distance import cdist, pdist
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from torch import Tensor, nn

from coopkit.fid import fid as fid

DIGITS_TEST_SIZE = 0.3
DIGITS_SPLIT_SEED = 0
DIGITS_MAX = 16.0
CLASSIFIER_SEED = 0
CLASSIFIER_EPOCHS = 30
CLASSIFIER_BATCH_SIZE = 64
CLASSIFIER_FILE = "digits_classifier_v1.pt"

_classifiers: dict[Path, DigitsClassifier] = {}


def _as_array(x: Any, name: str) -> np.ndarray:
    if isinstance(x, Tensor):
        x = x.detach().cpu().numpy()
    try:
        array = np.ascontiguousarray(x, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise TypeError(f"{name} must be a numeric array; got {type(x).__name__}.") from error
    if array.ndim == 0 or len(array) < 2:
        raise ValueError(f"{name} needs at least 2 samples; got shape {array.shape}.")
    if not np.isfinite(array).all():
        raise ValueError(f"{name} contains NaN or infinite values; remove or replace them.")
    return array


def _as_tables(x: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
    x, y = _as_array(x, "x"), _as_array(y, "y")
    for name, array in (("x", x), ("y", y)):
        if array.ndim != 2:
            raise ValueError(
                f"{name} must be a table of shape (n_samples, n_features); got shape "
                f"{array.shape}. Flatten images with .reshape(len({name}), -1)."
            )
    if x.shape[1] != y.shape[1]:
        raise ValueError(
            f"x and y must have the same number of features; got {x.shape[1]} and {y.shape[1]}."
        )
    return x, y


def _wasserstein_1d(x_sorted: np.ndarray, y_sorted: np.ndarray) -> np.ndarray:
    r"""Exact :math:`W_1` between empirical distributions, column by column.

    :math:`W_1 = \int_0^1 |F^{-1}(t) - G^{-1}(t)|\,dt`, with both quantile functions
    constant between the merged breakpoints :math:`i/n` and :math:`j/m`.
    """
    n, m = len(x_sorted), len(y_sorted)
    edges = np.union1d(np.arange(n + 1) / n, np.arange(m + 1) / m)
    middle = (edges[:-1] + edges[1:]) / 2
    i = np.minimum((middle * n).astype(int), n - 1)
    j = np.minimum((middle * m).astype(int), m - 1)
    return np.diff(edges) @ np.abs(x_sorted[i] - y_sorted[j])


def sliced_wasserstein(x: Any, y: Any, n_projections: int = 256, random_state: Any = None) -> float:
    r"""Sliced Wasserstein-1 distance between samples ``(n, d)`` and ``(m, d)``.

    .. math:: \mathrm{SW}_1(x, y) = \frac{1}{L} \sum_{l=1}^{L}
              W_1\big(\theta_l^\top x,\ \theta_l^\top y\big),

    over :math:`L` = ``n_projections`` directions :math:`\theta_l` drawn uniformly on the
    unit sphere. Each 1-D :math:`W_1` is exact for the two empirical distributions, also
    when ``n != m`` (the quantile functions are compared on their merged breakpoints).
    Same units as the data; 0 for identical samples.

    Args:
        x: first sample, ``(n, d)``.
        y: second sample, ``(m, d)``.
        n_projections: number of random directions.
        random_state: seed, ``numpy.random.RandomState`` or ``None``, for the directions.

    Examples:
        In one dimension every direction is :math:`\pm 1`, so this is :math:`W_1`:

        >>> sliced_wasserstein([[0.0], [1.0], [2.0], [3.0]], [[0.0], [2.0]], random_state=0)
        0.5
    """
    x, y = _as_tables(x, y)
    if int(n_projections) != n_projections or n_projections < 1:
        raise ValueError(f"n_projections must be a positive integer; got {n_projections!r}.")
    directions = check_random_state(random_state).standard_normal((x.shape[1], n_projections))
    directions /= np.linalg.norm(directions, axis=0)
    x_sorted = np.sort(x @ directions, axis=0)
    y_sorted = np.sort(y @ directions, axis=0)
    return float(_wasserstein_1d(x_sorted, y_sorted).mean())


def mmd(x: Any, y: Any, bandwidth: float | None = None) -> float:
    r"""Unbiased squared maximum mean discrepancy with a Gaussian kernel.

    .. math:: \widehat{\mathrm{MMD}}^2 = \frac{\sum_{i \ne i'} k(x_i, x_{i'})}{n(n-1)}
              + \frac{\sum_{j \ne j'} k(y_j, y_{j'})}{m(m-1)}
              - \frac{2}{nm} \sum_{i, j} k(x_i, y_j),
              \qquad k(a, b) = e^{-\|a - b\|^2 / (2 \sigma^2)}.

    Unbiased, so it can be slightly negative when the two distributions agree.
    Memory is :math:`O((n + m)^2)`.

    Args:
        x: first sample, ``(n, d)``, ``n >= 2``.
        y: second sample, ``(m, d)``, ``m >= 2``.
        bandwidth: :math:`\sigma`; by default the median heuristic, the median distance
            over all pairs of points of the pooled sample. Deterministic: no randomness.

    Examples:
        >>> x = np.array([[0.0], [1.0], [2.0]])
        >>> round(mmd(x, x + 10.0, bandwidth=1.0), 3)
        0.899
    """
    x, y = _as_tables(x, y)
    if bandwidth is None:
        bandwidth = float(np.median(pdist(np.concatenate([x, y]))))
        if bandwidth == 0:
            raise ValueError(
                "The median-heuristic bandwidth is 0 (most points coincide); pass bandwidth=."
            )
    elif not bandwidth > 0:
        raise ValueError(f"bandwidth must be positive; got {bandwidth!r}.")
    scale = -0.5 / bandwidth**2
    n, m = len(x), len(y)
    k_xx = np.exp(scale * cdist(x, x, "sqeuclidean")).sum() - n
    k_yy = np.exp(scale * cdist(y, y, "sqeuclidean")).sum() - m
    k_xy = np.exp(scale * cdist(x, y, "sqeuclidean")).mean()
    return float(k_xx / (n * (n - 1)) + k_yy / (m * (m - 1)) - 2 * k_xy)


def c2st(samples: Any, reference: Any, n_folds: int = 5, random_state: Any = 0) -> float:
    r"""Classifier two-sample test: how well a classifier tells ``samples`` from ``reference``.

    The mean ``n_folds``-fold cross-validated accuracy of scikit-learn's
    :class:`~sklearn.ensemble.HistGradientBoostingClassifier` trained to label rows of
    ``samples`` ``(n, d)`` against rows of ``reference`` ``(m, d)``. Both are cut to
    :math:`\min(n, m)` rows so that chance is exactly 0.5: 0.5 means the classifier
    cannot tell them apart, 1 that it always can (Lopez-Paz & Oquab, 2017). Unlike a
    distance it has one scale for every data set, and it sees sharp details (a bridge
    between modes, collapsed modes) that moment-based distances average away.

    Args:
        samples: the model's samples, ``(n, d)``.
        reference: held-out data, ``(m, d)``.
        n_folds: cross-validation folds (at least 2).
        random_state: seed of the folds' shuffling and of the classifier.

    Examples:
        >>> rng = np.random.default_rng(0)
        >>> same = c2st(rng.normal(size=(400, 2)), rng.normal(size=(400, 2)))
        >>> apart = c2st(rng.normal(size=(400, 2)), rng.normal(3.0, size=(400, 2)))
        >>> bool(abs(same - 0.5) < 0.08), bool(apart > 0.95)
        (True, True)

    References:
        Lopez-Paz & Oquab, "Revisiting Classifier Two-Sample Tests", ICLR 2017.
        https://arxiv.org/abs/1610.06545
    """
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.model_selection import StratifiedKFold, cross_val_score

    x, y = _as_tables(samples, reference)
    if int(n_folds) != n_folds or n_folds < 2:
        raise ValueError(f"n_folds must be an integer >= 2; got {n_folds!r}.")
    n = min(len(x), len(y))
    if n < n_folds:
        raise ValueError(f"c2st needs at least n_folds={n_folds} rows in each sample; got {n}.")
    features = np.concatenate([x[:n], y[:n]])
    labels = np.repeat([0, 1], n)
    seed = int(check_random_state(random_state).randint(np.iinfo(np.int32).max))
    folds = StratifiedKFold(int(n_folds), shuffle=True, random_state=seed)
    classifier = HistGradientBoostingClassifier(random_state=seed)
    return float(cross_val_score(classifier, features, labels, cv=folds).mean())


def frechet_distance(x: Any, y: Any) -> float:
    r"""Fréchet distance between Gaussians fitted to samples ``(n, d)`` and ``(m, d)``.

    .. math:: d^2 = \|\mu_x - \mu_y\|^2
              + \operatorname{Tr}\big(\Sigma_x + \Sigma_y - 2 (\Sigma_x \Sigma_y)^{1/2}\big),

    with unbiased covariances; squared, as in FID. The trace of the matrix square root
    is computed as :math:`\sum_i \sqrt{\lambda_i}` over the eigenvalues of the
    symmetric :math:`\Sigma_x^{1/2} \Sigma_y \Sigma_x^{1/2}` (same spectrum as
    :math:`\Sigma_x \Sigma_y`), which stays real and stable for singular covariances.

    Examples:
        >>> x = np.array([[0.0, 0.0], [2.0, 0.0], [0.0, 2.0], [2.0, 2.0]])
        >>> round(frechet_distance(x, x + 1.0), 6)
        2.0
    """
    x, y = _as_tables(x, y)
    cov_x = np.atleast_2d(np.cov(x, rowvar=False))
    cov_y = np.atleast_2d(np.cov(y, rowvar=False))
    values, vectors = np.linalg.eigh(cov_x)
    root_x = (vectors * np.sqrt(values.clip(min=0))) @ vectors.T
    cross = np.linalg.eigvalsh(root_x @ cov_y @ root_x).clip(min=0)
    mean_term = np.sum((x.mean(axis=0) - y.mean(axis=0)) ** 2)
    distance = mean_term + np.trace(cov_x) + np.trace(cov_y) - 2 * np.sqrt(cross).sum()
    return float(max(distance, 0.0))


def digits_split() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """scikit-learn's 8x8 digits split once for all of coopkit: 70% train, 30% test,
    stratified, ``random_state=0``.

    Returns:
        ``(X_train, X_test, y_train, y_test)``; images ``(n, 8, 8)`` float64 in the
        dataset's units [0, 16], labels ``(n,)``.

    Examples:
        >>> X_train, X_test, y_train, y_test = digits_split()
        >>> X_train.shape, X_test.shape
        ((1257, 8, 8), (540, 8, 8))
    """
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X.reshape(-1, 8, 8),
        y,
        test_size=DIGITS_TEST_SIZE,
        random_state=DIGITS_SPLIT_SEED,
        stratify=y,
    )
    return X_train, X_test, y_train, y_test


class DigitsClassifier(nn.Module):
    """Small CNN on ``(n, 1, 8, 8)`` digits in [0, 16]: two 3x3 convolutions (the second
    strided), a 64-unit swish feature layer, then 10 logits.

    Examples:
        >>> net = DigitsClassifier()
        >>> images = torch.zeros(2, 1, 8, 8)
        >>> net(images).shape, net.embed(images).shape
        (torch.Size([2, 10]), torch.Size([2, 64]))
    """

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1),
            nn.SiLU(),
            nn.Conv2d(16, 32, 3, stride=2, padding=1),
            nn.SiLU(),
            nn.Flatten(),
            nn.Linear(32 * 4 * 4, 64),
            nn.SiLU(),
        )
        self.head = nn.Linear(64, 10)

    def embed(self, x: Tensor) -> Tensor:
        """Penultimate features ``(n, 64)``."""
        return self.features(x / DIGITS_MAX)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.embed(x))


def _digit_images(images: Any, name: str) -> Tensor:
    array = _as_array(images, name)
    if array.shape[1:] not in ((8, 8), (1, 8, 8), (64,)):
        raise ValueError(
            f"{name} must be 8x8 digits shaped (n, 8, 8), (n, 1, 8, 8) or (n, 64); "
            f"got shape {array.shape}."
        )
    if array.max() <= 1.0:
        warnings.warn(
            f"{name} has no value above 1, but digits are measured in scikit-learn's units "
            "[0, 16]; rescale (e.g. (x + 1) * 8 for [-1, 1] data) if this is not intended.",
            UserWarning,
            stacklevel=4,
        )
    return torch.as_tensor(array, dtype=torch.float32).reshape(-1, 1, 8, 8)


def _train_classifier() -> DigitsClassifier:
    """Adam on the training split; deterministic, and torch's global RNG is left as is."""
    X_train, _, y_train, _ = digits_split()
    x = torch.as_tensor(X_train, dtype=torch.float32).unsqueeze(1)
    labels = torch.as_tensor(y_train)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(CLASSIFIER_SEED)
        model = DigitsClassifier()
    generator = torch.Generator().manual_seed(CLASSIFIER_SEED)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3, weight_decay=1e-4)
    with torch.enable_grad():
        for _ in range(CLASSIFIER_EPOCHS):
            for batch in torch.randperm(len(x), generator=generator).split(CLASSIFIER_BATCH_SIZE):
                loss = nn.functional.cross_entropy(model(x[batch]), labels[batch])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
    return model


def _cache_path() -> Path:
    root = os.environ.get("COOPKIT_CACHE_DIR") or Path.home() / ".cache" / "coopkit"
    return Path(root) / CLASSIFIER_FILE


def _load(path: Path) -> DigitsClassifier | None:
    if not path.is_file():
        return None
    with torch.device("meta"):
        model = DigitsClassifier()
    try:
        model.load_state_dict(torch.load(path, weights_only=True), assign=True)
    except (OSError, RuntimeError, EOFError, TypeError, pickle.UnpicklingError):
        warnings.warn(f"Corrupt classifier cache {path}; retraining it.", UserWarning, stacklevel=3)
        return None
    return model


def _save(model: DigitsClassifier, path: Path) -> None:
    """Atomic: write a temporary file next to ``path``, then rename it over ``path``."""
    temporary: Path | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".tmp", delete=False) as file:
            temporary = Path(file.name)
            torch.save(model.state_dict(), file)
        os.replace(temporary, path)
    except (OSError, RuntimeError) as error:
        if temporary is not None:
            temporary.unlink(missing_ok=True)
        warnings.warn(
            f"Could not cache the digits classifier at {path} ({error}); set "
            "COOPKIT_CACHE_DIR to a writable folder to avoid retraining.",
            UserWarning,
            stacklevel=3,
        )


def digits_classifier() -> DigitsClassifier:
    """The trained digits classifier (frozen, eval mode): from the in-process cache, else
    the disk cache, else trained (a few seconds on a CPU) and written to disk."""
    path = _cache_path()
    if path not in _classifiers:
        model = _load(path)
        if model is None:
            model = _train_classifier()
            _save(model, path)
        _classifiers[path] = model.eval().requires_grad_(False)
    return _classifiers[path]


def _digits_features(images: Any, name: str) -> np.ndarray:
    model = digits_classifier()
    with torch.no_grad():
        return model.embed(_digit_images(images, name)).double().numpy()


def digits_classifier_accuracy() -> float:
    """Accuracy of :func:`digits_classifier` on the held-out split of :func:`digits_split`."""
    _, X_test, _, y_test = digits_split()
    model = digits_classifier()
    with torch.no_grad():
        logits = model(_digit_images(X_test, "X_test"))
    return float((logits.argmax(dim=1).numpy() == y_test).mean())


def digits_frechet_distance(images: Any, reference: Any = None) -> float:
    """Fréchet distance between digits in the 64 features of :func:`digits_classifier`.

    Args:
        images: ``(n, 8, 8)``, ``(n, 1, 8, 8)`` or ``(n, 64)`` in scikit-learn's digits
            units [0, 16] (e.g. samples of a model fitted on the digits).
        reference: digits in the same form; by default the held-out split of
            :func:`digits_split`.

    Examples:
        >>> X_train, X_test, _, _ = digits_split()
        >>> digits_frechet_distance(X_train) < digits_frechet_distance(X_train[:, ::-1])
        True
    """
    if reference is None:
        reference = digits_split()[1]
    return frechet_distance(
        _digits_features(images, "images"), _digits_features(reference, "reference")
    )


def digits_c2st(images: Any, reference: Any = None, random_state: Any = 0) -> float:
    """:func:`c2st` of digits against held-out digits, on their 64 pixels rounded to the
    integer levels 0..16.

    A model fitted on the integer-valued digits is a dequantised one: its sample ``v``
    stands for the level ``round(v)`` whose interval holds it. Rounding first compares
    that level, as the data have it; unrounded, the classifier tells the samples from
    the data by their fractional parts alone. Real digits are unchanged by it.

    Args:
        images: ``(n, 8, 8)``, ``(n, 1, 8, 8)`` or ``(n, 64)`` in the units [0, 16].
        reference: digits in the same form; by default the held-out split of
            :func:`digits_split`.
        random_state: as for :func:`c2st`.

    Examples:
        >>> X_train, X_test, _, _ = digits_split()
        >>> round(digits_c2st(X_train + 0.3), 2) == round(digits_c2st(X_train), 2)
        True
        >>> bool(digits_c2st(X_train) < 0.6), bool(digits_c2st(np.clip(X_train + 3, 0, 16)) > 0.9)
        (True, True)
    """
    if reference is None:
        reference = digits_split()[1]
    pixels = [
        np.rint(_digit_images(x, name).reshape(-1, 64).double().numpy())
        for x, name in ((images, "images"), (reference, "reference"))
    ]
    return c2st(*pixels, random_state=random_state)
