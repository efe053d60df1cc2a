from __future__ import annotations

import math

import pytest
import torch

from coopkit.energies.mlp import FourierFeatures, MLPEnergy
from coopkit.testing import check_energy


def test_fourier_features_keep_the_input_and_add_sines_and_cosines() -> None:
    torch.manual_seed(0)
    features = FourierFeatures(3, 5, scale=2.0)
    x = torch.randn(4, 3)
    out = features(x)
    phase = 2 * math.pi * x @ features.frequencies.T
    assert torch.equal(out[:, :3], x)
    torch.testing.assert_close(out[:, 3:], torch.cat([phase.sin(), phase.cos()], dim=1))
    assert features.frequencies.std() > 1.0


def test_fourier_frequencies_are_saved_with_the_weights() -> None:
    torch.manual_seed(0)
    energy = MLPEnergy((2,), fourier_features=8)
    torch.manual_seed(1)
    other = MLPEnergy((2,), fourier_features=8)
    x = torch.randn(6, 2)
    assert not torch.allclose(energy(x), other(x))
    other.load_state_dict(energy.state_dict())
    torch.testing.assert_close(other(x), energy(x))


def test_fourier_features_let_the_net_learn_a_checkerboard_ratio() -> None:
    """A logistic classifier of points on the alternating squares of an 8x8 board: within
    100 steps the plain MLP stays near chance, Fourier features separate them."""
    generator = torch.Generator().manual_seed(0)
    x = 4 * torch.rand(2048, 2, generator=generator) - 2
    label = ((2 * x).floor().sum(dim=1) % 2).float()
    accuracy = {}
    for k in (0, 32):
        torch.manual_seed(0)
        energy = MLPEnergy((2,), hidden_features=64, reference_scale=None, fourier_features=k)
        optimizer = torch.optim.Adam(energy.parameters(), lr=1e-2)
        for _ in range(100):
            loss = torch.nn.functional.binary_cross_entropy_with_logits(-energy(x), label)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        accuracy[k] = ((-energy(x) > 0).float() == label).float().mean().item()
    assert accuracy[32] > 0.95
    assert accuracy[0] < 0.75


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"fourier_features": -1}, "fourier_features must be an integer >= 0; got -1"),
        ({"fourier_features": 2.5}, "fourier_features must be an integer >= 0; got 2.5"),
        ({"fourier_features": 4, "fourier_scale": 0.0}, "fourier_scale must be positive"),
    ],
)
def test_bad_fourier_settings_are_refused(params: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        MLPEnergy((2,), **params)


def test_fourier_variant_meets_the_energy_contract() -> None:
    check_energy(MLPEnergy, (3,), hidden_features=8, n_hidden=2, fourier_features=4)
