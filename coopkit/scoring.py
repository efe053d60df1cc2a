"""The fitted model's densities: the flow's exact ``log q(x)``, the energy model's
``-E(x) - log Z`` on its box, and both in bits per dimension for images.

:class:`DensityScoresMixin` gives these methods to :class:`~coopkit.CoopFlow`, and
its ``log Z``: estimated by :func:`estimate_log_partition` when first needed (a score,
or reading ``log_partition_``, ``log_partition_se_`` or ``log_partition_info_``), then
kept until the next ``fit``, so that a fit pays for no estimate nobody asked for;
``docs/guide/likelihood.md`` says what it costs and when to trust it.

References:
    Xie et al., "A Tale of Two Flows: Cooperative Learning of Langevin Flow and
    Normalizing Flow Toward Energy-Based Model", ICLR 2022. https://arxiv.org/abs/2205.06924
"""

from __future__ import annotations

import dataclasses
import math
import time
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from sklearn.utils.validation import check_is_fitted
from torch import nn

from coopkit.assembly import Settings, build_part
from coopkit.batch_invariance import float64_copy
from coopkit.flows.base import Flow
from coopkit.inference import ais_log_partition, chunked, in_box, log_partition, trusted
from coopkit.threads import uses_threads
from coopkit.training.energy import score_energy, tilted


def report(line: str) -> None:
    """Print one ``verbose >= 2`` line to standard output, above a progress bar if one is
    showing (as scikit-learn's estimators print theirs)."""
    from tqdm.auto import tqdm

    tqdm.write(f"CoopFlow: {line}")


def estimate_log_partition(
    settings: Settings,
    energy: nn.Module,
    flow: Flow,
    bounds: tuple[float, float],
    *,
    chunk: int,
    generator: torch.Generator,
    level: int = 0,
) -> dict[str, Any]:
    """The energy model's ``log Z`` (``energy`` in data space, chains in the box
    ``bounds``) by ``settings.log_partition``: ``log_partition_info_``, which holds the
    estimate (``log_z``), its ``standard_error`` and whether it is ``reliable``
    (:func:`coopkit.inference.trusted`); with ``level >= 2``, a line saying it."""
    n_samples = settings.n_partition_samples
    if n_samples == "auto":
        n_samples = 256 if settings.log_partition == "ais" else 4096
    start = time.perf_counter()
    if settings.log_partition == "ais":
        n_temperatures = int(settings.partition_temperatures)
        sampler = build_part("sampler", settings.partition_sampler, None, defaults={"n_steps": 1})
        betas = torch.linspace(0.0, 1.0, n_temperatures + 1, dtype=torch.float64)
        estimate = ais_log_partition(
            energy,
            flow,
            sampler,
            n_samples,
            betas,
            generator,
            bounds,
            target_accept=getattr(sampler, "target_accept", None),
        )
    else:
        n_temperatures = 0
        estimate = log_partition(energy, flow, n_samples, generator, bounds, chunk=chunk)
    info = {
        **dataclasses.asdict(estimate),
        "n_samples": int(n_samples),
        "n_temperatures": n_temperatures,
        "seconds": time.perf_counter() - start,
        "reliable": trusted(estimate.ess, n_samples),
    }
    if level >= 2:
        report(
            f"log Z = {estimate.log_z:.6g} ± {estimate.standard_error:.2g} "
            f"({info['method']}, {info['n_samples']} samples, {info['seconds']:.2f} s)"
        )
    return info


class UnreliableLogPartitionWarning(UserWarning):
    """``log Z`` rests on too few of its draws or chains to be trusted."""


def warn_if_unreliable(info: Mapping[str, Any]) -> None:
    """Warn (:class:`UnreliableLogPartitionWarning`, once per place it is called from,
    by Python's default filter) when the ``log Z`` estimate ``info``
    (``log_partition_info_``) is not ``reliable``. Models saved before the flag
    existed are not checked."""
    if info.get("reliable", True):
        return
    warnings.warn(
        f"log Z = {info['log_z']:.6g} rests on an effective sample size of "
        f"{info['ess']:.3g} of its {info['n_samples']} {info['method']} draws (under 5% "
        "or under 30), so it, its standard error and every score computed from it are "
        "unreliable: log Z is likely too low and log-densities too high. Use "
        "log_partition='ais' with more partition_temperatures or n_partition_samples, "
        "train the flow longer, or let the fit choose a weaker tilt (tilt='auto'); "
        "docs/guide/likelihood.md explains.",
        UnreliableLogPartitionWarning,
        stacklevel=3,
    )


