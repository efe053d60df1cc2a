"""What the flow and energy checks share: hypothesis settings, inputs from a part's
domain, building and perturbing parts, tolerances, and the numerical Jacobian
log-determinant (:func:`jacobian_logdet`)."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

try:
    from hypothesis import HealthCheck, Phase, settings
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "coopkit.testing needs hypothesis; install it with `pip install coopkit[test]`."
    ) from exc


def _name(factory: Callable[..., Any]) -> str:
    return getattr(factory, "__qualname__", None) or repr(factory)


def _require(condition: object, message: str) -> None:
    """Raise :class:`AssertionError` with ``message`` unless ``condition`` (works under -O)."""
    if not condition:
        raise AssertionError(message)


PartFactory = Callable[..., torch.nn.Module]

PART_EXAMPLES = 5
PERTURBATION = 0.1
ROUND_TRIP_TOL = 1e-7
LOGDET_TOL = 1e-6
FAR_OUT = 20.0
INIT_BATCH = 64
FD_STEP = 1e-6
FD_TOL = 1e-6


def _part_settings() -> settings:
    return settings(
        max_examples=PART_EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=[HealthCheck.too_slow],
        report_multiple_bugs=False,
    )


def _is_image(event_shape: tuple[int, ...]) -> bool:
    return len(event_shape) == 3


def _draw(
    event_shape: tuple[int, ...],
    n: int,
    generator: torch.Generator,
    scale: float = 1.0,
    clamped: float = 0.0,
) -> Tensor:
    """``n`` float64 inputs from the domain: images uniform in [-1, 1] with a fraction
    ``clamped`` of pixels at exactly ±1; anything else ``scale`` times standard normal."""
    shape = (n, *event_shape)
    if not _is_image(event_shape):
        return scale * torch.randn(shape, generator=generator, dtype=torch.float64)
    x = 2 * torch.rand(shape, generator=generator, dtype=torch.float64) - 1
    at_edge = torch.rand(shape, generator=generator, dtype=torch.float64) < clamped
    return torch.where(at_edge, torch.where(x < 0, -1.0, 1.0).to(x.dtype), x)


def _far_out(event_shape: tuple[int, ...], generator: torch.Generator) -> dict[str, Tensor]:
    """Named batches of inputs where Langevin takes samples; the first row is the case."""
    signs = torch.where(torch.rand((3, *event_shape), generator=generator) < 0.5, -1.0, 1.0)
    signs = signs.to(torch.float64)
    if _is_image(event_shape):
        return {
            "every pixel at -1 or 1 (where Langevin clamps them)": signs,
            "every pixel at 1": torch.ones_like(signs),
            "every pixel at -1": -torch.ones_like(signs),
        }
    one = _draw(event_shape, 3, generator)
    one.view(3, -1)[:, 0] = FAR_OUT * signs.view(3, -1)[:, 0]
    return {
        f"every coordinate at ±{FAR_OUT:g} standard units": FAR_OUT * signs,
        f"one coordinate at ±{FAR_OUT:g} standard units": one,
    }


@torch.no_grad()
def _perturb(module: torch.nn.Module, generator: torch.Generator) -> None:
    """Move every parameter by ``N(0, PERTURBATION²)`` noise (zero-initialised layers too)."""
    for param in module.parameters():
        param.add_(PERTURBATION * torch.randn(param.shape, generator=generator, dtype=param.dtype))


def _build_part(
    factory: PartFactory, event_shape: tuple[int, ...], params: dict[str, Any], seed: int
) -> torch.nn.Module:
    """``factory(event_shape, **params)`` with torch's global generator seeded (the caller
    has forked it), as a float64 module."""
    torch.manual_seed(seed)
    try:
        part = factory(event_shape, **params)
    except TypeError as exc:
        raise AssertionError(
            f"{_name(factory)}({event_shape!r}, **{params!r}) failed ({exc}); a flow or "
            "energy factory takes event_shape first, then keyword parameters."
        ) from exc
    _require(
        isinstance(part, torch.nn.Module),
        f"{_name(factory)} built {type(part).__name__}, not a torch.nn.Module.",
    )
    return part.double()


def _close(actual: Tensor, expected: Tensor, tol: float) -> bool:
    """``|actual - expected| <= tol (1 + |expected|)`` everywhere, and both finite."""
    ok = (actual - expected).abs() <= tol * (1 + expected.abs())
    return bool(ok.all() and torch.isfinite(actual).all())


def _error(actual: Tensor, expected: Tensor) -> float:
    return ((actual - expected).abs() / (1 + expected.abs())).max().item()


def _check_state_dict(
    part: torch.nn.Module,
    rebuild: Callable[[], torch.nn.Module],
    outputs: Callable[[torch.nn.Module], list[Tensor]],
    label: str,
) -> None:
    """Save ``part.state_dict()``, load it into ``rebuild()``, compare ``outputs``."""
    buffer = io.BytesIO()
    torch.save(part.state_dict(), buffer)
    buffer.seek(0)
    try:
        state = torch.load(buffer, weights_only=True)
    except Exception as exc:
        raise AssertionError(
            f"{label} [state_dict]: torch.load(weights_only=True) refuses the saved "
            f"state_dict ({exc}); keep only tensors in parameters and buffers."
        ) from exc
    fresh = rebuild()
    try:
        fresh.load_state_dict(state)
    except RuntimeError as exc:
        raise AssertionError(
            f"{label} [state_dict]: a fresh instance from the factory cannot load the "
            f"state_dict ({exc}); build the same parameters and buffers from the same "
            "arguments, whatever the data or the random state."
        ) from exc
    for name, (loaded, original) in enumerate(zip(outputs(fresh), outputs(part), strict=True)):
        _require(
            _close(loaded, original, 1e-12),
            f"{label} [state_dict]: after save and load into a fresh instance, output {name} "
            f"differs (error {_error(loaded, original):.3g}). Keep all state that the outputs "
            "depend on (e.g. an 'initialized' flag of a data-dependent initialisation) in "
            "parameters or persistent buffers, not in Python attributes.",
        )


def _check_parameter_gradients(part: torch.nn.Module, loss: Tensor, label: str, what: str) -> None:
    """Every trainable parameter of ``part`` gets a finite, non-zero gradient from ``loss``."""
    trainable = [(name, p) for name, p in part.named_parameters() if p.requires_grad]
    if not trainable:
        return
    part.zero_grad(set_to_none=True)
    loss.backward()
    grads = {name: p.grad for name, p in trainable}
    part.zero_grad(set_to_none=True)
    broken = [name for name, g in grads.items() if g is not None and not torch.isfinite(g).all()]
    _require(not broken, f"{label} [parameter gradients]: non-finite gradients in {broken}.")
    missing = [name for name, g in grads.items() if g is None]
    zero = [name for name, g in grads.items() if g is not None and not g.abs().sum() > 0]
    _require(
        not missing and not zero,
        f"{label} [parameter gradients]: {what} gives no gradient to {missing + zero} (None: "
        f"{missing}, all zero: {zero}). Every trainable parameter must influence the output: "
        "remove unused parameters, do not detach or compute under torch.no_grad, and "
        "register constants as buffers (or set requires_grad=False).",
    )


def jacobian_logdet(function: Callable[[Tensor], tuple[Tensor, Tensor]], x: Tensor) -> Tensor:
    """``log|det J|`` of ``function``'s first output at each sample of ``x``, ``(n,)``.

    The reference a flow's own log-determinant is checked against: ``slogdet`` of the
    Jacobian that autograd computes, one sample at a time (``function`` maps a batch
    ``(1, *event)`` to ``(output, logdet)``, as a flow's ``forward`` and ``inverse`` do).

    Examples:
        >>> from coopkit.flows import ActNorm
        >>> norm = ActNorm(2).double()
        >>> x = torch.randn(5, 2, dtype=torch.float64)
        >>> bool(torch.allclose(jacobian_logdet(norm, x), norm(x)[1]))
        True
    """

    def logdet(point: Tensor) -> Tensor:
        def flat(v: Tensor) -> Tensor:
            return function(v.view_as(point))[0].reshape(-1)

        jacobian = torch.autograd.functional.jacobian(flat, point.reshape(-1))
        return torch.linalg.slogdet(jacobian).logabsdet

    return torch.stack([logdet(point) for point in x.split(1)])
