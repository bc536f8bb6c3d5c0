"""Baseline rate-norm conversion: thresholds from data, classic neurons, rates that converge with T."""

import pytest
import torch
from torch import nn

from fastsnn.analysis import recorded_outputs
from fastsnn.convert import convert_rate_norm
from fastsnn.errors import ConversionError
from fastsnn.neuron import IFNeuron


def mlp():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 32), nn.ReLU(), nn.Linear(32, 16), nn.ReLU(), nn.Linear(16, 4)).eval()


@pytest.mark.parametrize("percentile", [100.0, 99.9])
def test_thresholds_come_from_the_calibration_data(percentile):
    model = mlp()
    calibration = [torch.randn(200, 6), torch.randn(100, 6)]
    state = {name: value.clone() for name, value in model.state_dict().items()}
    snn = convert_rate_norm(model, calibration, T=9, percentile=percentile)
    with recorded_outputs({"1": model[1], "3": model[3]}) as activations, torch.no_grad():
        for batch in calibration:
            model(batch)  # outputs of the two calls are joined along the batch
    for path, neuron in snn.neurons():
        values = activations[path].flatten()
        assert values.numel() == 300 * model[int(path) - 1].out_features
        expected = values.max() if percentile == 100 else torch.quantile(values, percentile / 100)
        assert torch.isclose(neuron.threshold, expected), path
        assert neuron.T == 9 and not neuron.signed and neuron.initial_membrane == 0.0
    assert [type(m) for m in model] == [nn.Linear, nn.ReLU, nn.Linear, nn.ReLU, nn.Linear], (
        "the float model keeps its ReLUs"
    )
    assert all(torch.equal(value, state[name]) for name, value in model.state_dict().items()), "and its weights"


def test_first_layer_rates_floor_the_activation_and_converge_as_one_over_T():
    """With max-norm every activation is ≤ λ, and a constant input gives rate λ·floor(T·a/λ)/T ∈ (a − λ/T, a]."""
    model = mlp()
    x = torch.randn(256, 6)
    for T in (4, 64, 1024):
        snn = convert_rate_norm(model, [x], T=T)
        threshold = dict(snn.neurons())["1"].threshold
        with (
            recorded_outputs({"relu": model[1]}) as ann,
            recorded_outputs(dict(snn.neurons())) as rates,
            torch.no_grad(),
        ):
            model(x)
            snn(x)
        gap = ann["relu"] - rates["1"]
        assert (gap >= -1e-6).all() and (gap < threshold / T + 1e-6).all(), T


def test_refuses_what_spikes_cannot_carry():
    with pytest.raises(ConversionError, match=r"1 \(GELU\)"):
        convert_rate_norm(nn.Sequential(nn.Linear(3, 3), nn.GELU()), [torch.randn(4, 3)], T=4)
    with pytest.raises(ConversionError, match="no nn.ReLU"):
        convert_rate_norm(nn.Sequential(nn.Linear(3, 3)), [torch.randn(4, 3)], T=4)


def test_converted_network_holds_only_if_neurons_in_place_of_relus():
    snn = convert_rate_norm(mlp(), [torch.randn(32, 6)], T=5)
    assert [type(m) for m in snn.body] == [nn.Linear, IFNeuron, nn.Linear, IFNeuron, nn.Linear]
