import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from fastsnn.neuron import if_scan
from fastsnn.quant import levels, quantize_activation
from helpers import dyadic

BITS = [2, 3, 4]


@pytest.mark.parametrize("bits", BITS)
@pytest.mark.parametrize("signed", [False, True])
@pytest.mark.parametrize("seed", range(5))
def test_constant_input_spike_count_equals_quantized_level_exactly(bits, signed, seed):
    """Temporal ↔ spatial quantization: with T = L, n = clip(floor(T·I/θ + 1/2), 0, T), ties included."""
    generator = torch.Generator().manual_seed(seed)
    T = levels(bits)
    scale = 2.0 ** torch.randint(-2, 2, (), generator=generator).item()
    theta = torch.tensor(T * scale)  # step θ/T = scale: every input below is exact, ties k+1/2 included
    current = dyadic((4000,), generator, low=-4 * T, high=4 * T + 8, denominator=2) * scale
    ties = torch.frac(current * T / theta) == 0.5
    assert ties.sum() > 100, "the draw must cover rounding ties"
    spike_count = if_scan(current.expand(T, -1), theta, signed=signed).sum(0)
    level = quantize_activation(current, theta, bits) * T / theta
    assert torch.equal(spike_count, level)


@pytest.mark.parametrize("bits", BITS)
def test_constant_float_input_matches_away_from_ties(bits):
    """Arbitrary float inputs: exact except within float rounding of a tie (where neither side is 'right')."""
    T = levels(bits)
    theta = torch.tensor(0.737)
    current = torch.randn(200_000) * 0.6 + 0.3
    position = current * T / theta
    near_tie = (torch.frac(position.abs()) - 0.5).abs() < 1e-4
    spike_count = if_scan(current.expand(T, -1), theta).sum(0)
    level = quantize_activation(current, theta, bits) * T / theta
    assert torch.equal(spike_count[~near_tie], level[~near_tie].round())
    assert near_tie.float().mean() < 1e-3


def sequences(T, batch, offset, scale, trend, seed):
    """Random currents [T, batch]: noise around an offset plus an early-positive / late-negative trend."""
    generator = torch.Generator().manual_seed(seed)
    ramp = torch.linspace(1, -1, T).unsqueeze(1)
    return offset + scale * torch.randn(T, batch, generator=generator) + trend * ramp


@settings(max_examples=40, deadline=None, derandomize=True)
@given(
    bits=st.sampled_from(BITS),
    offset=st.floats(-1.0, 2.0),
    scale=st.floats(0.0, 3.0),
    trend=st.floats(0.0, 3.0),
    seed=st.integers(0, 2**16),
)
def test_signed_neuron_bounds_and_fidelity(bits, offset, scale, trend, seed):
    T = levels(bits)
    theta = torch.tensor(1.0)
    current = sequences(T, 2000, offset, scale, trend, seed)
    signed = if_scan(current, theta, signed=True)
    unsigned = if_scan(current, theta, signed=False)
    net = signed.cumsum(0)
    assert net.min() >= 0 and net.max() <= T, "the signed count is a ReLU: within [0, T] at every step"
    assert set(signed.unique().tolist()) <= {-1.0, 0.0, 1.0}
    assert set(unsigned.unique().tolist()) <= {0.0, 1.0}
    target = quantize_activation(current.mean(0), theta, bits) * T / theta  # the QANN sees the mean current
    matches_signed = (signed.sum(0) == target.round()).float().mean()
    matches_unsigned = (unsigned.sum(0) == target.round()).float().mean()
    # Pure noise (no trend) has no systematic early burst: there the two can differ by a hair either way
    # (hypothesis found 0.6115 vs 0.6120 at T = 15); an early-positive trend is what the signed neuron fixes.
    assert matches_signed >= matches_unsigned - 0.005
    if trend >= 1.0:
        assert matches_signed >= matches_unsigned


def test_signed_neuron_takes_back_an_early_burst():
    theta = torch.tensor(1.0)
    current = torch.tensor([[1.0], [-1.0], [0.0]])  # mean 0: the QANN outputs 0
    assert if_scan(current, theta).sum() == 1
    assert if_scan(current, theta, signed=True).sum() == 0
