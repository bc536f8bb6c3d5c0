"""Models by name from torchvision and timm: the options (in_channels, stem, width), refusals, specs, checkpoints."""

import re
import sys

import pytest
import torch
import torchvision
from torch import nn

from fastsnn import QuantReLU, convert, quantize
from fastsnn.analysis import conversion_errors
from fastsnn.errors import ConversionError, DataError, OptionError
from fastsnn.models import create_model, list_models, model_options, model_task
from fastsnn.quant import relu_percentiles
from fastsnn.workflows.checkpoint import load_checkpoint, save_checkpoint
from fastsnn.workflows.model_spec import ModelSpec
from fastsnn.workflows.train import TrainConfig
from helpers import loader_of

# name -> (path of the first conv, path of the classifier), read from the libraries' sources
MODELS = {
    "torchvision:resnet18": ("conv1", "fc"),
    "torchvision:vgg11_bn": ("features.0", "classifier.6"),
    "torchvision:alexnet": ("features.0", "classifier.6"),
    "timm:resnet18": ("conv1", "fc"),
}
LAYERS = (nn.Conv2d, nn.Linear, nn.BatchNorm2d)


def shipped(name: str, num_classes: int) -> nn.Module:
    """The model as its library builds it (3 input channels)."""
    source, _, arch = name.partition(":")
    if source == "timm":
        import timm

        return timm.create_model(arch, pretrained=False, num_classes=num_classes)
    return torchvision.models.get_model(arch, weights=None, num_classes=num_classes)


def counts(module: nn.Module) -> tuple[int, ...]:
    if isinstance(module, nn.Conv2d):
        return module.in_channels, module.out_channels, module.groups
    if isinstance(module, nn.Linear):
        return module.in_features, module.out_features
    return (module.num_features,)


def random_batch_norm_statistics_(model: nn.Module, generator: torch.Generator) -> nn.Module:
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.copy_(torch.rand(module.running_mean.shape, generator=generator) - 0.5)
            module.running_var.copy_(torch.rand(module.running_var.shape, generator=generator) + 0.5)
    return model


