"""Neural spline flow: identity tails far out, the spline itself, and the kit at several
widths (round trips and log-determinants are the conformance kit's)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.datasets import make_moons

from coopkit import CoopFlow
from coopkit.flows import ActNorm
from coopkit.flows.glow import Logit
from coopkit.flows.spline import NSF, SplineCoupling, rational_quadratic_spline
from coopkit.registry import resolve
from coopkit.testing import check_flow, jacobian_logdet

BOUND = 5.0


def perturbed_nsf(features: int, seed: int, strength: float = 0.2) -> NSF:
    """An NSF in the default dtype, initialised on data and with every parameter moved
    off its start."""
    gen = torch.Generator().manual_seed(seed)
    flow = NSF((features,), n_layers=3, hidden_features=16, n_bins=6, bound=BOUND)
    flow.initialize(torch.randn(64, features, generator=gen) * 2 + 1)
    with torch.no_grad():
        for p in flow.parameters():
            p.add_(strength * torch.randn(p.shape, generator=gen, dtype=p.dtype))
    return flow


def spline_params(shape: tuple[int, ...], n_bins: int, seed: int) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    raw = 2 * torch.randn(*shape, 3 * n_bins - 1, generator=gen)
    return list(raw.split([n_bins, n_bins, n_bins - 1], dim=-1))


@pytest.mark.parametrize("features", [1, 2, 3, 5])
def test_nsf_conforms_at_several_widths(features: int) -> None:
    """Round trips and log-determinants (against the autograd Jacobian) of a perturbed
    NSF with a narrow spline interval, through the conformance kit."""
    check_flow(NSF, (features,), n_layers=3, hidden_features=16, n_bins=6, bound=BOUND)


@pytest.mark.parametrize("event_shape", [(1, 4, 4), (3, 2, 2)])
def test_nsf_on_images_conforms(event_shape: tuple[int, ...]) -> None:
    """Images pass the logit map and are flattened: round trips and log-determinants of
    the whole map (logit included) against the autograd Jacobian, through the kit."""
    check_flow(NSF, event_shape, n_layers=2, hidden_features=16, n_bins=6)


@pytest.mark.usefixtures("float64")
def test_nsf_on_images_is_the_logit_map_then_the_table_flow() -> None:
    """An image NSF is the table NSF of its flattened logits: same latent, log-determinant
    that of the logit map plus the table flow's (so neither is counted twice or lost)."""
    gen = torch.Generator().manual_seed(0)
    images = NSF((1, 2, 4), n_layers=2, hidden_features=8)
    table = NSF((8,), n_layers=2, hidden_features=8)
    x = torch.rand(16, 1, 2, 4, generator=gen) * 1.8 - 0.9
    images.initialize(x)
    table.load_state_dict(images.state_dict())
    u, logit_logdet = Logit()(x)
    z_table, logdet_table = table(u.flatten(1))
    z, logdet = images(x)
    assert torch.allclose(z.flatten(1), z_table, atol=1e-12)
    assert torch.allclose(logdet, logit_logdet + logdet_table, atol=1e-10)
    assert images.sample(3, generator=gen).shape == (3, 1, 2, 4)


@pytest.mark.usefixtures("float64")
@pytest.mark.parametrize("far", [50.0, 1e3])
def test_points_far_outside_the_bound_invert_exactly(far: float) -> None:
    flow = perturbed_nsf(3, seed=0)
    gen = torch.Generator().manual_seed(1)
    x = torch.tensor([[far, -far, far], [-far, far, far]])
    mixed = torch.randn(2, 3, generator=gen)
    mixed[:, 1] = torch.tensor([far, -far])
    for points in (x, mixed):
        z, logdet = flow(points)
        assert torch.isfinite(z).all()
        assert torch.isfinite(logdet).all()
        back, inverse_logdet = flow.inverse(z)
        assert torch.allclose(back, points, rtol=1e-12, atol=1e-9)
        assert torch.allclose(logdet, jacobian_logdet(flow, points), atol=1e-8)
        assert torch.allclose(logdet + inverse_logdet, torch.zeros_like(logdet), atol=1e-9)
    assert torch.allclose(flow.inverse(flow(x)[0])[0], x, rtol=1e-12, atol=0)
    # Every coordinate beyond the bound after the first ActNorm: the splines are the
    # identity there, so only the ActNorm scales count.
    scales = sum(-m.log_scale.sum() for m in flow.modules() if isinstance(m, ActNorm))
    assert torch.allclose(flow(x)[1], scales.expand(2))


