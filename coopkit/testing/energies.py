"""The energy-net check, :func:`check_energy`; see :mod:`coopkit.testing`."""

from __future__ import annotations

import copy
from typing import Any

import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import Tensor

from coopkit.testing.common import (
    FD_STEP,
    FD_TOL,
    PartFactory,
    _build_part,
    _check_parameter_gradients,
    _check_state_dict,
    _close,
    _draw,
    _far_out,
    _name,
    _part_settings,
    _perturb,
    _require,
)


def _energies(energy: torch.nn.Module, x: Tensor, where: str) -> Tensor:
    before = x.clone()
    out = energy(x)
    _require(
        isinstance(out, Tensor) and tuple(out.shape) == (x.shape[0],),
        f"{where} [shape]: a batch {tuple(x.shape)} gave "
        f"{tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__}; an energy "
        f"net returns one energy per sample, shape ({x.shape[0]},) (squeeze only the last "
        "dimension, so that a batch of one stays (1,)).",
    )
    _require(
        out.dtype == x.dtype,
        f"{where} [dtype]: {x.dtype} input gave {out.dtype} energies; compute in the input's "
        "dtype (follow .float() / .double() of the module).",
    )
    _require(torch.equal(x, before), f"{where}: the energy net modified its input in place.")
    _require(bool(torch.isfinite(out).all()), f"{where} [finite]: NaN or infinite energies.")
    return out


def _check_energy_points(
    energy32: torch.nn.Module, energy: torch.nn.Module, x: Tensor, v: Tensor, where: str
) -> None:
    """Shape, dtype, determinism, batch independence, gradient and Hessian-vector product."""
    _energies(energy32, x.float(), where)
    leaf = x.clone().requires_grad_(True)
    values = _check_energy_values(energy, leaf, where)
    gradient = _check_input_gradient(energy, leaf, values, v, where)
    _check_hessian_vector_product(energy, leaf, gradient, v, where)


def _check_energy_values(energy: torch.nn.Module, leaf: Tensor, where: str) -> Tensor:
    """The ``(n,)`` energies at ``leaf``, checked to depend on it through autograd, to be
    deterministic and to be computed per sample."""
    x = leaf.detach()
    values = _energies(energy, leaf, where)
    _require(
        values.requires_grad,
        f"{where} [input gradient]: the energies do not depend on x through autograd; "
        "Langevin needs grad_x E (no torch.no_grad, .detach() or numpy in the forward).",
    )
    _require(
        torch.equal(values, _energies(energy, x, where)),
        f"{where} [determinism]: two calls on the same input gave different energies; the "
        "forward must not be random (no dropout).",
    )
    for i in range(x.shape[0]):
        alone = _energies(energy, x[i : i + 1], where)
        _require(
            _close(alone, values[i : i + 1].detach(), 1e-10),
            f"{where} [batch independence]: sample {i}'s energy changes with the rest of the "
            "batch; compute each energy from its own sample (no batch norm, no batch means).",
        )
    return values


def _check_input_gradient(
    energy: torch.nn.Module, leaf: Tensor, values: Tensor, v: Tensor, where: str
) -> Tensor:
    """``grad_x E`` at ``leaf`` (with its graph), checked against central finite
    differences of ``E`` along ``v``."""
    x = leaf.detach()
    (gradient,) = torch.autograd.grad(values.sum(), leaf, create_graph=True)
    _require(
        bool(torch.isfinite(gradient).all()),
        f"{where} [input gradient]: grad_x E has NaN or infinite entries.",
    )
    with torch.no_grad():
        plus = _energies(energy, x + FD_STEP * v, where)
        minus = _energies(energy, x - FD_STEP * v, where)
    slope = (gradient * v).flatten(1).sum(dim=1)
    difference = (plus - minus) / (2 * FD_STEP)
    _require(
        bool(((difference - slope).abs() <= FD_TOL * (1 + slope.abs() + values.abs())).all()),
        f"{where} [input gradient]: grad_x E along a direction {slope.detach().tolist()} "
        f"differs from central finite differences of E {difference.tolist()}; part of the "
        "energy is detached from x (.detach(), torch.no_grad, a .item() or numpy round trip).",
    )
    return gradient


