from __future__ import annotations

import pytest
import torch

from coopkit.energies.conv import ConvEnergy, ResidualDown

PAPER_PARAMETERS_32x32x3_NF128 = 17_129_444  # the released EBM_res, the paper's 17.1M


def n_parameters(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize(("channels", "size"), [(1, 8), (3, 8), (1, 16), (3, 16)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_output_shape_and_dtype(channels: int, size: int, dtype: torch.dtype) -> None:
    energy = ConvEnergy((channels, size, size), n_f=4).to(dtype)
    out = energy(torch.rand(3, channels, size, size, dtype=dtype))
    assert out.shape == (3,)
    assert out.dtype == dtype
    assert torch.isfinite(out).all()


@pytest.mark.parametrize(("size", "blocks"), [(4, 0), (8, 1), (16, 2), (32, 3), (64, 4)])
def test_depth_follows_image_size(size: int, blocks: int) -> None:
    with torch.device("meta"):
        energy = ConvEnergy((3, size, size), n_f=8)
    downs = [m for m in energy.modules() if isinstance(m, ResidualDown)]
    assert len(downs) == blocks
    widths = [8] + [down.skip[0].out_channels for down in downs]
    assert widths == [8 * min(2**i, 8) for i in range(blocks + 1)]


def test_parameter_count_is_the_papers() -> None:
    with torch.device("meta"):
        energy = ConvEnergy((3, 32, 32), n_f=128)
    assert n_parameters(energy) == PAPER_PARAMETERS_32x32x3_NF128


@pytest.mark.usefixtures("float64")
def test_energies_do_not_mix_the_batch() -> None:
    torch.manual_seed(0)
    energy = ConvEnergy((1, 8, 8), n_f=4)
    x = torch.randn(4, 1, 8, 8)
    one_by_one = torch.cat([energy(x[i : i + 1]) for i in range(4)])
    torch.testing.assert_close(energy(x), one_by_one)
    assert one_by_one.std() > 0


def test_input_gradient_is_finite_and_nonzero() -> None:
    torch.manual_seed(0)
    energy = ConvEnergy((3, 16, 16), n_f=4)
    x = torch.rand(2, 3, 16, 16, requires_grad=True)
    (grad,) = torch.autograd.grad(energy(x).sum(), x)
    assert torch.isfinite(grad).all()
    assert grad.abs().sum() > 0


@pytest.mark.usefixtures("float64")
def test_twice_differentiable_in_the_input() -> None:
    torch.manual_seed(0)
    energy = ConvEnergy((1, 8, 8), n_f=2)
    x = torch.randn(2, 1, 8, 8, requires_grad=True)
    assert torch.autograd.gradgradcheck(energy, (x,))
    # A piecewise-linear net (ReLU) would have a zero Hessian; swish must not.
    (grad,) = torch.autograd.grad(energy(x).sum(), x, create_graph=True)
    (hvp,) = torch.autograd.grad((grad * torch.ones_like(x)).sum(), x)
    assert hvp.abs().max() > 1e-6


@pytest.mark.parametrize(
    ("event_shape", "match"),
    [
        ((64,), r"\(c, h, w\)"),
        ((1, 8, 16), "square"),
        ((1, 12, 12), r"4 \* 2\*\*k"),
        ((1, 6, 6), r"4 \* 2\*\*k"),
        ((1, 2, 2), r"4 \* 2\*\*k"),
    ],
)
def test_bad_event_shape_raises(event_shape: tuple[int, ...], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        ConvEnergy(event_shape)


@pytest.mark.parametrize("shape", [(2, 3, 8, 8), (2, 1, 16, 16), (2, 64), (1, 8, 8)])
def test_wrong_input_shape_raises(shape: tuple[int, ...]) -> None:
    energy = ConvEnergy((1, 8, 8), n_f=4)
    with pytest.raises(ValueError, match=r"expects input of shape \(n, 1, 8, 8\)"):
        energy(torch.rand(shape))