@pytest.mark.usefixtures("float64")
def test_far_out_points_give_finite_gradients_to_every_parameter() -> None:
    flow = perturbed_nsf(3, seed=2)
    gen = torch.Generator().manual_seed(3)
    x = torch.cat([torch.randn(16, 3, generator=gen), 1e3 * torch.ones(2, 3)])
    flow.log_prob(x).sum().backward()
    for name, p in flow.named_parameters():
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name


@pytest.mark.usefixtures("float64")
@pytest.mark.parametrize("inverse", [False, True], ids=["forward", "inverse"])
def test_spline_is_continuous_with_unit_slope_at_the_boundaries(inverse: bool) -> None:
    widths, heights, derivatives = spline_params((200,), n_bins=8, seed=4)
    side = torch.tensor([-1.0, 1.0]).repeat(100)
    for offset in (-1e-10, 0.0, 1e-10):  # inside, at, outside the bound
        x = side * (BOUND + offset)
        y, log_slope = rational_quadratic_spline(
            x, widths, heights, derivatives, BOUND, inverse=inverse
        )
        assert torch.allclose(y, x, rtol=0, atol=1e-12)
        assert log_slope.abs().max() < 1e-4
    # log|dy/dx| -> 0 linearly in the distance to the bound (slope 1 there, smooth inside).
    near, nearer = (
        rational_quadratic_spline(side * (BOUND - d), widths, heights, derivatives, BOUND)[1]
        for d in (1e-8, 1e-10)
    )
    assert torch.allclose(nearer, near / 100, rtol=1e-3, atol=1e-12)


@pytest.mark.usefixtures("float64")
def test_spline_matches_its_derivative_and_inverse_everywhere() -> None:
    widths, heights, derivatives = spline_params((5000,), n_bins=8, seed=5)
    gen = torch.Generator().manual_seed(6)
    x = (6 * torch.randn(5000, generator=gen)).requires_grad_(True)
    y, log_slope = rational_quadratic_spline(x, widths, heights, derivatives, BOUND)
    (slope,) = torch.autograd.grad(y.sum(), x)
    assert torch.allclose(slope.log(), log_slope, atol=1e-10)
    assert (slope > 0).all()
    back, inverse_log_slope = rational_quadratic_spline(
        y.detach(), widths, heights, derivatives, BOUND, inverse=True
    )
    # The inverse is ill-conditioned where the slope is tiny: compare in y's units.
    assert torch.allclose((back - x.detach()) * slope, torch.zeros_like(back), atol=1e-12)
    assert torch.allclose(log_slope + inverse_log_slope, torch.zeros_like(y), atol=1e-8)


@pytest.mark.usefixtures("float64")
def test_zero_conditioner_is_the_identity() -> None:
    layer = SplineCoupling(torch.tensor([1, 0, 1]), 8, n_hidden=1, n_bins=5, bound=BOUND)
    x = 4 * torch.randn(10, 3)
    y, logdet = layer(x)
    assert torch.allclose(y, x, atol=1e-13)
    assert logdet.abs().max() < 1e-13


@pytest.mark.usefixtures("float64")
def test_log_prob_integrates_to_one_in_1d() -> None:
    flow = perturbed_nsf(1, seed=7)
    grid = torch.linspace(-40, 40, 200_001).unsqueeze(1)
    with torch.no_grad():
        density = flow.log_prob(grid).exp()
    assert torch.trapezoid(density, grid.squeeze(1)).item() == pytest.approx(1.0, abs=1e-4)


def test_bad_arguments_are_rejected() -> None:
    with pytest.raises(ValueError, match=r"tables.*or images \(c, h, w\)"):
        NSF((8, 8))
    with pytest.raises(ValueError, match="n_bins"):
        NSF((2,), n_bins=1)
    with pytest.raises(ValueError, match="bound"):
        NSF((2,), bound=0.0)
    with pytest.raises(ValueError, match="n_layers"):
        NSF((2,), n_layers=0)
    with pytest.raises(ValueError, match=r"shape \(n, 2\).*event_shape of the data"):
        NSF((2,))(torch.zeros(4, 3))
    with pytest.raises(ValueError, match=r"shape \(n, 1, 4, 4\)"):
        NSF((1, 4, 4))(torch.zeros(4, 16))


def test_registered_and_trains_on_moons() -> None:
    assert resolve("flow", "nsf").factory is NSF
    X, _ = make_moons(128, noise=0.05, random_state=0)
    model = CoopFlow(
        flow="nsf",
        flow_params={"n_layers": 2, "hidden_features": 16},
        energy_params={"hidden_features": 16},
        n_iter=3,
        batch_size=32,
        random_state=0,
    ).fit(X)
    assert isinstance(model.flow_, NSF)
    samples = model.sample(16, random_state=0)
    assert samples.shape == (16, 2)
    assert np.isfinite(samples).all()
