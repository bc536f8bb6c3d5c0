"""Classifiers by name from torchvision and timm: ``"torchvision:<name>"``, ``"timm:<name>"``, adapted to fastsnn.

    model = create_model("torchvision:vgg11_bn", num_classes=10, in_channels=1, width=0.25, stem="cifar")

Models are built without pretrained weights (torchvision ``weights=None``, timm ``pretrained=False``; timm is
the optional extra ``pip install fastsnn[timm]``); ``fastsnn train --init`` starts from weights of your own.
torchvision offers its classification builders (``torchvision.models.list_models(module=torchvision.models)``),
timm any model of ``timm.list_models()``. The options:

- ``in_channels``: the first convolution takes this many channels (timm: ``in_chans``; torchvision: the first
  ``nn.Conv2d`` is replaced by one of the same geometry with ``in_channels`` inputs).
- ``stem="imagenet"``: the model as shipped. ``stem="cifar"`` (for 28-32 px images): a first convolution with
  kernel > 3 or stride > 1 becomes 3x3, stride 1, padding 1, and every ``nn.MaxPool2d`` takes
  ``ceil_mode=True``, so that 28 px images survive five poolings (VGG: 28 -> 14 -> 7 -> 4 -> 2 -> 1).
  Max-pools are kept: converting them is fastsnn's work, not the model's.
- ``width``: uniform channel scaling: every conv / BatchNorm / linear channel count C becomes C * width, except
  the first convolution's input (``in_channels``) and the counts that follow from ``num_classes`` or
  ``in_channels`` (the class outputs of the heads). A linear layer after a flatten scales its C*H*W inputs
  alike, which is (C * width)*H*W; a depthwise convolution (groups == its inputs) stays depthwise, other groups
  are kept. A width that makes some count fractional is refused, naming the module; ``width=1`` changes nothing.

Initialisation: at ``width=1`` the model is initialised as its library does; a module replaced here (the first
convolution for ``in_channels`` or the cifar stem; at any other width every conv, BatchNorm and linear layer)
is new, with PyTorch's default initialisation (scaled models are assembled from a ``meta``-device skeleton, so
the full-width model is never allocated).

Refused when built (:class:`~fastsnn.errors.ConversionError`, one line naming the first culprit's path and type):
activations other than ReLU (the non-pooling :data:`fastsnn.graph_checks.UNSUPPORTED_MODULES`; ``nn.ReLU6``, a
clipped ReLU, is allowed as by :func:`fastsnn.quantize`), ``nn.MultiheadAttention`` and every module whose
class name ends with ``Attention`` (timm's). ReLUs called as functions inside ``forward`` show only when the
model is quantized.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable

import torch
from torch import nn

from fastsnn.errors import ConversionError, OptionError
from fastsnn.graph_checks import UNSUPPORTED_MODULES
from fastsnn.models._layers import check_options

__all__ = ["SOURCES", "build_zoo_model", "check_zoo_name", "is_zoo_name"]

SOURCES: tuple[str, ...] = ("torchvision", "timm")  # the prefixes of zoo model names
TIMM_INSTALL = "pip install fastsnn[timm]"

_REFUSED: tuple[type[nn.Module], ...] = (
    tuple(t for t in UNSUPPORTED_MODULES if t.__module__ != nn.modules.pooling.__name__)
) + (nn.MultiheadAttention,)
_LAYERS = (nn.Conv2d, nn.Linear, nn.BatchNorm1d, nn.BatchNorm2d)  # the modules whose channel counts are rebuilt
_COUNTS = {nn.Conv2d: ("in_channels", "out_channels"), nn.Linear: ("in_features", "out_features")}

Constructor = Callable[[int, int], nn.Module]  # (num_classes, in_channels) -> the model as its library builds it


def is_zoo_name(name) -> bool:
    """Whether ``name`` is spelt ``"<source>:<model>"`` for a source of :data:`SOURCES`."""
    return isinstance(name, str) and ":" in name and name.partition(":")[0] in SOURCES


def check_zoo_name(name: str) -> None:
    """Raise :class:`OptionError` (``model``) unless zoo name ``name`` names a model its library builds
    (the closest known name suggested; for timm, how to install it if it is missing)."""
    _constructor(name)


def build_zoo_model(
    name: str, *, num_classes: int = 10, in_channels: int = 3, width: float = 1.0, stem: str = "cifar"
) -> nn.Module:
    """Zoo model ``name`` adapted as the module docstring says: ``[B, in_channels, H, W] -> [B, num_classes]``.

    Raises:
        OptionError: unknown name, timm missing, or a ``width`` that makes a channel count fractional.
        ConversionError: the model has a non-ReLU activation or attention, naming the first such module.
    """
    num_classes, in_channels, width, stem = check_options(num_classes, in_channels, width, stem)
    create = _constructor(name)
    skeleton = _on_meta_if_possible(create, num_classes, in_channels)
    fixed = set()
    if width != 1:
        fixed = _fixed_counts(skeleton, _on_meta_if_possible(create, num_classes + 1, in_channels + 1))
    _refuse_unsupported(name, skeleton)
    if width != 1:
        _check_scalable(name, skeleton)
    model = skeleton if width != 1 else create(num_classes, in_channels)
    first_conv = next((path for path, m in model.named_modules() if isinstance(m, nn.Conv2d)), None)
    for path, module in list(model.named_modules()):
        if isinstance(module, nn.MaxPool2d) and stem == "cifar":
            module.ceil_mode = True
        elif isinstance(module, _LAYERS):
            inputs, cifar = (in_channels, stem == "cifar") if path == first_conv else (None, False)
            settings = _settings(path, module, width, fixed, in_channels=inputs, cifar=cifar)
            if settings != _settings(path, module, 1.0, set()) or any(t.is_meta for t in _own_tensors(module)):
                model.set_submodule(path, _rebuilt(name, path, module, settings, width))
    return model


def _on_meta_if_possible(create: Constructor, num_classes: int, in_channels: int) -> nn.Module:
    """The model built on the ``meta`` device (no memory), or on the CPU where its constructor computes with
    tensors, which meta tensors cannot give values of (RegNet's block widths)."""
    try:
        with torch.device("meta"):
            return create(num_classes, in_channels)
    except (RuntimeError, NotImplementedError):
        return create(num_classes, in_channels)


def _constructor(name: str) -> Constructor:
    """How zoo model ``name`` is built by its library; OptionError naming the option ``model`` if it cannot be."""
    source, _, arch = name.partition(":")
    if source == "torchvision":
        import torchvision

        known = torchvision.models.list_models(module=torchvision.models)
        if arch not in known:
            raise _unknown(name, known, "a torchvision classification model (torchvision.models.list_models())")
        return lambda num_classes, _: torchvision.models.get_model(arch, weights=None, num_classes=num_classes)
    try:
        import timm
    except ImportError:
        raise OptionError("model", f"{name!r} needs timm, which is not installed: {TIMM_INSTALL}") from None
    if not timm.is_model(arch):
        raise _unknown(name, timm.list_models(), "a timm model (timm.list_models())")
    return lambda num_classes, in_channels: timm.create_model(
        arch, pretrained=False, num_classes=num_classes, in_chans=in_channels
    )


def _unknown(name: str, known: list[str], what: str) -> OptionError:
    source, _, arch = name.partition(":")
    close = difflib.get_close_matches(arch, known, n=1)
    hint = f" (did you mean '{source}:{close[0]}'?)" if close else ""
    return OptionError("model", f"{name!r} is not {what}{hint}")


def _refuse_unsupported(name: str, model: nn.Module) -> None:
    """ConversionError naming the first module of ``model`` that is a non-ReLU activation or attention."""
    for path, module in model.named_modules():
        kind = type(module).__name__
        if (isinstance(module, _REFUSED) and not isinstance(module, nn.ReLU6)) or kind.endswith("Attention"):
            raise ConversionError(
                f"model {name} has {path} ({kind}), which a spiking network cannot represent (only ReLU "
                "activations, no attention); choose a ReLU network such as torchvision:resnet18"
            )


def _check_scalable(name: str, model: nn.Module) -> None:
    """OptionError (``width``) naming the first module holding tensors that channel scaling cannot rebuild:
    anything but a plain conv, BatchNorm or linear layer."""
    for path, module in model.named_modules():
        if _own_tensors(module) and type(module) not in _LAYERS:
            raise OptionError(
                "width", f"cannot scale {path} ({type(module).__name__}) of model {name}; use width 1 for this model"
            )


def _fixed_counts(model: nn.Module, probe: nn.Module) -> set[tuple[str, str]]:
    """``(module path, count name)`` of the channel counts of ``model`` that differ in ``probe`` (the same model
    built for one more class and input channel): those that follow from ``num_classes`` or ``in_channels``."""
    probed = dict(probe.named_modules())
    return {
        (path, count)
        for path, module in model.named_modules()
        if isinstance(module, _LAYERS)
        for count in _count_names(module)
        if getattr(module, count) != getattr(probed[path], count)
    }


def _count_names(module: nn.Module) -> tuple[str, ...]:
    return next((names for kind, names in _COUNTS.items() if isinstance(module, kind)), ("num_features",))


def _settings(
    path: str, module: nn.Module, width: float, fixed: set, *, in_channels: int | None = None, cifar: bool = False
) -> dict:
    """The constructor arguments of ``module`` rebuilt at ``width`` (its counts in ``fixed`` kept); for the first
    convolution, with ``in_channels`` inputs and, if ``cifar``, the cifar stem's geometry."""
    settings = {}
    for count in _count_names(module):
        value = getattr(module, count)
        if count == "in_channels" and in_channels is not None:
            settings[count] = in_channels
        else:
            settings[count] = value if (path, count) in fixed else _scaled(path, module, value, width)
    if not isinstance(module, nn.Conv2d):
        return settings
    depthwise = module.groups > 1 and module.groups == module.in_channels
    kernel_size, stride, padding = module.kernel_size, module.stride, module.padding
    if cifar and (max(kernel_size) > 3 or max(stride) > 1):
        kernel_size, stride, padding = (3, 3), (1, 1), (1, 1)
    groups = settings["in_channels"] if depthwise else module.groups
    return settings | {"kernel_size": kernel_size, "stride": stride, "padding": padding, "groups": groups}


def _scaled(path: str, module: nn.Module, count: int, width: float) -> int:
    """``count * width`` if it is a whole number, else OptionError (``width``) naming the module."""
    scaled = round(count * width)
    if scaled < 1 or not math.isclose(scaled, count * width, rel_tol=0, abs_tol=1e-6):
        raise OptionError(
            "width",
            f"{width:g} gives {path} ({type(module).__name__}) {count} * {width:g} = {count * width:g} channels, "
            "not a whole number; choose a width that keeps every channel count whole",
        )
    return scaled


def _own_tensors(module: nn.Module) -> list[torch.Tensor]:
    """The parameters and buffers of ``module`` itself (not of its children)."""
    return [*module.parameters(recurse=False), *module.buffers(recurse=False)]


def _rebuilt(name: str, path: str, module: nn.Module, settings: dict, width: float) -> nn.Module:
    """A new ``type(module)`` with ``settings`` and ``module``'s other arguments, PyTorch's default init."""
    if type(module) not in _LAYERS:  # a library's own subclass (e.g. timm's Conv2dSame): its arguments are unknown
        option, remedy = ("width", "width 1") if width != 1 else ("stem", "stem imagenet")
        raise OptionError(
            option, f"cannot rebuild {path} ({type(module).__name__}) of model {name}, a layer of its library's "
            f"own type; use {remedy} for this model",
        )  # fmt: skip
    if isinstance(module, nn.Conv2d):
        if settings["in_channels"] % settings["groups"] or settings["out_channels"] % settings["groups"]:
            raise OptionError(
                "width", f"{width:g} leaves {path} (Conv2d) channels not divisible by its {settings['groups']} groups"
            )
        return nn.Conv2d(
            **settings, dilation=module.dilation, bias=module.bias is not None, padding_mode=module.padding_mode
        )
    if isinstance(module, nn.Linear):
        return nn.Linear(**settings, bias=module.bias is not None)
    return type(module)(
        **settings,
        eps=module.eps,
        momentum=module.momentum,
        affine=module.affine,
        track_running_stats=module.track_running_stats,
    )
