"""Builders: output shapes, no max-pooling, one call site per ReLU, linear readout."""

import operator

import pytest
import torch
import torch.nn.functional as F
from torch import fx, nn

from fastsnn.models import create_model

NAMES = ["alexnet", "resnet18", "resnet20", "resnet34", "resnet8", "vgg11", "vgg16"]
RESNETS = ["resnet18", "resnet20", "resnet34", "resnet8"]

# Modules and functions allowed after the last ReLU: all linear (the readout).
LINEAR_READOUT_MODULES = (nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.Flatten, nn.Linear, nn.Dropout, nn.Identity)
MAX_OR_RELU_FUNCTIONS = {
    torch.relu,
    torch.relu_,
    F.relu,
    F.relu6,
    F.max_pool1d,
    F.max_pool2d,
    F.max_pool3d,
    F.adaptive_max_pool2d,
    torch.max,
    torch.amax,
    torch.clamp,
    torch.maximum,
}


def small(name, **kwargs):
    torch.manual_seed(0)
    return create_model(name, width=kwargs.pop("width", 0.25), **kwargs).eval()


def n_params(model):
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("name", NAMES)
def test_cifar_stem_shapes_28px_gray_and_32px_rgb(name):
    gray = small(name, num_classes=7, in_channels=1)
    with torch.no_grad():
        out = gray(torch.randn(2, 1, 28, 28))
    assert out.shape == (2, 7)
    assert torch.isfinite(out).all()

    rgb = small(name, num_classes=10, in_channels=3)
    with torch.no_grad():
        out = rgb(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, 10)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("name", ["resnet18", "vgg11", "alexnet"])
def test_imagenet_stem_224px(name):
    model = small(name, num_classes=5, width=0.125, stem="imagenet")
    with torch.no_grad():
        out = model(torch.randn(1, 3, 224, 224))
    assert out.shape == (1, 5)
    assert torch.isfinite(out).all()


def test_resnet_imagenet_stem_is_7x7_stride2_then_avgpool():
    model = small("resnet18", stem="imagenet")
    convs = [m for m in model.stem.modules() if isinstance(m, nn.Conv2d)]
    pools = [m for m in model.stem.modules() if isinstance(m, nn.AvgPool2d)]
    assert convs[0].kernel_size == (7, 7) and convs[0].stride == (2, 2)
    assert len(pools) == 1 and pools[0].stride == 2 and pools[0].kernel_size == 3


def test_resnet18_imagenet_has_the_standard_parameter_count():
    # Same as torchvision's resnet18 (the pools carry no parameters).
    assert n_params(create_model("resnet18", num_classes=1000, stem="imagenet")) == 11_689_512


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("stem", ["cifar", "imagenet"])
def test_no_max_pooling_and_no_inplace_relu(name, stem):
    model = small(name, width=0.125, stem=stem)
    modules = list(model.modules())
    assert not any(isinstance(m, (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AdaptiveMaxPool2d)) for m in modules)
    relus = [m for m in modules if isinstance(m, nn.ReLU)]
    assert relus, "every model has ReLUs"
    assert not any(m.inplace for m in relus)
    # No other nonlinearity module sneaks in.
    assert not any(isinstance(m, (nn.ReLU6, nn.LeakyReLU, nn.Hardtanh, nn.Softmax, nn.Sigmoid)) for m in modules)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("stem", ["cifar", "imagenet"])
def test_each_relu_module_has_exactly_one_call_site(name, stem):
    model = small(name, width=0.125, stem=stem)
    graph = fx.symbolic_trace(model).graph
    relu_names = {n for n, m in model.named_modules() if isinstance(m, nn.ReLU)}
    relu_ids = {id(m) for m in model.modules() if isinstance(m, nn.ReLU)}
    # No ReLU object is registered under two names.
    assert len(relu_ids) == len(relu_names)
    relu_calls = [n.target for n in graph.nodes if n.op == "call_module" and n.target in relu_names]
    assert sorted(relu_calls) == sorted(relu_names)  # each exactly once
    bad = [n for n in graph.nodes if n.op == "call_function" and n.target in MAX_OR_RELU_FUNCTIONS]
    assert bad == []
    assert not any(n.op == "call_method" and n.target in {"relu", "relu_", "clamp", "max"} for n in graph.nodes)