@pytest.mark.parametrize("name", MODELS)
def test_quarter_width_cifar_stem_scales_every_count_and_keeps_the_max_pools(name):
    first, head = MODELS[name]
    with torch.device("meta"):
        reference = dict(shipped(name, 7).named_modules())
    model = create_model(name, num_classes=7, in_channels=1, width=0.25, stem="cifar").eval()
    layers = {path: m for path, m in model.named_modules() if isinstance(m, LAYERS)}
    assert layers.keys() == {path for path, m in reference.items() if isinstance(m, LAYERS)}
    for path, module in layers.items():
        original = counts(reference[path])
        expected = tuple(count // 4 if count % 4 == 0 else None for count in original)
        if isinstance(module, nn.Conv2d):
            expected = (*expected[:2], original[2])  # none of these is grouped
        if path == first:
            expected = (1, *expected[1:])
        if path == head:
            expected = (*expected[:-1], 7)
        assert counts(module) == expected, path
        assert type(module) is type(reference[path]), path
    assert (layers[first].kernel_size, layers[first].stride, layers[first].padding) == ((3, 3), (1, 1), (1, 1))
    max_pools = [path for path, m in model.named_modules() if isinstance(m, nn.MaxPool2d)]
    assert max_pools and max_pools == [path for path, m in reference.items() if isinstance(m, nn.MaxPool2d)]
    assert all(model.get_submodule(path).ceil_mode for path in max_pools)
    assert not any(t.is_meta for t in [*model.parameters(), *model.buffers()])
    for size in (28, 32):
        with torch.no_grad():
            output = model(torch.randn(2, 1, size, size))
        assert output.shape == (2, 7) and output.isfinite().all()


@pytest.mark.parametrize("name", MODELS)
def test_width_one_imagenet_stem_is_the_model_as_shipped(name):
    torch.manual_seed(3)
    model = create_model(name, num_classes=10, in_channels=3, width=1.0, stem="imagenet").eval()
    torch.manual_seed(3)
    reference = shipped(name, 10).eval()
    assert str(model) == str(reference)
    state, expected = model.state_dict(), reference.state_dict()
    assert state.keys() == expected.keys() and all(torch.equal(state[k], expected[k]) for k in expected)
    images = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        assert torch.equal(model(images), reference(images))


@pytest.mark.parametrize("name", ["torchvision:resnet18", "torchvision:alexnet"])
def test_in_channels_replace_only_the_first_conv_with_its_geometry(name):
    first, _ = MODELS[name]
    torch.manual_seed(5)
    model = create_model(name, num_classes=10, in_channels=2, width=1.0, stem="imagenet")
    torch.manual_seed(5)
    reference = shipped(name, 10)
    conv, original = model.get_submodule(first), reference.get_submodule(first)
    assert conv.weight.shape == (original.out_channels, 2, *original.kernel_size)
    geometry = ("kernel_size", "stride", "padding", "dilation", "groups", "padding_mode")
    assert all(getattr(conv, key) == getattr(original, key) for key in geometry)
    assert (conv.bias is None) == (original.bias is None)
    state, expected = model.state_dict(), reference.state_dict()
    others = [key for key in expected if not key.startswith(f"{first}.")]
    assert state.keys() == expected.keys() and all(torch.equal(state[k], expected[k]) for k in others)
    assert not any(m.ceil_mode for m in model.modules() if isinstance(m, nn.MaxPool2d)), "imagenet stem: as shipped"


def test_depthwise_convs_stay_depthwise_and_relu6_is_accepted():
    model = create_model("torchvision:mobilenet_v2", num_classes=5, in_channels=1, width=0.5)
    with torch.device("meta"):
        reference = dict(shipped("torchvision:mobilenet_v2", 5).named_modules())
    depthwise = [p for p, m in reference.items() if isinstance(m, nn.Conv2d) and 1 < m.groups == m.in_channels]
    assert depthwise
    for path in depthwise:
        conv = model.get_submodule(path)
        assert conv.groups == conv.in_channels == reference[path].in_channels // 2, path
    assert any(isinstance(m, nn.ReLU6) for m in model.modules())
    with torch.no_grad():
        assert model(torch.randn(3, 1, 28, 28)).shape == (3, 5)


def test_every_class_output_keeps_num_classes():
    model = create_model("torchvision:googlenet", num_classes=7, in_channels=1, width=0.5)
    assert (model.aux1.fc2.out_features, model.aux2.fc2.out_features, model.fc.out_features) == (7, 7, 7)
    assert model.aux1.fc2.in_features == 512 and model.fc.in_features == 512  # 1024 halved


@pytest.mark.parametrize(
    "name, width, culprit",
    [
        ("torchvision:resnet18", 0.3, r"conv1 \(Conv2d\) 64 \* 0.3 = 19.2 channels"),
        ("torchvision:vgg11_bn", 0.1, r"features.0 \(Conv2d\) 64 \* 0.1 = 6.4 channels"),
        ("torchvision:shufflenet_v2_x1_0", 0.25, r"stage2.0.branch1.2 \(Conv2d\) 58 \* 0.25 = 14.5"),
        ("torchvision:resnext50_32x4d", 0.125, r"layer1.0.conv2 \(Conv2d\) .*32 groups"),
    ],
)
def test_a_width_that_leaves_a_fractional_count_is_refused_naming_the_module(name, width, culprit):
    with pytest.raises(OptionError, match=culprit) as error:
        create_model(name, num_classes=10, in_channels=1, width=width)
    assert error.value.option == "width"


@pytest.mark.parametrize(
    "name, options, option, culprit",
    [
        ("timm:resnetv2_18", {"width": 0.5}, "width", "stages.0.blocks.0.norm1 (BatchNormAct2d)"),
        ("timm:resnetv2_50x1_bit", {"width": 0.5}, "width", "stem.conv (StdConv2d)"),
        ("timm:resnetv2_50x1_bit", {"stem": "cifar"}, "stem", "stem.conv (StdConv2d)"),
    ],
)
def test_layers_of_a_library_s_own_type_are_not_rebuilt(name, options, option, culprit):
    with pytest.raises(OptionError, match=re.escape(culprit)) as error:
        create_model(name, num_classes=10, in_channels=3, **({"stem": "imagenet"} | options))
    assert error.value.option == option


@pytest.mark.parametrize(
    "name, culprit",
    [
        ("torchvision:efficientnet_b0", "features.0.2 (SiLU)"),
        ("torchvision:vit_b_16", "encoder.layers.encoder_layer_0.self_attention (MultiheadAttention)"),
        ("timm:vit_tiny_patch16_224", "blocks.0.attn (Attention)"),
    ],
)
def test_non_relu_activations_and_attention_are_refused_naming_the_first(name, culprit):
    for width in (1.0, 0.5):
        with pytest.raises(ConversionError) as error:
            create_model(name, num_classes=10, in_channels=3, width=width)
        message = str(error.value)
        assert f"{name} has {culprit}," in message and "\n" not in message


@pytest.mark.parametrize(
    "name, hint",
    [
        ("torchvision:resnet19", "did you mean 'torchvision:resnet18'"),
        ("torchvision:fasterrcnn_resnet50_fpn", "not a torchvision classification model"),
        ("timm:resnet19", "did you mean 'timm:resnet18'"),
        ("resnet19", "torchvision:<name> or timm:<name>"),
    ],
)
def test_unknown_names_are_refused_with_the_closest_match(name, hint):
    for ask in (model_task, model_options, lambda n: create_model(n), lambda n: TrainConfig(model=n)):
        with pytest.raises(OptionError, match=hint) as error:
            ask(name)
        assert error.value.option == "model"


def test_timm_names_without_timm_say_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "timm", None)  # import timm raises ImportError
    with pytest.raises(OptionError, match=r"pip install fastsnn\[timm\]"):
        create_model("timm:resnet18")
    assert model_task("torchvision:resnet18") == "classification"


