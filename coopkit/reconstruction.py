"""Reconstruction, inpainting and interpolation with the fitted generator.

The generator is "flow, then Langevin flow": a sample is ``L(g_α(z))``. These methods
optimise the Langevin flow's input ``x0`` so that its output matches observed values,
back-propagating through every Langevin step (:func:`coopkit.inference.reconstruct`).
:class:`ReconstructionMixin` gives them to :class:`~coopkit.CoopFlow`; see
``docs/guide/reconstruction.md``.

References:
    Xie et al., "A Tale of Two Flows: Cooperative Learning of Langevin Flow and
    Normalizing Flow Toward Energy-Based Model", ICLR 2022. https://arxiv.org/abs/2205.06924
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from coopkit import defaults
from coopkit.inference import Reconstruction, reconstruct
from coopkit.samplers.base import Sampler
from coopkit.samplers.langevin import LangevinSampler
from coopkit.threads import uses_threads
from coopkit.training.energy import propose
from coopkit.validation import BOOLEAN, check_arg, integer, number, options, seed_from


def observed_mask(mask: Any, shape: tuple[int, ...]) -> np.ndarray:
    """``mask`` as a boolean array of ``shape`` (the data's), from a mask shaped like the
    data or like one sample (or any shape that broadcasts to the data's); a ValueError
    naming ``mask`` otherwise.

    Examples:
        >>> observed_mask([1, 0], (3, 2)).shape
        (3, 2)
    """
    values = np.asarray(mask)
    if values.dtype.kind not in "biuf" or not np.isfinite(values).all():
        raise ValueError(f"mask must hold 0/1 or booleans; got {values.dtype} values.")
    try:
        return np.broadcast_to(values, shape).astype(bool)
    except ValueError:
        raise ValueError(
            f"mask must be shaped like X {shape} or like one sample {shape[1:]}; "
            f"got shape {values.shape}."
        ) from None


class ReconstructionMixin:
    """:meth:`reconstruct`, :meth:`inpaint` and :meth:`interpolate` for a fitted CoopFlow."""

    def _langevin_flow(self) -> Sampler:
        """The sampler run in data space: the fitted one, or, when the fitted reviser runs
        in the flow's latent space (``energy_base="flow"``), the noise-free Langevin flow
        of :data:`coopkit.defaults.RECONSTRUCTION_LANGEVIN` on the tilted energy."""
        if self.settings_["energy_base"] == "uniform":
            return self.sampler_
        params = defaults.SAMPLER_PARAMS.get((self.scaler_.kind, "langevin"), {})
        return LangevinSampler(
            **{**params, **defaults.RECONSTRUCTION_LANGEVIN}, bounds=self.scaler_.model_bounds
        )

    def _one_sample(self, x: Any, name: str) -> torch.Tensor:
        """``x``, one sample shaped like a training sample, in model units as a batch of
        one (checked by :meth:`_to_model` under the name ``name``)."""
        return self._to_model(np.asarray(x)[None], name)

    def _reconstruct(
        self,
        target: torch.Tensor,
        x0: torch.Tensor,
        mask: torch.Tensor | None,
        n_iter: int,
        lr: float,
        seed: int,
    ) -> Reconstruction:
        """:func:`~coopkit.inference.reconstruct` in batches of ``reconstruct_batch_size``."""
        check_arg("n_iter", n_iter, integer(0))
        check_arg("lr", lr, number(0, strict=True))
        energy = self._model_energy(compiled=False)
        parts = []
        for i in range(0, len(target), self.reconstruct_batch_size):
            rows = slice(i, i + self.reconstruct_batch_size)
            parts.append(
                reconstruct(
                    energy,
                    self._langevin_flow(),
                    target[rows],
                    x0[rows],
                    mask=None if mask is None else mask[rows],
                    n_iter=n_iter,
                    lr=lr,
                    bounds=self.scaler_.model_bounds,
                    seed=seed,
                )
            )
        fields = ("x0", "x", "initial_error", "error")
        return Reconstruction(*(torch.cat([getattr(p, f) for p in parts]) for f in fields))

    @uses_threads
    def reconstruct(
        self,
        X: Any,
        n_iter: int = 200,
        lr: float = 0.01,
        *,
        init: str = "inverse",
        random_state: Any = None,
        return_error: bool = False,
    ) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """Reconstruct ``X`` with the generator "flow, then Langevin flow".

        Optimises the Langevin flow's input ``x0`` by Adam on ``‖x − L(x0)‖²`` (model
        units), back-propagating through every Langevin step. ``init="inverse"`` starts
        at ``x0 = g_α(g_α⁻¹(x))`` (which is ``x`` itself, the flow being invertible): the
        generator's input that the flow maps to ``x``, so the descent only has to undo
        the Langevin revision and converges fastest. ``init="sample"`` starts from a flow
        sample, as when asking whether the generator can reach ``x`` at all.

        Memory grows linearly with the number of Langevin steps (the graph of every step
        is kept); batches of ``reconstruct_batch_size`` samples bound it.

        Returns:
            The reconstructions, shaped like ``X``; with ``return_error=True`` also the
            per-sample squared error ``(n,)`` in model units.
        """
        check_arg("init", init, options("inverse", "sample"))
        check_arg("return_error", return_error, BOOLEAN)
        target = self._to_model(X)
        if init == "inverse":
            x0 = target
        else:
            x0 = propose(self.flow_, len(target), self._generator(random_state))
        result = self._reconstruct(target, x0, None, n_iter, lr, seed_from(random_state))
        recon = self._to_data(result.x)
        return (recon, result.error.cpu().double().numpy()) if return_error else recon

    @uses_threads
    def inpaint(
        self,
        X: Any,
        mask: Any,
        n_completions: int = 4,
        n_iter: int = 200,
        lr: float = 0.01,
        *,
        random_state: Any = None,
    ) -> np.ndarray:
        """Complete the unobserved entries of ``X``; several completions per sample.

        ``mask`` is 1 where ``X`` is observed, shaped like ``X`` or like one sample. Each
        completion starts the Langevin flow's input from a different flow sample (with
        the observed entries set to the data) and fits it on the observed entries only;
        the observed entries of the output are those of ``X``, exactly.

        Returns:
            ``(n, n_completions, *sample_shape)`` array.
        """
        check_arg("n_completions", n_completions, integer(1))
        target = self._to_model(X)
        observed = observed_mask(mask, tuple(target.shape[:1]) + self.scaler_.input_shape)
        m = torch.as_tensor(
            observed.reshape(target.shape), dtype=target.dtype, device=target.device
        )
        n = len(target)
        starts = propose(self.flow_, n * n_completions, self._generator(random_state))
        starts = starts.reshape(n_completions, n, *target.shape[1:])
        x0 = (m * target + (1 - m) * starts).reshape(-1, *target.shape[1:])
        repeat = (n_completions,) + (1,) * (target.dim() - 1)
        result = self._reconstruct(
            target.repeat(repeat), x0, m.repeat(repeat), n_iter, lr, seed_from(random_state)
        )
        completed = self._to_data(result.x).reshape(n_completions, *np.shape(X))
        completed = np.where(observed, np.asarray(X, dtype=np.float64), completed)
        return np.moveaxis(completed, 0, 1)

    @uses_threads
    def interpolate(
        self,
        x_a: Any,
        x_b: Any,
        n_points: int = 8,
        n_iter: int = 200,
        lr: float = 0.01,
        *,
        random_state: Any = None,
    ) -> np.ndarray:
        """Interpolate between two samples through the generator's latent space.

        Reconstructs both ends, maps their Langevin-flow inputs ``x0`` to latent codes
        with the flow, interpolates the codes linearly, and decodes each with the flow
        and then the Langevin flow. The end points equal :meth:`reconstruct`'s results.

        Returns:
            ``(n_points, *sample_shape)`` array.
        """
        check_arg("n_points", n_points, integer(2))
        ends = torch.cat([self._one_sample(x_a, "x_a"), self._one_sample(x_b, "x_b")])
        seed = seed_from(random_state)
        result = self._reconstruct(ends, ends, None, n_iter, lr, seed)
        with torch.no_grad():
            z = self.flow_(result.x0)[0]
            t = torch.linspace(0, 1, n_points, device=z.device).view(-1, *([1] * (z.dim() - 1)))
            x0 = self.flow_.inverse((1 - t) * z[:1] + t * z[1:])[0].clamp(
                *self.scaler_.model_bounds
            )
        generator = torch.Generator().manual_seed(seed)
        x = self._langevin_flow()(self._model_energy(compiled=False), x0, generator=generator).x
        return self._to_data(x)
