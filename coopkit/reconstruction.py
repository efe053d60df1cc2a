"""Reconstruction, inpainting and interpolation with the fitted generator.

The generator is "flow, then Langevin flow": a sample is ``L(g_α(z))``. Reconstruction
and interpolation fit the Langevin flow's input ``x0`` so that its output matches the
data (:mod:`coopkit.inversion`); inpainting samples the unobserved entries from the
model given the observed ones (:mod:`coopkit.conditional`), or fits them as
reconstruction does (``method="optimize"``). :class:`ReconstructionMixin` gives them to
:class:`~coopkit.CoopFlow`; see ``docs/guide/reconstruction.md``.

References:
    Xie et al., "A Tale of Two Flows: Cooperative Learning of Langevin Flow and
    Normalizing Flow Toward Energy-Based Model", ICLR 2022. https://arxiv.org/abs/2205.06924
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import torch

from coopkit import defaults
from coopkit.conditional import sample_conditional
from coopkit.inversion import Reconstruction, fixed_point_fit, gradient_fit
from coopkit.samplers.base import Sampler
from coopkit.samplers.langevin import LangevinSampler
from coopkit.samplers.mala import MALASampler
from coopkit.threads import uses_threads
from coopkit.training.energy import propose
from coopkit.validation import BOOLEAN, NONE, check_arg, integer, number, options, seed_from

FIT_METHODS = ("fixed_point", "gradient")


def solver_options(method: str, n_iter: int, lr: float, tol: float) -> dict[str, Any]:
    """The arguments of a fit of the Langevin flow's input, checked, as one record
    (``"optimize"``, inpainting's name for it, is ``"gradient"``)."""
    check_arg("n_iter", n_iter, integer(0))
    check_arg("lr", lr, number(0, strict=True))
    check_arg("tol", tol, number(0))
    method = "gradient" if method == "optimize" else method
    return {"method": method, "n_iter": n_iter, "lr": lr, "tol": tol}


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

    def _conditional_sampler(self, n_steps: int | None) -> Sampler:
        """The sampler of inpainting: the fitted reviser where it runs in data space
        (``energy_base="uniform"``), else MALA (:data:`coopkit.defaults.INPAINT_MALA`);
        ``n_steps`` replaces its number of steps where given."""
        if self.settings_["energy_base"] == "uniform":
            sampler = copy.copy(self.sampler_)
        else:
            sampler = MALASampler(**defaults.INPAINT_MALA)
        if n_steps is not None:
            sampler.n_steps = n_steps
        return sampler

    def _one_sample(self, x: Any, name: str) -> torch.Tensor:
        """``x``, one sample shaped like a training sample, in model units as a batch of
        one (checked by :meth:`_to_model` under the name ``name``)."""
        return self._to_model(np.asarray(x)[None], name)

    def _fit_inputs(
        self,
        target: torch.Tensor,
        x0: torch.Tensor,
        mask: torch.Tensor | None,
        solver: dict[str, Any],
        seed: int,
    ) -> Reconstruction:
        """The Langevin flow's inputs fitted to ``target`` in batches of
        ``reconstruct_batch_size``, by the fit of :func:`solver_options`' record."""
        gradient = solver["method"] == "gradient"
        fit = gradient_fit if gradient else fixed_point_fit
        settings = {"n_iter": solver["n_iter"], "tol": solver["tol"]}
        if gradient:
            settings["lr"] = solver["lr"]
        energy, sampler = self._model_energy(compiled=False), self._langevin_flow()
        parts = []
        for i in range(0, len(target), self.reconstruct_batch_size):
            rows = slice(i, i + self.reconstruct_batch_size)
            parts.append(
                fit(
                    energy,
                    sampler,
                    target[rows],
                    x0[rows],
                    mask=None if mask is None else mask[rows],
                    bounds=self.scaler_.model_bounds,
                    seed=seed,
                    **settings,
                )
            )
        fields = ("x0", "x", "initial_error", "error")
        joined = (torch.cat([getattr(p, f) for p in parts]) for f in fields)
        return Reconstruction(*joined, max(p.n_iter for p in parts))

    @uses_threads
    def reconstruct(
        self,
        X: Any,
        n_iter: int = 200,
        lr: float = 0.01,
        *,
        method: str = "fixed_point",
        tol: float = 1e-3,
        init: str = "inverse",
        random_state: Any = None,
        return_error: bool = False,
    ) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """Reconstruct ``X`` with the generator "flow, then Langevin flow".

        Fits the Langevin flow's input ``x0`` so that ``L(x0)`` matches ``X`` (model
        units), by ``method`` (:mod:`coopkit.inversion`): ``"fixed_point"`` iterates
        ``x0 ← x0 + (x − L(x0))``, one forward run of the Langevin flow per iteration;
        ``"gradient"`` is the paper's Adam (learning rate ``lr``) on ``‖x − L(x0)‖²``
        through every Langevin step. Either runs at most ``n_iter`` iterations and stops
        once three in a row each lower the total error by less than the fraction ``tol``
        (``tol=0`` runs them all). ``init="inverse"`` starts at ``x0 = g_α(g_α⁻¹(x))``,
        which is ``x`` itself, so only the Langevin revision has to be undone;
        ``init="sample"`` starts from a flow sample.

        With ``"gradient"`` memory grows linearly with the number of Langevin steps;
        batches of ``reconstruct_batch_size`` samples bound it.

        Returns:
            The reconstructions, shaped like ``X``; with ``return_error=True`` also the
            per-sample squared error ``(n,)`` in model units.
        """
        check_arg("method", method, options(*FIT_METHODS))
        check_arg("init", init, options("inverse", "sample"))
        check_arg("return_error", return_error, BOOLEAN)
        target = self._to_model(X)
        if init == "inverse":
            x0 = target
        else:
            x0 = propose(self.flow_, len(target), self._generator(random_state))
        solver = solver_options(method, n_iter, lr, tol)
        result = self._fit_inputs(target, x0, None, solver, seed_from(random_state))
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
        method: str = "sample",
        n_steps: int | None = None,
        tol: float = 1e-3,
        random_state: Any = None,
    ) -> np.ndarray:
        """Complete the unobserved entries of ``X``; several completions per sample.

        ``mask`` is 1 where ``X`` is observed, shaped like ``X`` or like one sample.
        ``method="sample"`` draws the unobserved entries from the model given the
        observed ones (:mod:`coopkit.conditional`): ``n_steps`` transitions (``None``:
        the sampler's default) of the fitted reviser where it runs in data space, else
        MALA on the tilted energy, from the best of several flow samples with the
        observed entries written in. ``method="optimize"`` is the paper's: it fits the
        Langevin flow's input to the observed entries only, as :meth:`reconstruct`
        with ``method="gradient"`` does (``n_iter``, ``lr``, ``tol``), each completion
        from a different flow sample. The observed entries of the output are those of
        ``X``, exactly.

        Returns:
            ``(n, n_completions, *sample_shape)`` array.
        """
        check_arg("method", method, options("sample", "optimize"))
        check_arg("n_completions", n_completions, integer(1))
        check_arg("n_steps", n_steps, integer(1) | NONE)
        solver = solver_options(method, n_iter, lr, tol)
        target = self._to_model(X)
        observed = observed_mask(mask, tuple(target.shape[:1]) + self.scaler_.input_shape)
        m = torch.as_tensor(
            observed.reshape(target.shape), dtype=target.dtype, device=target.device
        )
        repeat = (n_completions,) + (1,) * (target.dim() - 1)
        generator = self._generator(random_state)
        if method == "sample":
            x = sample_conditional(
                self._model_energy(compiled=False),
                self.flow_,
                self._conditional_sampler(n_steps),
                target.repeat(repeat),
                m.repeat(repeat),
                n_candidates=defaults.INPAINT_CANDIDATES,
                bounds=self.scaler_.model_bounds,
                generator=generator,
            )
        else:
            starts = propose(self.flow_, len(target) * n_completions, generator)
            x0 = torch.where(m.repeat(repeat).bool(), target.repeat(repeat), starts)
            seed = seed_from(random_state)
            x = self._fit_inputs(target.repeat(repeat), x0, m.repeat(repeat), solver, seed).x
        completed = self._to_data(x).reshape(n_completions, *np.shape(X))
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
        method: str = "fixed_point",
        tol: float = 1e-3,
        random_state: Any = None,
    ) -> np.ndarray:
        """Interpolate between two samples through the generator's latent space.

        Reconstructs both ends (as :meth:`reconstruct`, with ``method``, ``n_iter``,
        ``lr`` and ``tol``), maps their Langevin-flow inputs ``x0`` to latent codes with
        the flow, interpolates the codes linearly, and decodes each with the flow and
        then the Langevin flow. The end points equal :meth:`reconstruct`'s results.

        Returns:
            ``(n_points, *sample_shape)`` array.
        """
        check_arg("method", method, options(*FIT_METHODS))
        check_arg("n_points", n_points, integer(2))
        ends = torch.cat([self._one_sample(x_a, "x_a"), self._one_sample(x_b, "x_b")])
        seed = seed_from(random_state)
        result = self._fit_inputs(ends, ends, None, solver_options(method, n_iter, lr, tol), seed)
        with torch.no_grad():
            z = self.flow_(result.x0)[0]
            t = torch.linspace(0, 1, n_points, device=z.device).view(-1, *([1] * (z.dim() - 1)))
            x0 = self.flow_.inverse((1 - t) * z[:1] + t * z[1:])[0].clamp(
                *self.scaler_.model_bounds
            )
        generator = torch.Generator().manual_seed(seed)
        x = self._langevin_flow()(self._model_energy(compiled=False), x0, generator=generator).x
        return self._to_data(x)
