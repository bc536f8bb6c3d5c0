"""Registry behaviour: names, duplicates, and errors that name the culprit."""

import pytest
from torch import nn

import fastsnn.models.registry as registry
from fastsnn.errors import FastSNNError, OptionError
from fastsnn.models import (
    alexnet,
    create_model,
    deeplab,
    list_models,
    register_model,
    resnet,
    vgg,
    yolo,
)

CLASSIFIERS = {"vgg11", "vgg16", "resnet8", "resnet18", "resnet20", "resnet34", "alexnet"}
# Segmentation builders take no ``stem`` option (they have their own fixed stems).
SEGMENTERS = {"deeplab_vgg9", "deeplabv3_resnet34"}
DETECTORS = {"tiny_yolov2", "yolov2_resnet34"}
BUILTIN = CLASSIFIERS | SEGMENTERS | DETECTORS


@pytest.fixture
def scratch_registry(monkeypatch):
    """A copy of the registry that the test may modify freely."""
    monkeypatch.setattr(registry, "_MODELS", dict(registry._MODELS))


def test_list_models_is_the_builtin_builders_sorted_and_each_module_exports_its_own():
    assert list_models() == sorted(BUILTIN)
    for module in (alexnet, deeplab, resnet, vgg, yolo):
        defined = {
            name for name in BUILTIN if getattr(getattr(module, name, None), "__module__", None) == module.__name__
        }
        assert defined and defined <= set(module.__all__), module.__name__


def test_error_class_is_a_fastsnn_error():
    assert issubclass(OptionError, FastSNNError)


def test_register_model_returns_fn_and_makes_it_creatable(scratch_registry):
    def tiny_net(*, num_classes=10, in_channels=3):
        return nn.Linear(in_channels, num_classes)

    assert register_model(tiny_net) is tiny_net
    assert "tiny_net" in list_models()
    model = create_model("tiny_net", num_classes=4, in_channels=2)
    assert (model.in_features, model.out_features) == (2, 4)


def test_duplicate_registration_raises(scratch_registry):
    def vgg11(*, num_classes=10, in_channels=3):
        return nn.Identity()

    with pytest.raises(ValueError, match="vgg11"):
        register_model(vgg11)
    # The original builder is still the one registered.
    assert isinstance(create_model("vgg11", width=0.125), nn.Module)
    assert registry._MODELS["vgg11"] is not vgg11


def test_register_rejects_builder_without_required_keywords(scratch_registry):
    def no_channels(*, num_classes=10):
        return nn.Identity()

    with pytest.raises(TypeError, match="in_channels"):
        register_model(no_channels)
    assert "no_channels" not in list_models()


def test_unknown_name_lists_known_models():
    with pytest.raises(OptionError) as info:
        create_model("resnet999")
    message = str(info.value)
    assert "resnet999" in message
    for name in BUILTIN:
        assert name in message


def test_non_string_name_raises_the_same_error():
    with pytest.raises(OptionError, match="None"):
        create_model(None)


def test_unknown_option_names_option_and_accepted_ones():
    with pytest.raises(OptionError) as info:
        create_model("resnet20", depth=56)
    message = str(info.value)
    assert "depth" in message
    assert "resnet20" in message
    for option in ("num_classes", "in_channels", "width", "stem"):
        assert option in message


@pytest.mark.parametrize("name", sorted(CLASSIFIERS))
def test_bad_stem_names_option_and_values(name):
    with pytest.raises(OptionError) as info:
        create_model(name, stem="tiny")
    message = str(info.value)
    assert "stem" in message and "'tiny'" in message
    assert "cifar" in message and "imagenet" in message


@pytest.mark.parametrize("name", sorted(BUILTIN))
@pytest.mark.parametrize("width", [0, -0.5, float("nan"), "wide"])
def test_bad_width_names_option(name, width):
    with pytest.raises(OptionError, match="width"):
        create_model(name, width=width)


@pytest.mark.parametrize("option,value", [("num_classes", 0), ("in_channels", 0), ("num_classes", 2.5)])
def test_bad_counts_name_option(option, value):
    with pytest.raises(OptionError, match=option):
        create_model("resnet20", **{option: value})
