r"""MCMC diagnostics over a batch of chains: effective sample size and split R-hat.

Both take draws shaped ``(n_chains, n_draws)`` and return a float, or
``(n_chains, n_draws, dim)`` and return a ``(dim,)`` array (one value per coordinate).
They are the classic, non-rank-normalised estimators (Gelman et al., *Bayesian Data
Analysis*, 3rd ed., §11.4–11.5; Geyer, 1992), as in Stan's ``ess_bulk``/``rhat`` minus
the rank transform.

With :math:`M` chains of :math:`N` draws, per-chain autocovariances
:math:`\hat\gamma_m(t)` (computed by FFT, normalised by :math:`N`), mean within-chain
variance :math:`W` and chain means :math:`\bar\theta_m`,

.. math:: \hat{V}^+ = \frac{N-1}{N} W + \operatorname{Var}_m(\bar\theta_m), \qquad
          \hat\rho_t = 1 - \frac{W - \frac{1}{M}\sum_m \hat\gamma_m(t)}{\hat{V}^+},

so the between-chain spread lowers the autocorrelations' decay (a batch of chains that
has not mixed gets a small ESS). The sum of :math:`\hat\rho_t` is truncated by Geyer's
initial positive sequence (pairs :math:`\hat\rho_{2k} + \hat\rho_{2k+1}` summed while
positive, made monotone), giving :math:`\hat\tau = -1 + 2\sum_k P_k` and

.. math:: \mathrm{ESS} = \frac{M N}{\hat\tau}.

Split R-hat cuts every chain in two halves (odd ``n_draws``: the middle draw is dropped)
and compares between- and within-half variances:
:math:`\hat{R} = \sqrt{\hat{V}^+ / W}` over the :math:`2M` halves; values above about
1.01 (strict) or 1.1 (lenient) say the chains have not mixed.

Examples:
    >>> import numpy as np
    >>> draws = np.random.default_rng(0).normal(size=(4, 1000))
    >>> bool(3600 < effective_sample_size(draws) < 4400)
    True
    >>> bool(split_rhat(draws) < 1.01)
    True
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

__all__ = ["effective_sample_size", "split_rhat"]

_MIN_DRAWS = 4


def _as_draws(chains: Any, name: str) -> tuple[np.ndarray, bool]:
    """``chains`` as a float64 array ``(n_chains, n_draws, dim)``, validated, and whether
    the input was 2-D (one scalar per draw)."""
    if isinstance(chains, torch.Tensor):
        chains = chains.detach().cpu().numpy()
    try:
        draws = np.asarray(chains, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} needs a numeric array of draws; got {type(chains)!r}.") from exc
    if draws.ndim not in (2, 3):
        raise ValueError(
            f"{name} needs draws shaped (n_chains, n_draws) or (n_chains, n_draws, dim); "
            f"got shape {draws.shape}. Stack one row of draws per chain."
        )
    if draws.shape[1] < _MIN_DRAWS:
        raise ValueError(
            f"{name} needs at least {_MIN_DRAWS} draws per chain; got {draws.shape[1]}."
        )
    if not np.isfinite(draws).all():
        raise ValueError(f"{name} got NaN or infinite draws; drop the diverged chains first.")
    return (draws, False) if draws.ndim == 3 else (draws[:, :, None], True)


def _per_dim(values: np.ndarray, scalar: bool) -> float | np.ndarray:
    return float(values[0]) if scalar else values


def _autocovariance(draws: np.ndarray) -> np.ndarray:
    """Biased autocovariance (divided by ``n``) along axis 1 of ``(m, n, d)``, by FFT."""
    n = draws.shape[1]
    centred = draws - draws.mean(axis=1, keepdims=True)
    size = 1 << (2 * n - 1).bit_length()
    spectrum = np.fft.rfft(centred, n=size, axis=1)
    return np.fft.irfft(spectrum * spectrum.conj(), n=size, axis=1)[:, :n] / n


def _variances(draws: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``W`` (mean within-chain variance) and ``V+`` per dimension of ``(m, n, d)``."""
    n = draws.shape[1]
    within = draws.var(axis=1, ddof=1).mean(axis=0)
    between = draws.mean(axis=1).var(axis=0, ddof=1) if draws.shape[0] > 1 else 0.0
    return within, (n - 1) / n * within + between


def _ess_1d(acov: np.ndarray, within: float, var_plus: float, total: int) -> float:
    """ESS of one coordinate from mean autocovariances ``acov`` ``(n,)``."""
    if not var_plus > 0:
        return float("nan")
    rho = 1.0 - (within - acov) / var_plus
    rho[0] = 1.0
    n_pairs = len(rho) // 2
    pairs = rho[: 2 * n_pairs].reshape(n_pairs, 2).sum(axis=1)
    negative = np.flatnonzero(pairs < 0)
    pairs = pairs[: negative[0]] if negative.size else pairs
    pairs = np.minimum.accumulate(pairs)
    tau = max(-1.0 + 2.0 * pairs.sum(), 1.0 / np.log10(total))
    return total / tau


def effective_sample_size(chains: Any) -> float | np.ndarray:
    """Effective sample size of draws ``(n_chains, n_draws)`` or ``(n_chains, n_draws, dim)``.

    Returns a float for 2-D input, a ``(dim,)`` array for 3-D input; ``nan`` for a
    coordinate whose draws are all equal. Accepts numpy arrays and tensors.

    Examples:
        >>> ar = np.zeros((8, 2000))
        >>> noise = np.random.default_rng(1).normal(size=ar.shape)
        >>> for t in range(1, 2000):
        ...     ar[:, t] = 0.9 * ar[:, t - 1] + noise[:, t]
        >>> expected = ar.size * (1 - 0.9) / (1 + 0.9)
        >>> bool(abs(effective_sample_size(ar) / expected - 1) < 0.2)
        True
    """
    draws, scalar = _as_draws(chains, "effective_sample_size")
    within, var_plus = _variances(draws)
    acov = _autocovariance(draws).mean(axis=0)
    total = draws.shape[0] * draws.shape[1]
    ess = np.array(
        [_ess_1d(acov[:, k], within[k], var_plus[k], total) for k in range(draws.shape[2])]
    )
    return _per_dim(ess, scalar)


def split_rhat(chains: Any) -> float | np.ndarray:
    """Split R-hat of draws ``(n_chains, n_draws)`` or ``(n_chains, n_draws, dim)``.

    Returns a float for 2-D input, a ``(dim,)`` array for 3-D input; ``nan`` for a
    coordinate whose draws are all equal. Accepts numpy arrays and tensors.

    Examples:
        >>> rng = np.random.default_rng(2)
        >>> apart = rng.normal(size=(4, 500)) + np.arange(4)[:, None]
        >>> bool(split_rhat(apart) > 1.1)
        True
    """
    draws, scalar = _as_draws(chains, "split_rhat")
    half = draws.shape[1] // 2
    halves = np.concatenate([draws[:, :half], draws[:, -half:]], axis=0)
    within, var_plus = _variances(halves)
    with np.errstate(divide="ignore", invalid="ignore"):
        rhat = np.where(within > 0, np.sqrt(var_plus / within), np.nan)
    return _per_dim(rhat, scalar)