@pytest.mark.parametrize("name", NAMES)
def test_traced_model_matches_model(name):
    model = small(name, in_channels=1)
    traced = fx.symbolic_trace(model)
    x = torch.randn(2, 1, 28, 28)
    with torch.no_grad():
        torch.testing.assert_close(traced(x), model(x))


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("stem", ["cifar", "imagenet"])
def test_readout_after_last_relu_is_linear(name, stem):
    model = small(name, width=0.125, stem=stem)
    modules = dict(model.named_modules())
    nodes = list(fx.symbolic_trace(model).graph.nodes)
    last_relu = max(i for i, n in enumerate(nodes) if n.op == "call_module" and isinstance(modules[n.target], nn.ReLU))
    readout = nodes[last_relu + 1 :]
    assert readout[-1].op == "output"
    for node in readout[:-1]:
        assert node.op == "call_module", f"unexpected {node.op} {node.target} in readout"
        assert isinstance(modules[node.target], LINEAR_READOUT_MODULES), node.target
    assert isinstance(modules[readout[-2].target], nn.Linear), "logits come from a Linear layer"


@pytest.mark.parametrize("name", RESNETS)
def test_resnet_relu_follows_every_residual_addition(name):
    model = small(name, width=0.125)
    modules = dict(model.named_modules())
    graph = fx.symbolic_trace(model).graph
    adds = [n for n in graph.nodes if n.op == "call_function" and n.target in (operator.add, torch.add)]
    expected_blocks = {"resnet18": 8, "resnet20": 9, "resnet34": 16, "resnet8": 3}[name]
    assert len(adds) == expected_blocks
    for add in adds:
        (user,) = add.users
        assert user.op == "call_module" and isinstance(modules[user.target], nn.ReLU)
        assert user.target.endswith("relu_out")


def test_resnet_shortcut_is_identity_or_1x1_conv_bn():
    model = small("resnet20", width=0.25)
    kinds = []
    for block in model.stages.modules():
        if hasattr(block, "shortcut"):
            sc = block.shortcut
            if isinstance(sc, nn.Identity):
                kinds.append("id")
            else:
                conv, bn = sc
                assert isinstance(conv, nn.Conv2d) and conv.kernel_size == (1, 1)
                assert isinstance(bn, nn.BatchNorm2d)
                kinds.append("proj")
    # Only the first block of stages 2 and 3 changes shape.
    assert kinds == ["id"] * 3 + ["proj", "id", "id"] * 2


def test_resnet20_stage_channels_scale_with_width():
    model = small("resnet20", width=0.5)
    widths = [stage[-1].conv2.out_channels for stage in model.stages]
    assert widths == [8, 16, 32]


@pytest.mark.parametrize("name", NAMES)
def test_smaller_width_means_fewer_parameters(name):
    half = n_params(create_model(name, in_channels=1, width=0.5))
    quarter = n_params(create_model(name, in_channels=1, width=0.25))
    assert quarter < half


def test_width_keeps_at_least_four_channels():
    model = create_model("resnet20", width=0.01)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert min(c.out_channels for c in convs) == 4


def test_in_channels_sets_first_conv():
    for name in NAMES:
        first = next(m for m in create_model(name, in_channels=1, width=0.125).modules() if isinstance(m, nn.Conv2d))
        assert first.in_channels == 1


def test_vgg_has_no_pool_that_empties_a_28px_map():
    # ceil-mode pooling: 28 -> 14 -> 7 -> 4 -> 2 -> 1.
    model = small("vgg16", in_channels=1)
    with torch.no_grad():
        feats = model.features(torch.randn(1, 1, 28, 28))
    assert feats.shape[-2:] == (1, 1)


def test_training_step_reduces_loss():
    torch.manual_seed(0)
    model = create_model("resnet20", num_classes=3, in_channels=1, width=0.25).train()
    x, y = torch.randn(8, 1, 28, 28), torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    losses = []
    for _ in range(15):
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] * 0.5
