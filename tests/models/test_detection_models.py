"""Detection builders: prediction grid and layout, architecture, anchors, ReLU-only, conversion to an SNN."""

import math
import warnings

import pytest
import torch
from torch import fx, nn

import fastsnn
from fastsnn.analysis import recorded_outputs
from fastsnn.errors import OptionError
from fastsnn.models import YOLOv2, create_model, list_models, model_options, model_task
from fastsnn.models.resnet import BasicBlock
from fastsnn.models.yolo import STRIDE, VOC_ANCHORS, tiny_yolov2, yolov2_resnet34
from fastsnn.quant import QuantReLU
from helpers import dyadic

DETECTORS = ["tiny_yolov2", "yolov2_resnet34"]
NONLINEAR_MODULES = (nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.Hardtanh, nn.Softmax, nn.Sigmoid, nn.Tanh, nn.GELU)
MAX_POOLS = (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d)


def small(name, width=0.125, **kwargs):
    torch.manual_seed(0)
    return create_model(name, width=width, **kwargs).eval()


def n_params(model):
    return sum(p.numel() for p in model.parameters())


def relu_paths(model):
    return [path for path, module in model.named_modules() if isinstance(module, nn.ReLU)]


@pytest.mark.parametrize("name", DETECTORS)
@pytest.mark.parametrize(
    "anchors,num_classes,in_channels,height,width",
    [(((1.0, 1.0),), 1, 1, 64, 64), (VOC_ANCHORS, 20, 3, 96, 64), (((2, 3), (4, 5), (0.5, 0.25)), 7, 3, 64, 128)],
)
def test_output_is_a_grid_of_anchor_predictions(name, anchors, num_classes, in_channels, height, width):
    model = small(name, num_classes=num_classes, in_channels=in_channels, anchors=anchors)
    with torch.no_grad():
        out = model(torch.randn(2, in_channels, height, width))
    outputs = len(anchors) * (5 + num_classes)
    assert out.shape == (2, outputs, height // 32, width // 32)
    assert torch.isfinite(out).all()
    predict = model.head.predict
    assert isinstance(predict, nn.Conv2d) and predict.kernel_size == (1, 1) and predict.bias is not None
    assert predict.out_channels == outputs


@pytest.mark.parametrize("name", DETECTORS)
@pytest.mark.parametrize("height,width", [(48, 64), (64, 80), (33, 32)])
def test_sizes_not_multiples_of_32_are_refused_naming_the_size(name, height, width):
    model = small(name, in_channels=1)
    with pytest.raises(ValueError, match=f"multiples of 32, got {height}x{width}"):
        model(torch.randn(1, 1, height, width))


def test_tiny_yolov2_strides_channels_and_parameters():
    model = create_model("tiny_yolov2", num_classes=20, in_channels=3, width=1.0)
    assert isinstance(model, YOLOv2) and model.stride == STRIDE == 32
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    *body, predict = convs
    assert predict is model.head.predict
    assert [c.stride[0] for c in body] == [2, 2, 2, 2, 2, 1, 1, 1]
    assert all(c.kernel_size == (3, 3) and c.padding == (1, 1) and c.bias is None for c in body)
    channels = [3] + [c.out_channels for c in body]
    assert channels == [3, 16, 32, 64, 128, 256, 512, 1024, 1024]
    assert sum(1 for c in model.backbone.modules() if isinstance(c, nn.Conv2d)) == 7
    # conv weights + BN affine per layer, then the 1x1 prediction conv with bias to 5 x (5 + 20)
    expected = sum(9 * cin * cout + 2 * cout for cin, cout in zip(channels[:-1], channels[1:], strict=True))
    assert n_params(model) == expected + 1024 * 125 + 125 == 15_861_773


def test_yolov2_resnet34_backbone_head_and_passthrough():
    model = small("yolov2_resnet34", width=0.25, num_classes=3, anchors=((1, 2), (3, 4)))
    backbone, head = model.backbone, model.head
    assert [len(stage) for stage in backbone.stages] == [3, 4, 6, 3]
    assert all(isinstance(block, BasicBlock) for stage in backbone.stages for block in stage)
    assert [stage[-1].conv2.out_channels for stage in backbone.stages] == [16, 32, 64, 128]
    assert [stage[0].conv1.stride[0] for stage in backbone.stages] == [1, 2, 2, 2]
    stem = [m for m in backbone.stem.modules() if isinstance(m, nn.Conv2d)]
    assert [(c.kernel_size[0], c.stride[0]) for c in stem] == [(7, 2), (3, 2)]
    convs = [block[0] for block in head.convs]
    assert [(c.in_channels, c.out_channels, c.kernel_size[0]) for c in convs] == [(128, 256, 1), (256, 256, 3)] + [
        (256, 256, 3)
    ]
    passthrough = head.passthrough
    assert (passthrough[0][0].in_channels, passthrough[0][0].out_channels, passthrough[0][0].kernel_size) == (
        64,
        32,
        (1, 1),
    )
    assert isinstance(passthrough[1], nn.PixelUnshuffle) and passthrough[1].downscale_factor == 2
    fuse = head.fuse[0]
    assert (fuse.in_channels, fuse.out_channels, fuse.kernel_size) == (4 * 32 + 256, 256, (3, 3))
    assert head.predict.in_channels == 256 and head.predict.out_channels == 2 * 8

    seen = {}
    hooks = [
        head.passthrough.register_forward_hook(lambda _m, inputs, _out: seen.update(fine=inputs[0])),
        head.fuse.register_forward_hook(lambda _m, inputs, _out: seen.update(fused=inputs[0])),
        backbone.stages[2].register_forward_hook(lambda _m, _inputs, out: seen.update(stage3=out)),
    ]
    x = torch.randn(2, 3, 64, 96)
    with torch.no_grad():
        model(x)
        fine, coarse = backbone(x)
        expected = torch.cat([head.passthrough(fine), head.convs(coarse)], dim=1)
    for hook in hooks:
        hook.remove()
    assert fine.shape == (2, 64, 4, 6) and coarse.shape == (2, 128, 2, 3)
    assert seen["fine"] is seen["stage3"], "the passthrough taps the 256-channel (x width) stage at stride 16"
    assert seen["fused"].shape == (2, 4 * 32 + 256, 2, 3)
    torch.testing.assert_close(seen["fused"], expected, rtol=0, atol=0)
    # space-to-depth: channel 4c + 2i + j at (y, x) is the passthrough's channel c at (2y + i, 2x + j)
    reduced = head.passthrough[0](fine)
    assert torch.equal(seen["fused"][:, 4 * 5 + 2 * 1 + 0, 1, 2], reduced[:, 5, 2 * 1 + 1, 2 * 2 + 0])


@pytest.mark.parametrize("name", DETECTORS)
def test_every_nonlinearity_is_a_relu_module_called_once_and_the_readout_is_linear(name):
    model = small(name)
    modules = dict(model.named_modules())
    assert not any(isinstance(m, (*MAX_POOLS, *NONLINEAR_MODULES)) for m in modules.values())
    relus = relu_paths(model)
    assert relus and not any(modules[path].inplace for path in relus)
    traced = fx.symbolic_trace(model)
    nodes = list(traced.graph.nodes)
    relu_calls = [n.target for n in nodes if n.op == "call_module" and n.target in relus]
    assert sorted(relu_calls) == sorted(relus)
    assert not any(n.op == "call_method" for n in nodes), [n.target for n in nodes if n.op == "call_method"]
    last_relu = max(i for i, n in enumerate(nodes) if n.op == "call_module" and n.target in relus)
    assert [n.target for n in nodes[last_relu + 1 : -1]] == ["head.predict"]
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(traced(x), model(x), rtol=0, atol=0)
    with pytest.raises(ValueError, match="40x64"):
        traced(torch.randn(1, 3, 40, 64))


@pytest.mark.parametrize("name", DETECTORS)
def test_quantizes_and_converts_with_an_exact_first_spiking_layer(name):
    model = small(name, num_classes=4, in_channels=1, anchors=((1, 1), (2, 2)))
    # dyadic first conv and identity BN: the first layer's current is exact, and with alpha = 1.5 the levels
    # alpha/L * k = k/2 and the rates theta * n / T = 1.5 n / 3 are exact too, so equality is bitwise, ties included
    first_conv, first_bn = model.backbone[0][:2] if name == "tiny_yolov2" else model.backbone.stem[0][:2]
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        first_conv.weight.copy_(dyadic(first_conv.weight.shape, generator, low=-4, high=5, denominator=8))
    first_bn.eps = 0.0
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message="could not trace")  # quantize must see inside forward()
        qann = fastsnn.quantize(model, bits=2, alpha=1.5)
    relus = relu_paths(model)
    assert sum(isinstance(m, QuantReLU) for m in qann.modules()) == len(relus)
    assert not any(isinstance(m, nn.ReLU) for m in qann.modules())
    snn = fastsnn.convert(qann, T=3, signed=True)
    assert isinstance(snn, fastsnn.SpikingNetwork) and snn.T == 3 and len(snn.neurons()) == len(relus)
    assert snn.body.anchors == ((1.0, 1.0), (2.0, 2.0)) and snn.body.stride == 32

    x = dyadic((2, 1, 64, 96), generator, low=-16, high=17, denominator=16)
    path, neuron = snn.neurons()[0]
    with torch.no_grad(), recorded_outputs({path: neuron}) as rates:
        snn_out = snn(x)
    with torch.no_grad(), recorded_outputs({path: qann.get_submodule(path)}) as acts:
        qann_out = qann(x)
    assert snn_out.shape == qann_out.shape == (2, 2 * (5 + 4), 2, 3)
    assert torch.isfinite(snn_out).all()
    first = acts[path]
    assert first.unique().numel() == 4, "the first layer should use all 2-bit levels"
    with torch.no_grad():
        position = first_bn(first_conv(x)) * 3 / 1.5
    assert (torch.frac(position) == 0.5).any(), "the draw must reach rounding ties"
    assert torch.equal(rates[path], first)


