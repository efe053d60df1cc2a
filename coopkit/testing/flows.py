"""The flow check, :func:`check_flow`; see :mod:`coopkit.testing`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import Tensor

from coopkit.flows.base import Flow
from coopkit.testing.common import (
    INIT_BATCH,
    LOGDET_TOL,
    ROUND_TRIP_TOL,
    PartFactory,
    _build_part,
    _check_parameter_gradients,
    _check_state_dict,
    _close,
    _draw,
    _error,
    _far_out,
    _is_image,
    _name,
    _part_settings,
    _perturb,
    _require,
    jacobian_logdet,
)


def _call_flow(
    function: Callable[[Tensor], tuple[Tensor, Tensor]], x: Tensor, direction: str, where: str
) -> tuple[Tensor, Tensor]:
    before = x.clone()
    out = function(x)
    _require(
        isinstance(out, tuple) and len(out) == 2,
        f"{where} [shapes]: {direction} must return a pair (values, logdet); got "
        f"{type(out).__name__}.",
    )
    y, logdet = out
    _require(
        tuple(y.shape) == tuple(x.shape) and tuple(logdet.shape) == (x.shape[0],),
        f"{where} [shapes]: {direction} of a batch {tuple(x.shape)} returned values "
        f"{tuple(y.shape)} and logdet {tuple(logdet.shape)}; the values must keep the "
        f"input's shape and logdet be ({x.shape[0]},): sum each sample's log-determinant "
        "over all its elements.",
    )
    _require(
        y.dtype == x.dtype and logdet.dtype == x.dtype,
        f"{where} [shapes]: {direction} returned {y.dtype} and {logdet.dtype} for "
        f"{x.dtype} input; compute in the input's dtype.",
    )
    _require(torch.equal(x, before), f"{where}: {direction} modified its input in place.")
    _require(
        bool(torch.isfinite(y).all() and torch.isfinite(logdet).all()),
        f"{where} [finite]: {direction} returned NaN or infinite values or log-determinants; "
        "bound the scales (e.g. s = B tanh(s / B)) and use tails that stay invertible "
        "(e.g. linear tails outside a spline's interval).",
    )
    return y, logdet


def _check_flow_points(flow: Flow, x: Tensor, z_draw: Tensor, where: str) -> None:
    """Shapes, round trips both ways, log-determinants against the Jacobian, cancellation."""
    z, logdet = _call_flow(flow, x, "forward", where)
    back, inverse_logdet = _call_flow(flow.inverse, z, "inverse", where)
    _require(
        _close(back, x, ROUND_TRIP_TOL),
        f"{where} [round trip]: inverse(forward(x)) differs from x (relative error "
        f"{_error(back, x):.3g} > {ROUND_TRIP_TOL:g}); inverse must undo forward exactly.",
    )
    x_drawn, _ = _call_flow(flow.inverse, z_draw, "inverse", where)
    z_back, _ = _call_flow(flow, x_drawn, "forward", where)
    _require(
        _close(z_back, z_draw, ROUND_TRIP_TOL),
        f"{where} [round trip]: forward(inverse(z)) differs from z for z from the base "
        f"(relative error {_error(z_back, z_draw):.3g} > {ROUND_TRIP_TOL:g}); inverse must be "
        "the exact inverse of forward on the whole latent space.",
    )
    expected = jacobian_logdet(flow, x[:1])
    _require(
        _close(logdet[:1], expected, LOGDET_TOL),
        f"{where} [forward log-determinant]: forward's logdet {logdet[0].item():.6g} but "
        f"log|det| of the autograd Jacobian is {expected.item():.6g}. logdet must be "
        "log|det dz/dx| of the very map computed: check signs, factors, and that every "
        "element (pixels x channels) is counted once.",
    )
    expected = jacobian_logdet(flow.inverse, z[:1])
    _require(
        _close(inverse_logdet[:1], expected, LOGDET_TOL),
        f"{where} [inverse log-determinant]: inverse's logdet {inverse_logdet[0].item():.6g} "
        f"but log|det| of the autograd Jacobian is {expected.item():.6g}; inverse must return "
        "log|det dx/dz|.",
    )
    _require(
        _close(logdet + inverse_logdet, torch.zeros_like(logdet), LOGDET_TOL),
        f"{where} [log-determinants cancel]: forward and inverse log-determinants do not "
        f"cancel (largest sum {(logdet + inverse_logdet).abs().max().item():.3g}); inverse "
        "must return minus the forward log-determinant at the corresponding point.",
    )


def _check_flow_structure(
    flow: Flow, factory: PartFactory, params: dict[str, Any], x: Tensor, label: str
) -> None:
    """Shapes, no re-initialisation, train/eval, batch independence, state_dict, sample."""
    z, _ = _call_flow(flow, x, "forward", label)
    _call_flow(flow.inverse, z, "inverse", label)
    _check_one_fixed_bijection(flow, x, label)

    def outputs(part: torch.nn.Module) -> list[Tensor]:
        z, logdet = part(x)
        back, inverse_logdet = part.inverse(z)
        return [z, logdet, back, inverse_logdet]

    event_shape = flow.event_shape
    _check_state_dict(
        flow, lambda: _build_part(factory, event_shape, params, seed=1), outputs, label
    )
    first, second = (flow.sample(3, torch.Generator().manual_seed(0)) for _ in range(2))
    _require(
        tuple(first.shape) == (3, *event_shape)
        and bool(torch.isfinite(first).all())
        and torch.equal(first, second),
        f"{label} [sample]: flow.sample(3, generator) gave shape {tuple(first.shape)}, "
        "non-finite or irreproducible samples; it must return (n, *event_shape) finite "
        "samples, all randomness drawn from the generator.",
    )


def _check_one_fixed_bijection(flow: Flow, x: Tensor, label: str) -> None:
    """After initialisation the flow is one fixed map: later calls do not re-initialise
    it, train and eval modes agree, and each sample is mapped on its own."""
    before = {name: t.clone() for name, t in flow.state_dict().items()}
    shifted = 0.5 * x if _is_image(flow.event_shape) else 3 * x + 2
    z_train, logdet_train = flow(shifted)
    changed = [
        name for name, t in flow.state_dict().items() if not torch.equal(t, before.get(name, t))
    ]
    _require(
        not changed,
        f"{label} [initialisation runs once]: a forward call after initialize changed "
        f"{changed}; the data-dependent initialisation must run only on the first call "
        "(e.g. guarded by an 'initialized' buffer), never on later batches.",
    )
    flow.eval()
    try:
        z_eval, logdet_eval = flow(shifted)
        x_eval, _ = flow.inverse(z_eval)
    finally:
        flow.train()
    x_train, _ = flow.inverse(z_eval)
    _require(
        _close(z_eval, z_train, 1e-12)
        and _close(logdet_eval, logdet_train, 1e-12)
        and _close(x_eval, x_train, 1e-12),
        f"{label} [train/eval]: forward or inverse differ between flow.train() and "
        "flow.eval() after initialisation; a flow must be one fixed bijection (no dropout, "
        "no batch statistics).",
    )
    z_all, logdet_all = flow(x)
    for i in range(x.shape[0]):
        z_alone, logdet_alone = flow(x[i : i + 1])
        _require(
            _close(z_alone, z_all[i : i + 1], 1e-10)
            and _close(logdet_alone, logdet_all[i : i + 1], 1e-10),
            f"{label} [batch independence]: sample {i}'s latent or log-determinant changes "
            "with the rest of the batch; each sample must be mapped on its own (no batch "
            "statistics after initialisation).",
        )


def check_flow(factory: PartFactory, event_shape: tuple[int, ...], **params: Any) -> None:
    """Check a flow factory against the flow contract (see the module's documentation).

    Args:
        factory: builds the flow, ``factory(event_shape, **params) -> Flow`` (the factory
            registered with coopkit, or the flow class).
        event_shape: the shape of one sample, e.g. ``(3,)`` for a table or ``(1, 8, 8)``
            for images; keep it small (the Jacobian costs a backward pass per element).
        params: passed to the factory; small sizes keep the check fast.

    Raises:
        AssertionError: naming the failed check and the likely fix.

    Examples:
        >>> from coopkit.flows import RealNVP
        >>> check_flow(RealNVP, (3,), n_layers=2, hidden_features=8)
    """
    event_shape = tuple(int(size) for size in event_shape)
    label = f"check_flow({_name(factory)}, {event_shape})"
    with torch.random.fork_rng(devices=[]):
        flow = _build_part(factory, event_shape, params, seed=0)
        _require(
            isinstance(flow, Flow),
            f"{label}: the factory built {type(flow).__name__}; a flow must subclass "
            "coopkit.flows.Flow (which provides log_prob, sample and initialize).",
        )
        _require(
            tuple(flow.event_shape) == event_shape,
            f"{label}: the flow's event_shape is {flow.event_shape}; it must be the "
            "event_shape the factory was given.",
        )
        generator = torch.Generator().manual_seed(0)
        flow.initialize(_draw(event_shape, INIT_BATCH, generator))
        _perturb(flow, generator)
        flow.train()
        _check_flow_structure(flow, factory, params, _draw(event_shape, 4, generator), label)
        _check_parameter_gradients(
            flow, -flow.log_prob(_draw(event_shape, 32, generator)).mean(), label, "log_prob"
        )

        @_part_settings()
        @given(
            n=st.integers(1, 4),
            scale=st.floats(0.25, 3.0),
            clamped=st.floats(0.0, 1.0),
            seed=st.integers(0, 2**16),
        )
        def run(n: int, scale: float, clamped: float, seed: int) -> None:
            draws = torch.Generator().manual_seed(seed)
            x = _draw(event_shape, n, draws, scale, clamped)
            z = scale * torch.randn(x.shape, generator=draws, dtype=torch.float64)
            where = f"{label} (batch of {n}, scale {scale:.3g}, seed {seed})"
            _check_flow_points(flow, x, z, where)

        run()
        for case, x in _far_out(event_shape, generator).items():
            z = torch.randn(x.shape, generator=generator, dtype=torch.float64)
            _check_flow_points(flow, x, z, f"{label} (out of range: {case})")
