from __future__ import annotations

import pytest
import torch
from torch.autograd.functional import jacobian

from coopkit_flowpp.coupling import (
    MixtureCoupling,
    alternating_masks,
    channel_mask,
    checkerboard_mask,
)

SHAPE = (4, 2, 2)


def perturbed(coupling: MixtureCoupling, seed: int) -> MixtureCoupling:
    """The coupling in float64 with every weight moved off its initial value."""
    coupling = coupling.double()
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in coupling.parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=generator, dtype=p.dtype))
    return coupling


def test_masks_split_the_image_in_two_alternating_halves() -> None:
    board = checkerboard_mask(4, 4, parity=0)
    torch.testing.assert_close(board + checkerboard_mask(4, 4, parity=1), torch.ones(1, 1, 4, 4))
    assert board.sum() == 8
    assert board[0, 0, 0, 0] == 1
    assert board[0, 0, 0, 1] == 0
    assert channel_mask(4, 0).flatten().tolist() == [1, 1, 0, 0]
    kinds = [tuple(m.shape) for m in alternating_masks(4, 2, 2, 4)]
    assert kinds == [(1, 4, 1, 1), (1, 1, 2, 2)] * 2
    masks = alternating_masks(4, 2, 2, 4)
    torch.testing.assert_close(masks[0] + masks[2], torch.ones(1, 4, 1, 1))
    assert all(m.shape == (1, 4, 1, 1) for m in alternating_masks(4, 1, 1, 3))
    assert all(m.shape == (1, 1, 2, 2) for m in alternating_masks(1, 2, 2, 3))
    with pytest.raises(ValueError, match="two pixels or two channels"):
        alternating_masks(1, 1, 1, 2)


@pytest.mark.parametrize(
    ("mask", "attention", "context"),
    [
        (channel_mask(4, 1), False, 0),
        (checkerboard_mask(2, 2, 0), True, 0),
        (checkerboard_mask(2, 2, 1), False, 2),
    ],
    ids=["channel", "checkerboard-attention", "checkerboard-context"],
)
def test_logdet_matches_autograd_jacobian_and_kept_pixels_stay(
    mask: torch.Tensor, attention: bool, context: int
) -> None:
    torch.manual_seed(0)
    coupling = MixtureCoupling(
        4, mask, 8, n_components=3, attention=attention, attention_heads=2, context_channels=context
    )
    coupling = perturbed(coupling, seed=1)
    generator = torch.Generator().manual_seed(2)
    x = torch.randn(1, *SHAPE, generator=generator, dtype=torch.float64)
    ctx = (
        torch.randn(1, context, 2, 2, generator=generator, dtype=torch.float64) if context else None
    )

    def forward(flat: torch.Tensor) -> torch.Tensor:
        return coupling(flat.view(1, *SHAPE), ctx)[0].flatten()

    def inverse(flat: torch.Tensor) -> torch.Tensor:
        return coupling.inverse(flat.view(1, *SHAPE), ctx)[0].flatten()

    y, logdet = coupling(x, ctx)
    kept = mask.expand_as(x).bool()
    torch.testing.assert_close(y[kept], x[kept], atol=0, rtol=0)
    assert (y[~kept] - x[~kept]).abs().max() > 0.1
    _, expected = torch.slogdet(jacobian(forward, x.flatten(), vectorize=True))
    torch.testing.assert_close(logdet[0], expected, atol=1e-9, rtol=1e-10)
    x_back, logdet_back = coupling.inverse(y, ctx)
    torch.testing.assert_close(x_back, x, atol=1e-10, rtol=0)
    _, expected_inv = torch.slogdet(jacobian(inverse, y.flatten(), vectorize=True))
    torch.testing.assert_close(logdet_back[0], expected_inv, atol=1e-9, rtol=1e-10)
    torch.testing.assert_close(expected_inv, -expected, atol=1e-9, rtol=1e-10)


def test_components_start_apart_so_that_they_can_learn_apart() -> None:
    coupling = MixtureCoupling(4, channel_mask(4, 0), 8, n_components=4)
    x = torch.randn(2, *SHAPE, requires_grad=True)
    logits, means, log_scales, a, b = coupling._params(x, None)
    assert means[0, 0, 0, 0].tolist() == [-0.75, -0.25, 0.25, 0.75]
    assert not logits.any()
    assert not log_scales.any()
    assert not a.any()
    assert not b.any()
    coupling(x)[1].sum().backward()
    grad = coupling.net[-1].weight.grad.view(14, 4, -1)[4:8, 2:]  # the free channels' means
    assert (grad[0] - grad[1]).abs().max() > 1e-4


def test_context_and_mask_mistakes_raise() -> None:
    with pytest.raises(ValueError, match="keep some pixels and leave some free"):
        MixtureCoupling(4, torch.ones(1, 4, 1, 1), 8, n_components=2)
    coupling = MixtureCoupling(4, channel_mask(4, 0), 8, n_components=2, context_channels=1)
    with pytest.raises(ValueError, match="context of 1 channels"):
        coupling(torch.randn(2, *SHAPE))
    with pytest.raises(ValueError, match="context"):
        MixtureCoupling(4, channel_mask(4, 0), 8, 2)(
            torch.randn(2, *SHAPE), torch.randn(2, 1, 2, 2)
        )