def test_registry_answers_for_zoo_names_but_lists_only_its_own():
    assert not any(":" in name for name in list_models())
    for name in MODELS:
        assert model_task(name) == "classification" and model_options(name) == {"width", "stem"}
    with pytest.raises(OptionError, match="depth") as error:
        create_model("torchvision:resnet18", depth=3)
    assert error.value.option == "depth"


def test_train_config_takes_a_zoo_model_with_its_options_and_checks_the_task():
    config = TrainConfig(model="timm:resnet18", dataset="fashion-mnist", width=0.5, stem="imagenet")
    assert config.spec() == ModelSpec("timm:resnet18", 10, 1, {"width": 0.5, "stem": "imagenet"})
    with pytest.raises(DataError, match="segmentation"):
        TrainConfig(model="torchvision:resnet18", dataset="voc-seg")


@pytest.mark.parametrize("name", ["torchvision:resnet18", "timm:resnet18"])
def test_spec_and_checkpoint_rebuild_the_float_model(tmp_path, name):
    spec = ModelSpec(name, num_classes=10, in_channels=1, options={"width": 0.25, "stem": "cifar"})
    model = random_batch_norm_statistics_(spec.build(), torch.Generator().manual_seed(1)).eval()
    checkpoint = load_checkpoint(save_checkpoint(tmp_path / "float.safetensors", model, spec))
    assert checkpoint.spec == spec
    rebuilt = checkpoint.build_model().eval()
    assert str(rebuilt) == str(model) == str(spec.build())
    images = torch.randn(4, 1, 28, 28)
    with torch.no_grad():
        assert torch.equal(rebuilt(images), model(images))


@pytest.mark.parametrize(
    "name",
    ["torchvision:mnasnet0_5", "torchvision:resnet18", "timm:resnet18", "torchvision:vgg11_bn", "torchvision:alexnet"],
)
def test_zoo_models_quantize_and_convert(name):
    """torchvision:mnasnet0_5 has no max-pool; the ResNets have a max-pool after a ReLU, and torchvision's calls
    one ``self.relu`` twice per block, which must become two quantizers; VGG and AlexNet max-pool after ReLUs
    (five and three times). The first spiking layer is exact, unsigned and signed."""
    torch.manual_seed(0)
    model = create_model(name, num_classes=10, in_channels=1, width=0.5, stem="cifar").eval()
    random_batch_norm_statistics_(model, torch.Generator().manual_seed(2))
    images = torch.rand(16, 1, 28, 28, generator=torch.Generator().manual_seed(3))
    relu_calls = []
    hooks = [m.register_forward_hook(lambda *_: relu_calls.append(1)) for m in model.modules() if type(m) is nn.ReLU]
    with torch.no_grad():
        model(images)
    for hook in hooks:
        hook.remove()
    qann = quantize(model, 2, alpha=relu_percentiles(model, [images], 99.0)).eval()
    calls = {}
    for path, module in qann.named_modules():
        assert type(module) is not nn.ReLU, path
        if isinstance(module, QuantReLU):
            module.register_forward_hook(lambda *_, path=path: calls.update({path: calls.get(path, 0) + 1}))
    with torch.no_grad():
        qann(images)
    assert sorted(calls.values()) == [1] * len(relu_calls), "one quantizer per ReLU call site"
    errors = conversion_errors(
        qann, {"unsigned": convert(qann, signed=False), "signed": convert(qann)}, loader_of(images)
    )
    assert errors.accumulating["unsigned"][0] < 1e-4 and errors.accumulating["signed"][0] < 1e-4
    with torch.no_grad():
        assert convert(qann)(images).shape == qann(images).shape == (16, 10)


def test_a_model_whose_constructor_computes_with_tensors_builds_off_the_meta_device():
    """RegNet computes its block widths with tensors, which the meta device cannot give values of."""
    model = create_model("torchvision:regnet_x_400mf", num_classes=10, in_channels=1, width=1.0, stem="cifar").eval()
    with torch.no_grad():
        assert model(torch.randn(2, 1, 32, 32)).shape == (2, 10)
    assert not any(tensor.is_meta for tensor in [*model.parameters(), *model.buffers()])
