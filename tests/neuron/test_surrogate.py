"""The differentiable scan: the plain scan's spikes, with surrogate gradients through the T steps."""

import pytest
import torch

from fastsnn.neuron import if_scan, if_scan_surrogate
from helpers import dyadic


@pytest.mark.parametrize("signed", [False, True])
@pytest.mark.parametrize("initial_membrane", [0.5, 0.0])
@pytest.mark.parametrize("seed", range(3))
def test_forward_gives_exactly_the_plain_scans_spikes(signed, initial_membrane, seed):
    generator = torch.Generator().manual_seed(seed)
    T = (3, 7, 15)[seed]
    threshold = torch.rand(1, 8, 1, generator=generator) + 0.25  # per channel
    float_current = torch.randn(T, 16, 8, 5, generator=generator) * 0.6
    tie_current = dyadic((T, 16, 8, 5), generator, denominator=4)  # many exact ties with threshold 1
    for current, theta in ((float_current, threshold), (tie_current, torch.tensor(1.0))):
        expected = if_scan(current, theta, signed=signed, initial_membrane=initial_membrane)
        assert torch.equal(
            if_scan_surrogate(current, theta, signed=signed, initial_membrane=initial_membrane), expected
        )


def test_one_step_gradient_is_the_triangular_surrogate():
    theta = 0.8
    current = torch.linspace(-1.0, 2.0, 301).unsqueeze(0).requires_grad_(True)
    if_scan_surrogate(current, theta).sum().backward()
    distance = current.detach() + theta / 2 - theta  # v − θ after one step from v0 = θ/2
    expected = (1 - distance.abs() / theta).clamp(min=0) / theta
    assert torch.allclose(current.grad, expected)


def test_gradient_reaches_earlier_steps_through_the_membrane():
    current = torch.full((4, 1), 0.3, requires_grad=True)
    spikes = if_scan_surrogate(current, 1.0)
    spikes[-1].sum().backward()
    assert (current.grad[:-1] != 0).all(), "the last spike depends on every earlier input"
    assert torch.isfinite(current.grad).all()


def test_plain_scan_with_zero_initial_membrane_floors_instead_of_rounding():
    """v0 = 0 (classic rate-norm): a constant input gives n = min(T, floor(T·I/θ)) spikes."""
    generator = torch.Generator().manual_seed(0)
    T, theta = 7, 1.0
    current = dyadic((50_000,), generator, low=0, high=64, denominator=32)  # exact multiples of 1/32
    count = if_scan(current.expand(T, -1), theta, initial_membrane=0.0).sum(0)
    assert torch.equal(count, torch.clamp(torch.floor(T * current / theta), max=T))
