"""The IF neuron module: the only owner of T, its views of [T*B] tensors, and its surrogate-gradient modes."""

import pytest
import torch
from torch import nn

from fastsnn import IFNeuron, QuantReLU, SpikingNetwork
from fastsnn.errors import ConversionError, OptionError
from fastsnn.neuron import SpikingMaxPool, configured, if_scan, if_scan_surrogate, over_time


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
    with pytest.raises(OptionError, match="T must be"):
        IFNeuron(1.0, 0)
    with pytest.raises(ValueError, match="threshold"):
        IFNeuron(-1.0, 3)
    with pytest.raises(ValueError, match="T\\*B"):
        IFNeuron(1.0, 3)(torch.zeros(4, 2))


def test_T_is_fixed_at_construction():
    neuron = IFNeuron(1.0, 3)
    with pytest.raises(AttributeError):
        neuron.T = 7


def test_a_network_whose_neurons_disagree_on_T_is_refused_naming_them():
    """T = 3 in one neuron and 7 in another would mix time and batch silently (e.g. B = 7): refused."""
    body = nn.Sequential(nn.Linear(4, 4), IFNeuron(1.0, 3), nn.Linear(4, 4), IFNeuron(1.0, 7))
    with pytest.raises(ConversionError, match=r"1: T=3, 3: T=7"):
        SpikingNetwork(body)
    snn = SpikingNetwork(nn.Sequential(nn.Linear(4, 4), IFNeuron(1.0, 3)))
    snn.body.append(IFNeuron(1.0, 7))  # swapped in after construction: the next forward refuses
    with pytest.raises(ConversionError, match="share one T"):
        snn(torch.zeros(7, 4))
    with pytest.raises(ConversionError, match="no IF neuron"):
        SpikingNetwork(nn.Linear(2, 2))
    pooled = nn.Sequential(nn.Conv2d(1, 2, 3), IFNeuron(1.0, 3), SpikingMaxPool(nn.MaxPool2d(2), 7))
    with pytest.raises(ConversionError, match=r"1: T=3, 2: T=7"):  # a max-pool knows T too
        SpikingNetwork(pooled)
    with pytest.raises(ConversionError, match=r"0: T=3"):  # and a pool alone is no spiking network
        SpikingNetwork(nn.Sequential(SpikingMaxPool(nn.MaxPool2d(2), 3)))


@pytest.mark.parametrize("signed", [False, True])
def test_rate_and_time_views_of_the_neuron(signed):
    T, B = 7, 5
    neuron = IFNeuron(0.75, T, signed=signed)
    current = torch.randn(T, B, 3)
    out = neuron(current.reshape(T * B, 3))
    assert torch.equal(neuron.average_over_time(out), out.reshape(T, B, 3).mean(0))
    assert torch.equal(neuron.current_over_time(current.reshape(T * B, 3)), current)
    assert torch.equal(over_time(out, T), out.reshape(T, B, 3))
    with pytest.raises(ValueError, match="T\\*B with T=7"):
        neuron(current[0])  # [B, ...] without constant_current is no valid input


@pytest.mark.parametrize("signed", [False, True])
@pytest.mark.parametrize("surrogate", [None, "ste", "bptt"])
def test_a_constant_current_of_b_rows_gives_the_spikes_of_its_t_fold_repetition(signed, surrogate):
    T, B = 5, 4
    neuron = IFNeuron(torch.rand(3) + 0.2, T, signed=signed)
    stem = torch.randn(B, 3, requires_grad=True)
    repeated = stem.detach().clone().requires_grad_(True)
    with configured([neuron], surrogate=surrogate, constant_current=True):
        assert neuron.current_over_time(stem).stride(0) == 0  # expanded, not copied
        out = neuron(stem)
    assert not neuron.constant_current and neuron.surrogate is None, "settings are restored after the block"
    with configured([neuron], surrogate=surrogate):
        expected = neuron(repeated.unsqueeze(0).expand(T, B, 3).reshape(T * B, 3))
    assert torch.equal(out, expected)
    if surrogate is not None:
        (out * torch.arange(T * B * 3.0).reshape(T * B, 3)).sum().backward()
        (expected * torch.arange(T * B * 3.0).reshape(T * B, 3)).sum().backward()
        assert torch.allclose(stem.grad, repeated.grad)


@pytest.mark.parametrize("signed", [False, True])
def test_surrogate_modes_keep_the_spikes_and_give_their_gradients(signed):
    generator = torch.Generator().manual_seed(int(signed))
    T, B, theta = 3, 64, 0.8
    current = (torch.randn(T, B, 4, generator=generator) * 0.6).requires_grad_(True)
    folded = current.reshape(T * B, 4)
    neuron = IFNeuron(theta, T, signed=signed)
    plain = neuron(folded)
    assert not plain.requires_grad, "spikes carry no gradient by default"

    neuron.surrogate = "ste"
    ste = neuron(folded)
    assert torch.allclose(ste, plain, atol=1e-6)
    neuron.average_over_time(ste).sum().backward()
    mean = current.detach().mean(0)
    inside = ((mean > 0) & (mean < theta)).float() / T  # d clip(mean current, 0, θ) / d I(t)
    assert torch.allclose(current.grad, inside.expand(T, B, 4))

    current.grad = None
    neuron.surrogate = "bptt"
    bptt = neuron(folded)
    assert torch.equal(bptt, plain)
    bptt.sum().backward()
    expected = torch.autograd.grad(
        (theta * if_scan_surrogate(current, torch.tensor(theta), signed=signed)).sum(), current
    )[0]
    assert torch.allclose(current.grad, expected)


def test_configured_restores_the_settings_even_on_error_and_refuses_unknown_ones():
    neurons = [IFNeuron(1.0, 3), IFNeuron(1.0, 3)]
    neurons[1].surrogate = "bptt"
    with pytest.raises(RuntimeError, match="inside"):
        with configured(neurons, surrogate="ste", constant_current=True):
            assert [(n.surrogate, n.constant_current) for n in neurons] == [("ste", True)] * 2
            raise RuntimeError("inside")
    assert [(n.surrogate, n.constant_current) for n in neurons] == [(None, False), ("bptt", False)]
    with pytest.raises(ValueError, match="unknown IFNeuron setting.*signd"):
        with configured(neurons, signd=False):
            pass
