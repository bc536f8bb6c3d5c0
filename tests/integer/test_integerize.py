"""integerize: the torch IntegerNetwork and the NumPy reference give the same integers at every op; the first
spiking layer is the QANN's quantizer on the integer current; refusals name the culprit."""

import contextlib
import dataclasses
import functools

import numpy as np
import pytest
import torch
from torch import nn

from fastsnn import convert, quantize
from fastsnn.analysis import activity
from fastsnn.convert import convert_rate_norm
from fastsnn.errors import ConversionError, OptionError
from fastsnn.integer import integerize, reference
from fastsnn.integer.activity import integer_activity
from fastsnn.quant import quantize_activation
from helpers import random_qann

NETWORKS = [  # (registry name, image size): VGG (avg pools in ceil mode), ResNet (shortcuts, global pool),
    ("vgg11", 16),  # YOLO (strided convs), YOLO on ResNet (pixel unshuffle, concatenation), DeepLab (dilation,
    ("resnet8", 12),  # bilinear upsampling)
    ("tiny_yolov2", 32),
    ("yolov2_resnet34", 32),
    ("deeplab_vgg9", 16),
]


def integer_pair(name: str, size: int, bits: int, signed: bool, weight_bits: int = 8, seed: int = 0):
    snn = convert(random_qann(name, seed, bits=bits, size=size), signed=signed)
    return snn, integerize(snn, weight_bits, input_shape=(1, size, size), input_bound=6.0)


def simulated_by_reference(net, images: torch.Tensor):
    model = reference.IntegerModel(net.graph, {key: value.numpy() for key, value in net.tensors().items()})
    return reference.simulate(model, images.numpy(), record=True)


def as_list(outputs) -> list:
    return [outputs] if not isinstance(outputs, (tuple, list)) else list(outputs)


@pytest.mark.parametrize("name, size", NETWORKS)
@pytest.mark.parametrize("bits, signed", [(2, True), (3, False), (4, True)])
def test_torch_and_the_numpy_reference_give_identical_integers_at_every_op(name, size, bits, signed):
    snn, net = integer_pair(name, size, bits, signed, seed=bits)
    images = torch.randn(2, 1, size, size) * 2
    outputs, values = net.run(images)
    expected_outputs, expected = simulated_by_reference(net, images)
    kinds = {op["name"]: op["op"] for op in net.graph["ops"]}
    assert "neuron" in kinds.values() and net.T == 2**bits - 1
    for op_name, kind in kinds.items():
        if kind != "output":
            assert np.array_equal(values[op_name].numpy().astype(np.int64), expected[op_name]), op_name
            assert np.array_equal(values[op_name].numpy(), np.round(values[op_name].numpy())), op_name
    for mine, theirs in zip(as_list(outputs), as_list(expected_outputs), strict=True):
        assert mine.dtype == torch.float32 and np.array_equal(mine.numpy(), theirs)
    spikes = np.concatenate([expected[n].ravel() for n, kind in kinds.items() if kind == "neuron"])
    assert set(np.unique(spikes)) <= ({-1, 0, 1} if signed else {0, 1}) and (spikes != 0).any()
    if not signed:
        assert (spikes >= 0).all()


@pytest.mark.parametrize(
    "name, size, signed",
    [  # max-pools in ceil mode; Inception's concatenations; BN on concatenated spikes; depthwise convs, ReLU6
        ("torchvision:resnet18", 16, False),
        ("torchvision:googlenet", 32, True),
        ("torchvision:densenet121", 16, True),
        ("torchvision:mobilenet_v2", 32, True),
    ],
)
def test_torchvision_networks_are_exact_too(name, size, signed):
    _, net = integer_pair(name, size, 2, signed, seed=1)
    images = torch.randn(2, 1, size, size) * 2
    outputs, values = net.run(images)
    expected_outputs, expected = simulated_by_reference(net, images)
    assert np.array_equal(outputs.numpy(), expected_outputs)
    for op in net.graph["ops"]:
        if op["op"] in ("neuron", "max_pool"):
            assert np.array_equal(values[op["name"]].numpy().astype(np.int64), expected[op["name"]]), op["name"]
    assert name != "torchvision:resnet18" or any(op["op"] == "max_pool" for op in net.graph["ops"])


