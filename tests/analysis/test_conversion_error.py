"""Per-layer conversion error reproduces the theory where it is known."""

import json

import pytest
import torch
from torch import nn

from fastsnn import convert, quantize
from fastsnn.analysis import (
    ConversionErrors,
    compare_models,
    conversion_errors,
    format_conversion_errors,
)
from fastsnn.errors import FastSNNError
from fastsnn.tasks import Classification
from helpers import dyadic, loader_of, random_dyadic_network, random_qann


@pytest.mark.parametrize("seed", range(4))
def test_first_spiking_layer_has_zero_error_on_exact_networks(seed):
    generator = torch.Generator().manual_seed(seed)
    qann = random_dyadic_network(generator, bits=2 + seed % 3, depth=3)
    images = dyadic((64, 1, 6, 6), generator, low=0, high=17, denominator=16)
    errors = conversion_errors(
        qann, {"unsigned": convert(qann, signed=False), "signed": convert(qann)}, loader_of(images)
    )
    assert errors.layers == ["1", "3", "5"] and errors.samples == 64
    assert errors.accumulating["unsigned"][0] == 0.0 and errors.accumulating["signed"][0] == 0.0


@pytest.mark.parametrize("name, seed, size", [("vgg11", 0, 16), ("vgg16", 1, 32), ("resnet20", 2, 16)])
def test_unsigned_error_grows_with_depth_and_signed_neurons_reduce_it(name, seed, size):
    qann = random_qann(name, seed, size=size)
    images = torch.randn(48, 1, size, size)
    errors = conversion_errors(
        qann, {"unsigned": convert(qann, signed=False), "signed": convert(qann)}, loader_of(images)
    )
    unsigned, signed = errors.accumulating["unsigned"], errors.accumulating["signed"]
    assert unsigned[0] < 1e-4
    half = len(unsigned) // 2
    assert sum(unsigned[half:]) / (len(unsigned) - half) > sum(unsigned[:half]) / half
    assert sum(signed) < sum(unsigned)


def test_quantization_error_of_the_first_layer_is_the_quantizer_residual():
    """Float ANN and QANN share the first layer's input, so the error is mean |relu(x) − q(x)| / α."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 40), nn.ReLU(), nn.Linear(40, 3)).eval()
    qann = quantize(model, 3, alpha=1.25).eval()
    images = torch.randn(100, 5)
    errors = conversion_errors(qann, {"signed": convert(qann)}, loader_of(images), float_model=model)
    with torch.no_grad():
        pre = model[0](images)
        expected = ((pre.relu() - qann[1](pre)).abs() / 1.25).mean().item()
    assert errors.quantization[0] == pytest.approx(expected, rel=1e-6)


def test_report_round_trips_through_json_and_renders_as_a_table():
    errors = ConversionErrors(
        layers=["a", "b"],
        samples=10,
        quantization=[0.1, 0.2],
        accumulating={"signed": [0.0, 0.05]},
        output={"signed": 0.3},
    )
    assert ConversionErrors(**json.loads(json.dumps(errors.as_dict()))) == errors
    table = format_conversion_errors(errors)
    assert "0.0500" in table and "quantization" in table and "output MSE" in table


def test_refuses_variants_from_different_networks_and_models_without_the_layers():
    generator = torch.Generator().manual_seed(0)
    first, second = random_dyadic_network(generator, 2, depth=2), random_dyadic_network(generator, 2, depth=3)
    images = loader_of(dyadic((8, 1, 6, 6), generator, low=0, high=17, denominator=16))
    with pytest.raises(FastSNNError, match="other spiking layers"):
        conversion_errors(first, {"a": convert(first), "b": convert(second)}, images)
    with pytest.raises(FastSNNError, match="has a Linear at '5'"):
        conversion_errors(first, {"a": convert(second)}, images)
    with pytest.raises(FastSNNError, match="no module at '5'"):
        conversion_errors(second, {"a": convert(second)}, images, float_model=first[:5])
    with pytest.raises(FastSNNError, match="at least one"):
        conversion_errors(first, {}, images)


@pytest.mark.parametrize("seed", [1, 2])
def test_agreement_given_a_task_is_compare_models_agreement(seed):
    qann = random_qann("resnet20", seed)
    snns = {"unsigned": convert(qann, signed=False), "signed": convert(qann, signed=True)}
    data = loader_of(torch.randn(96, 1, 12, 12), 32)
    errors = conversion_errors(qann, snns, data, task=Classification())
    assert conversion_errors(qann, snns, data).agreement is None
    models = {("QANN", None): qann} | {(name, 3): snn for name, snn in snns.items()}
    rows = compare_models(models, data, progress=False)["rows"]
    assert errors.agreement == {row["model"]: row["agreement"] for row in rows[1:]}
    assert max(errors.agreement.values()) < 1, "cases where the SNNs disagree somewhere"
