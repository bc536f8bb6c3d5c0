"""Segmentation builders: per-pixel shapes, output strides, dilations, ASPP, ReLU-only, conversion to an SNN."""

import operator
import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import fx, nn

import fastsnn
from fastsnn.analysis import recorded_outputs
from fastsnn.errors import OptionError
from fastsnn.models import DeepLabV3, DeepLabVGG, create_model, list_models
from fastsnn.models.deeplab import deeplab_vgg9, deeplabv3_resnet34
from fastsnn.models.registry import model_task
from fastsnn.models.resnet import BasicBlock
from fastsnn.quant import QuantReLU

SEGMENTERS = ["deeplab_vgg9", "deeplabv3_resnet34"]
OUTPUT_STRIDE = {"deeplab_vgg9": 8, "deeplabv3_resnet34": 16}
NONLINEAR_MODULES = (nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.Hardtanh, nn.Softmax, nn.Sigmoid, nn.Tanh, nn.GELU)
MAX_POOLS = (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d)
# Functions allowed after the last ReLU: reading x.shape for the target size, and the bilinear upsampling.
READOUT_FUNCTIONS = {getattr, operator.getitem, F.interpolate}


def small(name, width=0.125, **kwargs):
    torch.manual_seed(0)
    return create_model(name, width=width, **kwargs).eval()


def n_params(model):
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("name", SEGMENTERS)
@pytest.mark.parametrize("in_channels,size,width", [(1, 64, 0.125), (3, 96, 0.25)])
def test_output_is_per_pixel_logits_at_the_input_size(name, in_channels, size, width):
    model = small(name, width=width, num_classes=5, in_channels=in_channels)
    with torch.no_grad():
        out = model(torch.randn(2, in_channels, size, size))
    assert out.shape == (2, 5, size, size)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("name", SEGMENTERS)
def test_sizes_not_divisible_by_16_are_upsampled_back(name):
    model = small(name, num_classes=3, in_channels=1)
    with torch.no_grad():
        out = model(torch.randn(1, 1, 50, 70))
    assert out.shape == (1, 3, 50, 70)