def integer_network(model, generator, alphas):
    """``model`` quantized to 2 bits with α = ``alphas`` (by ReLU path), integer weights and biases, identity BN.

    Every pre-activation is then an integer z. A QuantReLU with α = 1 gives 0 (z ≤ 0) or 1 (z ≥ 1): its
    neuron fires at every step or never, so the next layer's current is constant over time. One with
    α = 3 = L gives clip(z, 0, 3), its spikes varying over time.
    """
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.Conv2d):
                module.weight.copy_(torch.randint(-1, 2, module.weight.shape, generator=generator))
                if module.bias is not None:
                    module.bias.copy_(torch.randint(-2, 3, module.bias.shape, generator=generator))
            elif isinstance(module, nn.BatchNorm2d):
                module.eps = 0.0
                module.bias.copy_(torch.randint(-1, 1, module.bias.shape, generator=generator))
    return fastsnn.quantize(model, bits=2, alpha=alphas)


@pytest.mark.parametrize("name", DETECTORS)
def test_whole_snn_equals_the_qann_when_every_neuron_current_is_constant_over_time(name):
    paths = relu_paths(small(name))
    *hidden, last = paths
    x = torch.randint(-1, 2, (3, 3, 64, 64), generator=torch.Generator().manual_seed(2)).float()

    def snn_and_qann(alphas):
        qann = integer_network(small(name, num_classes=2, anchors=((1, 1),)), torch.Generator().manual_seed(1), alphas)
        with torch.no_grad(), recorded_outputs({path: qann.get_submodule(path) for path in paths}) as acts:
            qann_out = qann(x)
            snn_out = fastsnn.convert(qann, T=3, signed=True)(x)
        return snn_out, qann_out, acts

    # every hidden neuron all-or-none, the last one graded: each neuron's current is constant over time, where
    # a neuron is exact, so the SNN equals the QANN; bitwise, as all values are small integers (far below 2^24)
    # and the readout averages T equal integers
    snn_out, qann_out, acts = snn_and_qann(dict.fromkeys(hidden, 1.0) | {last: 3.0})
    assert all(set(acts[path].unique().tolist()) == {0.0, 1.0} for path in hidden), "hidden layers all-or-none"
    assert acts[last].unique().tolist() == [0, 1, 2, 3], "the last spiking layer should use every level"
    assert not torch.equal(qann_out[0], qann_out[1]), "distinct images, so mixing the batch would show"
    assert torch.equal(snn_out, qann_out)

    # a graded first layer makes the currents downstream vary over time: no exactness claimed, and here none holds
    snn_out, qann_out, _ = snn_and_qann(dict.fromkeys(paths, 1.0) | {paths[0]: 3.0})
    assert not torch.equal(snn_out, qann_out)