@pytest.mark.parametrize("weight_bits", [4, 16])
def test_every_weight_width_is_exact_in_both_implementations(weight_bits):
    _, net = integer_pair("resnet8", 12, 2, True, weight_bits=weight_bits, seed=weight_bits)
    images = torch.randn(3, 1, 12, 12)
    outputs, _ = net.run(images)
    expected, _ = simulated_by_reference(net, images)
    weights = [t for key, t in net.tensors().items() if key.endswith(".weight")]
    assert all(t.dtype == (torch.int8 if weight_bits <= 8 else torch.int16) for t in weights)
    assert max(int(t.abs().max()) for t in weights) == 2 ** (weight_bits - 1) - 1
    assert np.array_equal(outputs.numpy(), expected)


@pytest.mark.parametrize("name, size", NETWORKS[:3])
@pytest.mark.parametrize("bits", [2, 3])
def test_the_first_spiking_layer_counts_are_the_qanns_quantizer_of_the_integer_current(name, size, bits):
    _, net = integer_pair(name, size, bits, True, seed=10 + bits)
    _, values = net.run(torch.randn(4, 1, size, size) * 2)
    neuron = next(op for op in net.graph["ops"] if op["op"] == "neuron")
    current = values[neuron["inputs"][0]]
    assert current.shape[0] == 1, "the image's current is the same at every step"
    thresholds = net.tensors()[f"{neuron['name']}.threshold"].double()
    counts = values[neuron["name"]].sum(0)  # [B, C, H, W]
    for channel, theta in enumerate(thresholds):
        quantized = quantize_activation(current[0, :, channel].double(), theta, bits)  # the QANN: clip α = Θ
        assert torch.equal(counts[:, channel].double(), torch.round(quantized * net.T / theta))  # its level n
    assert (thresholds % 2 == 0).all() and (thresholds >= 2).all()


@contextlib.contextmanager
def fed_integer_spikes(snn, values: dict, currents: dict):
    """Within the block every neuron of the float ``snn`` emits the integer network's spikes (times its θ), and
    ``currents[path]`` records the float current it was given: the float layers then see the integer inputs."""

    def inject(neuron, inputs, output, path):
        currents[path] = inputs[0].double()
        spikes = values[path].to(output.dtype)
        return spikes.reshape(-1, *spikes.shape[2:]) * neuron.threshold

    hooks = [n.register_forward_hook(functools.partial(inject, path=path)) for path, n in snn.neurons()]
    try:
        yield
    finally:
        for hook in hooks:
            hook.remove()


@pytest.mark.parametrize("name, size", NETWORKS)
def test_folding_is_right_given_the_same_input_spikes_every_current_is_the_float_one(name, size):
    """BN folded, units, shortcut factors, pool divisors, flatten order: fed the integer network's own spikes, the
    float network computes at every neuron the current the integer one holds, up to the rounding of 16-bit weights."""
    snn = convert(random_qann(name, 7, bits=2, size=size))
    net = integerize(snn, 16, input_shape=(1, size, size), input_bound=6.0, input_bits=16)
    images = torch.randn(6, 1, size, size)
    outputs, values = net.run(images)
    currents = {}
    with fed_integer_spikes(snn, values, currents), torch.no_grad():
        floats = snn.simulate(images)
    inputs = {op["name"]: op["inputs"][0] for op in net.graph["ops"] if op["op"] == "neuron"}
    assert currents.keys() == {path for path, _ in snn.neurons()}
    for path, neuron in snn.neurons():
        integer = values[inputs[path]].double()
        theta = neuron.threshold.double()
        unit = theta / net.tensors()[f"{path}.threshold"].double().reshape(-1, *[1] * (integer.dim() - 3))
        assert ((integer * unit - currents[path].reshape(integer.shape)).abs() <= 0.01 * theta).all(), path
    assert torch.allclose(outputs, floats, rtol=0, atol=1e-3 * floats.abs().max())


