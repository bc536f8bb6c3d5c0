"""The CUDA path gives the CPU's results (run on a machine with a GPU; CI has none)."""

import pytest
import torch

from fastsnn import convert, quantize
from fastsnn.models import create_model
from fastsnn.neuron import if_scan, if_scan_surrogate
from fastsnn.quant import levels, quantize_activation
from helpers import dyadic

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@pytest.mark.parametrize("bits", [2, 3, 4])
def test_constant_input_exactness_on_cuda(bits):
    generator = torch.Generator().manual_seed(bits)
    T = levels(bits)
    theta = torch.tensor(float(T), device="cuda")
    current = (dyadic((100_000,), generator, low=-4 * T, high=4 * T + 8, denominator=2)).cuda()
    spikes = if_scan(current.expand(T, -1), theta, signed=True).sum(0)
    assert torch.equal(spikes, quantize_activation(current, theta, bits) * T / theta)


@pytest.mark.parametrize("name", ["vgg11", "resnet20"])
def test_snn_on_cuda_matches_cpu(name):
    qann = quantize(create_model(name, num_classes=10, in_channels=3, width=0.5), 2).eval()
    x = torch.randn(16, 3, 32, 32)
    with torch.no_grad():
        cpu = convert(qann)(x)
        cuda = convert(qann.cuda())(x.cuda()).cpu()
    # float summation order differs between devices; a tie flipped by rounding moves one spike
    assert (cpu.argmax(1) == cuda.argmax(1)).float().mean() >= 0.9
    assert torch.allclose(cpu, cuda, atol=0.05 * cpu.abs().max().item())


@pytest.mark.parametrize("signed", [False, True])
def test_surrogate_scan_on_cuda_gives_the_plain_scans_spikes(signed):
    current = torch.randn(7, 64, 100, generator=torch.Generator().manual_seed(1)).cuda()
    assert torch.equal(if_scan_surrogate(current, 0.8, signed=signed), if_scan(current, 0.8, signed=signed))