def test_passthrough_concatenation_runs_on_time_folded_batches_in_the_snn():
    model = small("yolov2_resnet34", num_classes=2, anchors=((1, 1),))
    snn = fastsnn.convert(fastsnn.quantize(model, bits=2), T=3, signed=True)
    seen = {}
    hook = snn.body.head.fuse.register_forward_hook(lambda _m, inputs, _out: seen.update(fused=inputs[0]))
    with torch.no_grad():
        out = snn(torch.randn(2, 3, 64, 96))
    hook.remove()
    assert out.shape == (2, 7, 2, 3)
    assert seen["fused"].shape == (3 * 2, 4 * 16 + 128, 2, 3)


@pytest.mark.parametrize("name", DETECTORS)
@pytest.mark.parametrize(
    "anchors",
    [
        (),
        [],
        ((1, 2),) * 17,
        ((0, 1),),
        ((1, -2),),
        ((math.inf, 1),),
        ((1, math.nan),),
        ((1,),),
        ((1, 2, 3),),
        (("1", 2),),
        ((True, 1),),
        "12",
        ("12",),
        None,
        5,
        {(1, 2): 1},
    ],
)
def test_bad_anchors_are_rejected_naming_the_option(name, anchors):
    with pytest.raises(OptionError, match="anchors"):
        create_model(name, anchors=anchors)