@pytest.mark.parametrize("name", SEGMENTERS)
def test_classifier_sees_features_at_the_output_stride(name):
    model = small(name, num_classes=6, in_channels=1)
    seen = []
    handle = model.classifier.register_forward_hook(lambda _m, inputs, _out: seen.append(inputs[0].shape))
    with torch.no_grad():
        model(torch.randn(1, 1, 64, 96))
    handle.remove()
    stride = OUTPUT_STRIDE[name]
    assert len(seen) == 1 and seen[0][-2:] == (64 // stride, 96 // stride)
    classifier = model.classifier
    assert isinstance(classifier, nn.Conv2d) and classifier.kernel_size == (1, 1) and classifier.bias is not None
    assert classifier.out_channels == 6


def test_vgg9_strides_dilations_and_channels():
    model = create_model("deeplab_vgg9", num_classes=11, in_channels=1, width=1.0)
    assert isinstance(model, DeepLabVGG)
    convs = [m for m in model.features.modules() if isinstance(m, nn.Conv2d)]
    assert [(c.stride[0], c.dilation[0], c.padding[0]) for c in convs] == [
        (1, 1, 1),
        (2, 1, 1),
        (1, 1, 1),
        (2, 1, 1),
        (2, 1, 1),
        (1, 2, 2),
        (1, 2, 2),
        (1, 12, 12),
    ]
    assert sum(c.dilation == (2, 2) for c in convs) == 2 and sum(c.dilation == (12, 12) for c in convs) == 1
    assert all(c.kernel_size == (3, 3) and c.bias is None for c in convs)
    channels = [1] + [c.out_channels for c in convs]
    assert channels == [1, 64, 64, 128, 128, 256, 256, 256, 1024]
    # Conv weights + BN affine per layer, then the 1x1 classifier with bias.
    expected = (
        sum(9 * cin * cout + 2 * cout for cin, cout in zip(channels[:-1], channels[1:], strict=True)) + 1024 * 11 + 11
    )
    assert n_params(model) == expected


def test_resnet34_backbone_stages_and_stem():
    model = small("deeplabv3_resnet34", width=0.25)
    assert isinstance(model, DeepLabV3)
    assert [len(stage) for stage in model.stages] == [3, 4, 6, 3]
    assert all(isinstance(block, BasicBlock) for stage in model.stages for block in stage)
    assert [stage[-1].conv2.out_channels for stage in model.stages] == [16, 32, 64, 128]
    assert [stage[0].conv1.stride[0] for stage in model.stages] == [1, 2, 2, 1]
    dilations = [[(b.conv1.dilation[0], b.conv2.dilation[0]) for b in stage] for stage in model.stages]
    assert dilations == [[(1, 1)] * 3, [(1, 1)] * 4, [(1, 1)] * 6, [(2, 2)] * 3]
    stem_convs = [m for m in model.stem.modules() if isinstance(m, nn.Conv2d)]
    assert [c.stride[0] for c in stem_convs] == [2, 2]
    assert not any(isinstance(m, (nn.AvgPool2d, *MAX_POOLS)) for m in model.stem.modules())


@pytest.mark.parametrize("width,channels", [(0.25, 64), (1.0, 256)])
def test_aspp_has_five_branches_and_projects_their_concatenation(width, channels):
    model = create_model("deeplabv3_resnet34", num_classes=4, width=width)
    branches = model.aspp.branches
    assert len(branches) == 5
    firsts = [branch[0] for branch in branches]
    assert all([type(m) for m in branch] == [nn.Conv2d, nn.BatchNorm2d, nn.ReLU] for branch in branches)
    assert sorted(c.dilation[0] for c in firsts) == [1, 6, 12, 18, 24]
    for conv in firsts:
        assert conv.kernel_size == ((1, 1) if conv.dilation == (1, 1) else (3, 3))
        assert conv.padding[0] == (0 if conv.kernel_size == (1, 1) else conv.dilation[0])
        assert conv.in_channels == model.stages[-1][-1].conv2.out_channels and conv.out_channels == channels
    project = model.aspp.project[0]
    assert (project.in_channels, project.out_channels, project.kernel_size) == (5 * channels, channels, (1, 1))
    head = model.head[0]
    assert (head.in_channels, head.out_channels, head.kernel_size) == (channels, channels, (3, 3))
    assert model.classifier.in_channels == channels


def test_aspp_concatenates_branches_along_channels_in_order():
    model = small("deeplabv3_resnet34", width=0.25)
    seen = []
    handle = model.aspp.project.register_forward_hook(lambda _m, inputs, _out: seen.append(inputs[0]))
    with torch.no_grad():
        features = model.stages(model.stem(torch.randn(1, 3, 64, 64)))
        model.aspp(features)
        expected = torch.cat([branch(features) for branch in model.aspp.branches], dim=1)
    handle.remove()
    assert features.shape == (1, 128, 4, 4)
    assert len(seen) == 1 and seen[0].shape == (1, 5 * 64, 4, 4)
    torch.testing.assert_close(seen[0], expected)


@pytest.mark.parametrize("name", SEGMENTERS)
def test_every_nonlinearity_is_a_relu_module_called_once_and_the_readout_is_linear(name):
    model = small(name)
    modules = dict(model.named_modules())
    assert not any(isinstance(m, (*MAX_POOLS, *NONLINEAR_MODULES)) for m in modules.values())
    relu_names = {n for n, m in modules.items() if isinstance(m, nn.ReLU)}
    assert relu_names and not any(modules[n].inplace for n in relu_names)
    traced = fx.symbolic_trace(model)
    nodes = list(traced.graph.nodes)
    relu_calls = [n.target for n in nodes if n.op == "call_module" and n.target in relu_names]
    assert sorted(relu_calls) == sorted(relu_names)
    assert not any(n.op == "call_method" for n in nodes), [n.target for n in nodes if n.op == "call_method"]
    last_relu = max(i for i, n in enumerate(nodes) if n.op == "call_module" and n.target in relu_names)
    readout = nodes[last_relu + 1 : -1]
    assert [n.target for n in readout if n.op == "call_module"] == ["classifier"]
    assert {n.target for n in readout if n.op == "call_function"} <= READOUT_FUNCTIONS
    assert any(n.target is F.interpolate for n in readout)
    x = torch.randn(1, 3, 48, 48)
    with torch.no_grad():
        torch.testing.assert_close(traced(x), model(x))


@pytest.mark.parametrize("name", SEGMENTERS)
def test_quantizes_and_converts_with_an_exact_first_spiking_layer(name):
    model = small(name, num_classes=4, in_channels=1)
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message="could not trace")  # quantize must see inside forward()
        qann = fastsnn.quantize(model, 2)
    n_relus = sum(isinstance(m, nn.ReLU) for m in model.modules())
    assert sum(isinstance(m, QuantReLU) for m in qann.modules()) == n_relus
    assert not any(isinstance(m, nn.ReLU) for m in qann.modules())
    snn = fastsnn.convert(qann)
    assert isinstance(snn, fastsnn.SpikingNetwork) and snn.T == 3
    assert len(snn.neurons()) == n_relus

    torch.manual_seed(1)
    x = 3 * torch.randn(2, 1, 64, 64)  # large enough to reach every quantization level
    path, neuron = snn.neurons()[0]
    with torch.no_grad(), recorded_outputs({path: neuron}) as rates:
        snn_out = snn(x)
    with torch.no_grad(), recorded_outputs({path: qann.get_submodule(path)}) as acts:
        qann_out = qann(x)
    assert snn_out.shape == qann_out.shape == (2, 4, 64, 64)
    assert torch.isfinite(snn_out).all()
    first = acts[path]
    assert first.unique().numel() == 4, "the first layer should use all 2-bit levels"
    torch.testing.assert_close(rates[path], first, atol=1e-5, rtol=0)


