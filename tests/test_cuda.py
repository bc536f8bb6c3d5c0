"""The CUDA path gives the CPU's results (run on a machine with a GPU; CI has none)."""

import pytest
import torch

from fastsnn import convert
from fastsnn.analysis import recorded_outputs
from fastsnn.neuron import if_scan, if_scan_surrogate
from fastsnn.quant import levels, quantize_activation
from helpers import dyadic, random_dyadic_network

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@pytest.mark.parametrize("bits", [2, 3, 4])
def test_constant_input_exactness_on_cuda(bits):
    generator = torch.Generator().manual_seed(bits)
    T = levels(bits)
    theta = torch.tensor(float(T), device="cuda")
    current = (dyadic((100_000,), generator, low=-4 * T, high=4 * T + 8, denominator=2)).cuda()
    spikes = if_scan(current.expand(T, -1), theta, signed=True).sum(0)
    assert torch.equal(spikes, quantize_activation(current, theta, bits) * T / theta)


@pytest.mark.parametrize("signed", [False, True])
@pytest.mark.parametrize("seed", range(3))
def test_exact_networks_spike_identically_on_cuda(seed, signed, monkeypatch):
    """Dyadic weights, inputs and thresholds make every sum exact, so both devices must give the same
    spikes at every layer (TF32 off: it would round the convolutions' inputs)."""
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", False)
    generator = torch.Generator().manual_seed(seed)
    qann = random_dyadic_network(generator, bits=2, depth=3)
    x = dyadic((16, 1, 6, 6), generator, low=0, high=17, denominator=16)
    on_cpu, on_cuda = convert(qann, signed=signed), convert(qann, signed=signed).cuda()
    with recorded_outputs(dict(on_cpu.neurons())) as cpu_rates, recorded_outputs(dict(on_cuda.neurons())) as cuda_rates:
        with torch.no_grad():
            cpu_output, cuda_output = on_cpu(x), on_cuda(x.cuda()).cpu()
    assert list(cpu_rates) == list(cuda_rates)
    for path in cpu_rates:
        assert torch.equal(cpu_rates[path], cuda_rates[path].cpu()), path
    assert torch.allclose(cpu_output, cuda_output, atol=1e-5)


@pytest.mark.parametrize("signed", [False, True])
def test_surrogate_scan_on_cuda_gives_the_plain_scans_spikes(signed):
    current = torch.randn(7, 64, 100, generator=torch.Generator().manual_seed(1)).cuda()
    assert torch.equal(if_scan_surrogate(current, 0.8, signed=signed), if_scan(current, 0.8, signed=signed))