@pytest.mark.parametrize("name", DETECTORS)
def test_anchors_are_kept_as_read_only_float_pairs_outside_the_state_dict(name):
    model = small(name, anchors=[[1, 2], [3.5, 4]])  # as a JSON round trip of the spec gives them
    assert model.anchors == ((1.0, 2.0), (3.5, 4.0)) and all(isinstance(v, float) for v in model.anchors[0])
    with pytest.raises(AttributeError):
        model.anchors = ((1.0, 1.0),)
    assert not any("anchor" in key for key in model.state_dict())
    assert model.head.predict.out_channels == 2 * (5 + 10)
    assert "anchors=((1.0, 2.0), (3.5, 4.0))" in repr(model)


def test_registered_for_detection_with_voc_defaults_and_checked_options():
    assert set(DETECTORS) <= set(list_models())
    assert [model_task(name) for name in DETECTORS] == ["detection", "detection"]
    for builder in (tiny_yolov2, yolov2_resnet34):
        model = builder(width=0.125)
        assert model.anchors == VOC_ANCHORS and len(VOC_ANCHORS) == 5
        assert model.head.predict.out_channels == 5 * (5 + 20)
    for name in DETECTORS:
        assert model_options(name) == {"width", "anchors"}
        with pytest.raises(OptionError, match="stem"):
            create_model(name, stem="cifar")
        with pytest.raises(OptionError, match="width"):
            create_model(name, width=0)
        with pytest.raises(OptionError, match="num_classes"):
            create_model(name, num_classes=0)
        with pytest.raises(OptionError, match="in_channels"):
            create_model(name, in_channels=1.5)
        with pytest.raises(OptionError, match="num_classes 20000 with 16 anchors"):
            create_model(name, num_classes=20_000, anchors=((1, 1),) * 16)


@pytest.mark.parametrize("name", DETECTORS)
def test_smaller_width_means_fewer_parameters(name):
    narrow, wide = (n_params(create_model(name, in_channels=1, width=width)) for width in (0.125, 0.25))
    assert narrow < wide
