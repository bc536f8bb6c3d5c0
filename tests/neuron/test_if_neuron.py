import pytest
import torch

from fastsnn import IFNeuron, QuantReLU
from fastsnn.neuron import if_scan


def test_from_quant_takes_alpha_and_levels():
    quant = QuantReLU(3, alpha=0.8)
    neuron = IFNeuron.from_quant(quant, signed=False)
    assert neuron.T == 7 and neuron.threshold.item() == pytest.approx(0.8) and not neuron.signed
    assert IFNeuron.from_quant(quant, T=15).T == 15


def test_forward_folds_time_into_batch():
    T, B = 3, 4
    neuron = IFNeuron(0.5, T, signed=True)
    current = torch.randn(T * B, 2, 5, 5)
    out = neuron(current)
    assert out.shape == current.shape
    expected = 0.5 * if_scan(current.view(T, B, 2, 5, 5), torch.tensor(0.5), signed=True)
    assert torch.equal(out, expected.view(T * B, 2, 5, 5))


def test_rejects_bad_arguments():
    with pytest.raises(ValueError, match="T must be"):
        IFNeuron(1.0, 0)
    with pytest.raises(ValueError, match="threshold"):
        IFNeuron(-1.0, 3)
    with pytest.raises(ValueError, match="T\\*B"):
        IFNeuron(1.0, 3)(torch.zeros(4, 2))