@pytest.mark.parametrize("name, size", [("yolov2_resnet34", 32), ("vgg11", 16), ("torchvision:resnet18", 16)])
def test_activity_counts_what_activity_counts_on_the_float_network_given_the_same_spikes(name, size):
    """Spikes, SOPs (with pixel unshuffle, concatenation, ceil-mode average pools and max-pools on the way), MACs of
    the analog first layer and the ANN's MACs: row by row the same as fastsnn.analysis.activity."""
    snn = convert(random_qann(name, 5, bits=2, size=size))
    net = integerize(snn, input_shape=(1, size, size))
    images = torch.randn(4, 1, size, size)
    _, values = net.run(images)
    with fed_integer_spikes(snn, values, {}):
        expected = {row.name: row for row in activity(snn, [images]).rows}
    counted = {row.name: row for row in integer_activity(net, [images]).rows}
    assert counted.keys() == expected.keys() and sum(row.sops > 0 for row in counted.values()) >= 5
    for row_name, row in expected.items():
        mine, theirs = dataclasses.asdict(counted[row_name]), dataclasses.asdict(row)
        numbers = [key for key, value in theirs.items() if isinstance(value, (int, float))]
        assert {key: mine[key] for key in numbers} == pytest.approx({key: theirs[key] for key in numbers}, rel=1e-12)
        assert {key: mine[key] for key in theirs if key not in numbers} == {
            key: theirs[key] for key in theirs if key not in numbers
        }, row_name


def test_a_network_whose_membranes_start_elsewhere_is_refused_naming_the_neuron():
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 36, 3)).eval()
    snn = convert_rate_norm(model, [torch.rand(8, 1, 8, 8)], T=7)
    with pytest.raises(ConversionError, match="cannot integerize 1: its initial membrane is 0·θ"):
        integerize(snn, input_shape=(1, 8, 8))


@pytest.mark.parametrize(
    "layer, culprit",
    [
        (nn.Conv2d(4, 4, 3, padding=1, padding_mode="reflect"), "3: padding mode 'reflect'"),
        (nn.AdaptiveAvgPool2d(4), "3: adaptive pooling from \\[6, 6\\] to \\[4, 4\\]"),
    ],
)
def test_a_layer_without_integer_form_is_refused_naming_it(layer, culprit):
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), layer, nn.ReLU(), nn.Flatten()).eval()
    snn = convert(quantize(model, 2))
    with pytest.raises(ConversionError, match=f"cannot integerize {culprit}"):
        integerize(snn, input_shape=(1, 8, 8))


@pytest.mark.parametrize(
    "options, option",
    [({"weight_bits": 1}, "weight_bits"), ({"input_bits": 17}, "input_bits"), ({"input_bound": 0}, "input_bound")],
)
def test_options_out_of_range_are_refused_naming_them(options, option):
    snn = convert(random_qann("resnet8", 0, bits=2, size=12))
    with pytest.raises(OptionError) as error:
        integerize(snn, **{"input_shape": (1, 12, 12), **options})
    assert error.value.option == option


def test_weights_that_do_not_fit_are_clipped_with_a_warning_naming_the_ops():
    snn = convert(random_qann("resnet8", 0, bits=2, size=12))
    with pytest.warns(UserWarning, match=r"weights clipped to ±1 at 2 bits \(stages.0.0.conv1: \d+"):
        net = integerize(snn, 2, input_shape=(1, 12, 12))
    assert max(int(t.abs().max()) for k, t in net.tensors().items() if k.endswith(".weight")) == 1


class _Upsampling(nn.Module):
    """conv-BN-ReLU, a 1x1 classifier, bilinear upsampling by ``factor`` (DeepLab's readout)."""

    def __init__(self, factor: int):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 6, 3, stride=2, padding=1), nn.BatchNorm2d(6), nn.ReLU())
        self.classifier = nn.Conv2d(6, 4, 1)
        self.factor = factor

    def forward(self, x):
        logits = self.classifier(self.features(x))
        return nn.functional.interpolate(logits, scale_factor=self.factor, mode="bilinear", align_corners=False)


@pytest.mark.parametrize("factor", [2, 3, 5])
def test_bilinear_upsampling_by_any_whole_factor_is_exact(factor):
    torch.manual_seed(factor)
    snn = convert(quantize(_Upsampling(factor).eval(), 2))
    net = integerize(snn, 16, input_shape=(1, 8, 8), input_bound=4.0)
    images = torch.randn(3, 1, 8, 8)
    outputs, values = net.run(images)
    expected, _ = simulated_by_reference(net, images)
    assert outputs.shape == (3, 4, 4 * factor, 4 * factor) and np.array_equal(outputs.numpy(), expected)
    with fed_integer_spikes(snn, values, {}), torch.no_grad():
        floats = snn.simulate(images)  # the float readout on the same spikes: the upsampling's scale is folded right
    assert torch.allclose(outputs, floats, rtol=0, atol=1e-3 * float(floats.abs().max()))