def test_registered_with_segmentation_defaults_and_checked_options():
    assert {"deeplab_vgg9", "deeplabv3_resnet34"} <= set(list_models())
    assert [model_task(name) for name in SEGMENTERS] == ["segmentation", "segmentation"]
    assert model_task("resnet34") == "classification"
    assert deeplab_vgg9(width=0.125).classifier.out_channels == 21
    assert deeplabv3_resnet34(width=0.125).classifier.out_channels == 21
    for name in SEGMENTERS:
        with pytest.raises(OptionError, match="stem"):
            create_model(name, stem="cifar")
        with pytest.raises(OptionError, match="width"):
            create_model(name, width=0)
        with pytest.raises(OptionError, match="num_classes"):
            create_model(name, num_classes=0)
        with pytest.raises(OptionError, match="in_channels"):
            create_model(name, in_channels=1.5)


@pytest.mark.parametrize("name", SEGMENTERS)
def test_smaller_width_means_fewer_parameters(name):
    narrow, wide = (n_params(create_model(name, in_channels=1, width=width)) for width in (0.125, 0.25))
    assert narrow < wide


def test_basic_block_dilation_keeps_size_names_and_default():
    plain, dilated = BasicBlock(8, 8), BasicBlock(8, 16, dilation=2)
    assert plain.conv1.dilation == plain.conv2.dilation == (1, 1) and plain.conv1.padding == (1, 1)
    assert dilated.conv1.dilation == dilated.conv2.dilation == (2, 2) and dilated.conv2.padding == (2, 2)
    assert [k for k in plain.state_dict() if "shortcut" not in k] == [
        k for k in dilated.state_dict() if "shortcut" not in k
    ]
    assert dilated(torch.randn(1, 8, 10, 10)).shape == (1, 16, 10, 10)
