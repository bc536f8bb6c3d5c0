"""SpikingMaxPool: the pooled spike count is the max-pool of the input counts, each step a spike, gradients flow."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from fastsnn.errors import OptionError
from fastsnn.neuron import SpikingMaxPool, over_time

POOLS = [  # kernel_size, stride, padding, dilation, ceil_mode
    dict(kernel_size=2),
    dict(kernel_size=3, stride=2, padding=1),
    dict(kernel_size=(3, 2), stride=(1, 2), padding=(1, 0), ceil_mode=True),
    dict(kernel_size=2, stride=1, dilation=2),
    dict(kernel_size=3, stride=2, padding=1, dilation=(2, 1), ceil_mode=True),
]


def spike_train(T: int, shape: tuple, *, signed: bool, seed: int) -> torch.Tensor:
    """Spikes ``[T, *shape]`` in {0, 1}, or in {−1, 0, 1} with counts kept ≥ 0 as an IF neuron's are."""
    generator = torch.Generator().manual_seed(seed)
    draws = torch.randint(-1 if signed else 0, 2, (T, *shape), generator=generator).float()
    count, steps = torch.zeros(shape), []
    for draw in draws:
        step = torch.where((draw < 0) & (count == 0), torch.zeros_like(draw), draw)  # no count below 0
        count += step
        steps.append(step)
    return torch.stack(steps)


def explicit(pool: nn.Module, spikes: torch.Tensor) -> torch.Tensor:
    """out(t) = pool(C(t)) − pool(C(t−1)) step by step, ``[T, B, ...]`` -> ``[T, B, ...]``."""
    counts = torch.zeros_like(spikes[0])
    previous = pool(counts)
    outputs = []
    for step in spikes:
        counts = counts + step
        pooled = pool(counts)
        outputs.append(pooled - previous)
        previous = pooled
    return torch.stack(outputs)


@pytest.mark.parametrize("T", [3, 7, 15])
@pytest.mark.parametrize("signed", [False, True])
@pytest.mark.parametrize("options", POOLS)
def test_the_pooled_count_is_the_max_pool_of_the_counts_and_every_step_a_spike(T, signed, options):
    B, C, H, W = 3, 4, 9, 8
    pool = nn.MaxPool2d(**options)
    spiking = SpikingMaxPool(pool, T)
    for seed in range(3):
        spikes = spike_train(T, (B, C, H, W), signed=signed, seed=seed + 10 * T)
        assert (spikes.cumsum(0) >= 0).all() and (not signed or (spikes < 0).any())
        out = spiking(spikes.reshape(T * B, C, H, W))
        expected = F.max_pool2d(spikes.sum(0), **options)
        assert out.shape == (T * B, *expected.shape[1:])
        by_time = over_time(out, T)
        assert torch.equal(by_time.sum(0), expected), "amplitude 1: exact"
        allowed = torch.tensor([-1.0, 0.0, 1.0] if signed else [0.0, 1.0])
        assert torch.isin(by_time, allowed).all()
        # a float amplitude: per channel, as an IF neuron's θ may be
        amplitude = torch.tensor([0.37, 1.3, 0.052, 2.9]).view(1, C, 1, 1)
        scaled = over_time(spiking((spikes * amplitude).reshape(T * B, C, H, W)), T)
        torch.testing.assert_close(scaled.sum(0), expected * amplitude, rtol=1e-6, atol=1e-6)
        torch.testing.assert_close(scaled, by_time * amplitude, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("T", [3, 7, 15])
@pytest.mark.parametrize("output_size", [1, (2, 3), (5, 4)])
def test_adaptive_max_pool_counts_exactly_too(T, output_size):
    B, C, H, W = 2, 3, 7, 9
    spikes = spike_train(T, (B, C, H, W), signed=True, seed=T)
    out = over_time(SpikingMaxPool(nn.AdaptiveMaxPool2d(output_size), T)(spikes.reshape(T * B, C, H, W)), T)
    assert torch.equal(out.sum(0), F.adaptive_max_pool2d(spikes.sum(0), output_size))
    assert torch.isin(out, torch.tensor([-1.0, 0.0, 1.0])).all()


def test_pooling_single_steps_would_not_pool_rates():
    """Two inputs spiking at alternating steps have rate 1/2 each: the max of the rates is 1/2, not 1."""
    T = 4
    spikes = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 1.0]]).view(T, 1, 1, 2)
    assert F.max_pool2d(spikes, (1, 2)).sum().item() == T, "pooling each step alone"
    assert SpikingMaxPool(nn.MaxPool2d((1, 2)), T)(spikes.view(T, 1, 1, 2)).sum().item() == T / 2


@pytest.mark.parametrize("pool", [nn.MaxPool2d(3, stride=2, padding=1), nn.AdaptiveMaxPool2d((2, 3))])
def test_gradients_are_those_of_the_explicit_formula(pool):
    T, shape = 5, (2, 3, 6, 7)
    spiking = SpikingMaxPool(pool, T)
    values = torch.randn(T, *shape, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    torch.autograd.gradcheck(spiking, (values.reshape(T * 2, *shape[1:]).requires_grad_(),))
    weights = torch.randn(spiking(values.reshape(T * 2, *shape[1:])).shape, dtype=torch.float64)
    inputs = values.clone().requires_grad_()
    (spiking(inputs.reshape(T * 2, *shape[1:])) * weights).sum().backward()
    reference = values.clone().requires_grad_()
    out = explicit(pool, reference)
    (out.reshape(weights.shape) * weights).sum().backward()
    assert torch.equal(spiking(values.reshape(T * 2, *shape[1:])), out.reshape(weights.shape))
    torch.testing.assert_close(inputs.grad, reference.grad)
    assert inputs.grad.abs().sum() > 0


def test_from_pool_copies_the_pool_and_owns_T():
    pool = nn.MaxPool2d(3, stride=2, padding=1, dilation=2, ceil_mode=True)
    spiking = SpikingMaxPool.from_pool(pool, T=7, signed=False)
    assert spiking.T == 7 and spiking.pool is not pool and repr(spiking.pool) == repr(pool)
    pool.kernel_size = 5
    assert spiking.pool.kernel_size == 3, "a copy: later changes of the float pool do not reach it"
    with pytest.raises(AttributeError):
        spiking.T = 3
    with pytest.raises(OptionError, match="T must be"):
        SpikingMaxPool(nn.MaxPool2d(2), 0)
    with pytest.raises(ValueError, match="return_indices=True"):
        SpikingMaxPool.from_pool(nn.MaxPool2d(2, return_indices=True), T=3)
    with pytest.raises(ValueError, match="return_indices=True"):
        SpikingMaxPool.from_pool(nn.AdaptiveMaxPool2d(2, return_indices=True), T=3)
    with pytest.raises(TypeError, match="AvgPool2d"):
        SpikingMaxPool(nn.AvgPool2d(2), 3)
    with pytest.raises(ValueError, match=r"T\*B"):
        SpikingMaxPool(nn.MaxPool2d(2), 3)(torch.zeros(4, 1, 2, 2))