class DensityScoresMixin:
    """:meth:`flow_score_samples`, :meth:`score_samples`, :meth:`score` and
    :meth:`bits_per_dim` for a fitted CoopFlow, and its ``log Z`` (estimated once, when
    first needed)."""

    _log_partition_info: dict[str, Any] | None = None

    @property
    def log_partition_info_(self) -> dict[str, Any]:
        """How ``log Z`` was estimated (see the estimator's attributes), estimating it by
        the estimator's current ``log_partition`` settings the first time it is needed
        after ``fit``; an :class:`UnreliableLogPartitionWarning` when it is not
        ``reliable`` (shown once by Python's default filter).

        Raises:
            ValueError: ``log_partition=None`` (no estimate wanted).
        """
        check_is_fitted(self)
        if self._log_partition_info is None:
            settings = Settings.resolve(self.get_params(deep=False), self.scaler_.kind)
            if settings.log_partition is None:
                raise ValueError(
                    "This model was fitted with log_partition=None, so it has no log Z and "
                    "no normalised log-density; set log_partition='importance' or 'ais' "
                    "(model.set_params(log_partition='importance')) to estimate it when "
                    "next needed. flow_score_samples needs none."
                )
            self._log_partition_info = estimate_log_partition(
                settings,
                self._model_energy(),
                self.flow_,
                self.scaler_.model_bounds,
                chunk=self._chunk,
                generator=self._generator(0),
                level=int(settings.verbose),
            )
        warn_if_unreliable(self._log_partition_info)
        return self._log_partition_info

    @property
    def log_partition_(self) -> float:
        """The energy model's ``log Z`` in model units (:attr:`log_partition_info_`)."""
        return self.log_partition_info_["log_z"]

    @property
    def log_partition_se_(self) -> float:
        """The standard error of :attr:`log_partition_`."""
        return self.log_partition_info_["standard_error"]

    def _exact_flow(self) -> Flow:
        """A float64 copy (:mod:`coopkit.batch_invariance`) of the fitted flow, for
        per-row outputs that do not depend on the batch."""
        return float64_copy(self.flow_, self.device_)

    def _exact_energy(self) -> nn.Module:
        """The model's data-space energy (tilt and base included) on float64 copies of
        the fitted parts, like :meth:`_exact_flow`."""
        flow = self._exact_flow()
        energy = tilted(float64_copy(self.energy_, self.device_), self.tilt_)
        return score_energy(energy, flow, self.settings_["energy_base"])

    @uses_threads
    def flow_score_samples(self, X: Any) -> np.ndarray:
        """The flow's exact log-density ``log q_α(x)`` of each sample, in data units, ``(n,)``.

        Integer-valued images are scored at the centre of each level's dequantisation
        interval (width 1 in data units, so this approximates the level's log-probability).
        Computed in float64, so a row's score does not depend on the rows scored with it
        (:mod:`coopkit.batch_invariance`).
        """
        V = self._to_model(X, exact=True)
        flow = self._exact_flow()
        with torch.no_grad():
            log_q = chunked(flow.log_prob, V, self._chunk)
        return log_q.cpu().numpy() + self.scaler_.log_abs_det()

    @uses_threads
    def score_samples(self, X: Any) -> np.ndarray:
        """The energy model's log-density ``-E_θ(x) - log Z`` of each sample, in data units.

        The energy model's support is the box its chains are kept in (``[-1, 1]`` for
        images in model units; the training data's range plus one standard deviation
        for tables): samples outside it score ``-inf``. ``log Z`` is
        :attr:`log_partition_`, estimated after ``fit`` by importance sampling from the
        flow (standard error :attr:`log_partition_se_`); when too few draws carry it,
        an :class:`UnreliableLogPartitionWarning` says so. The flow's own exact
        log-density is :meth:`flow_score_samples`. Energies are computed in float64, so
        a row's score does not depend on the rows scored with it. Returns ``(n,)``.
        """
        V = self._to_model(X, exact=True)
        energy = self._exact_energy()
        with torch.no_grad():
            energies = chunked(energy, V, self._chunk)
        energies = energies.masked_fill(~in_box(V, self.scaler_.model_bounds), math.inf)
        log_p = -energies.cpu().numpy() - self.log_partition_
        return log_p + self.scaler_.log_abs_det()

    def score(self, X: Any, y: None = None) -> float:
        """Mean log-density of ``X`` under the energy model (see :meth:`score_samples`)."""
        return float(np.mean(self.score_samples(X)))

    def bits_per_dim(self, X: Any) -> dict[str, float]:
        """Negative log-likelihood of integer-valued images ``X`` in bits per dimension
        under the flow and under the energy model: ``-mean log p(x) / (D log 2)`` over
        ``D`` pixel values, with densities of the dequantised data (each level an interval
        of width 1) at the levels' centres. ``"energy_se"`` is :attr:`log_partition_se_`
        in bits per dimension. (:meth:`score` stays one float for model selection.)

        Returns:
            ``{"flow": ..., "energy": ..., "energy_se": ...}``.

        Raises:
            ValueError: for tables or continuous-valued images, whose levels are unknown.
        """
        check_is_fitted(self)
        if self.scaler_.kind != "image" or not self.scaler_.integer:
            raise ValueError(
                "bits_per_dim needs integer-valued images (levels such as 0..255), whose "
                "dequantised density has a unit; this model was fitted on "
                f"{'a table' if self.scaler_.kind == 'table' else 'continuous images'}. "
                "Use score_samples for a log-density in data units."
            )
        scale = -1.0 / (math.prod(self.scaler_.input_shape) * math.log(2.0))
        return {
            "flow": float(np.mean(self.flow_score_samples(X))) * scale,
            "energy": float(np.mean(self.score_samples(X))) * scale,
            "energy_se": self.log_partition_se_ * -scale,
        }