def _check_hessian_vector_product(
    energy: torch.nn.Module, leaf: Tensor, gradient: Tensor, v: Tensor, where: str
) -> None:
    """The Hessian-vector product along ``v`` exists (the energy is twice differentiable,
    as reconstruction needs) and matches central finite differences of ``grad_x E``."""
    x = leaf.detach()
    if not gradient.requires_grad:
        raise AssertionError(
            f"{where} [twice differentiable]: grad_x E has no graph of its own; the energy "
            "must be differentiable twice in x (reconstruction back-propagates through "
            "Langevin steps, which contain grad_x E): use smooth activations and no "
            "once-differentiable custom functions."
        )
    try:
        (hvp,) = torch.autograd.grad((gradient * v).sum(), leaf, allow_unused=True)
    except RuntimeError as exc:
        raise AssertionError(
            f"{where} [twice differentiable]: the Hessian-vector product failed ({exc}); the "
            "energy must be differentiable twice in x (reconstruction back-propagates "
            "through Langevin steps, which contain grad_x E)."
        ) from exc
    _require(
        hvp is not None and bool(torch.isfinite(hvp).all()),
        f"{where} [twice differentiable]: the Hessian-vector product is missing or not finite.",
    )
    plus, minus = (_input_gradient(energy, x + sign * FD_STEP * v, where) for sign in (1, -1))
    difference = (plus - minus) / (2 * FD_STEP)
    _require(
        bool(((difference - hvp).abs() <= FD_TOL * (1 + hvp.abs() + gradient.abs())).all()),
        f"{where} [twice differentiable]: the Hessian-vector product differs from central "
        f"finite differences of grad_x E (largest gap {(difference - hvp).abs().max().item():.3g});"
        " part of grad_x E is not differentiable through autograd (a once_differentiable "
        "custom function, a detach in a backward), or the energy is not smooth (use smooth "
        "activations such as SiLU or softplus).",
    )


def _input_gradient(energy: torch.nn.Module, x: Tensor, where: str) -> Tensor:
    leaf = x.clone().requires_grad_(True)
    (gradient,) = torch.autograd.grad(_energies(energy, leaf, where).sum(), leaf)
    return gradient


def check_energy(factory: PartFactory, event_shape: tuple[int, ...], **params: Any) -> None:
    """Check an energy-net factory against the energy contract (see the module's documentation).

    Args:
        factory: builds the energy net, ``factory(event_shape, **params) -> nn.Module``
            mapping ``(n, *event_shape)`` to ``(n,)`` energies.
        event_shape: the shape of one sample, e.g. ``(3,)`` or ``(1, 8, 8)``.
        params: passed to the factory; small sizes keep the check fast.

    Raises:
        AssertionError: naming the failed check and the likely fix.

    Examples:
        >>> from coopkit.energies import MLPEnergy
        >>> check_energy(MLPEnergy, (3,), hidden_features=16)
    """
    event_shape = tuple(int(size) for size in event_shape)
    label = f"check_energy({_name(factory)}, {event_shape})"
    with torch.random.fork_rng(devices=[]):
        energy = _build_part(factory, event_shape, params, seed=0)
        generator = torch.Generator().manual_seed(0)
        _perturb(energy, generator)
        energy.train()
        energy32 = copy.deepcopy(energy).float()

        @_part_settings()
        @given(
            n=st.integers(1, 5),
            scale=st.floats(0.25, 3.0),
            clamped=st.floats(0.0, 1.0),
            seed=st.integers(0, 2**16),
        )
        def run(n: int, scale: float, clamped: float, seed: int) -> None:
            draws = torch.Generator().manual_seed(seed)
            x = _draw(event_shape, n, draws, scale, clamped)
            v = torch.randn(x.shape, generator=draws, dtype=torch.float64)
            where = f"{label} (batch of {n}, scale {scale:.3g}, seed {seed})"
            _check_energy_points(energy32, energy, x, v, where)

        run()
        for case, x in _far_out(event_shape, generator).items():
            v = torch.randn(x.shape, generator=generator, dtype=torch.float64)
            _check_energy_points(energy32, energy, x, v, f"{label} (out of range: {case})")
        x = _draw(event_shape, 32, generator)
        _check_parameter_gradients(energy, energy(x).mean(), label, "the mean energy")

        def outputs(part: torch.nn.Module) -> list[Tensor]:
            return [part(x)]

        _check_state_dict(
            energy, lambda: _build_part(factory, event_shape, params, seed=1), outputs, label
        )
