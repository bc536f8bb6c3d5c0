"""Shared pieces for the model builders: option checks, channel scaling, conv-BN-ReLU."""

from __future__ import annotations

import math
import numbers
from typing import Literal, get_args

from torch import nn

from fastsnn.errors import OptionError

Stem = Literal["cifar", "imagenet"]
STEMS: tuple[str, ...] = get_args(Stem)
MIN_CHANNELS = 4
# Upper bounds that keep a typo (or a hostile checkpoint) from asking for a model of many gigabytes.
MAX_WIDTH = 8.0
MAX_CLASSES = 100_000
MAX_IN_CHANNELS = 1024


def check_stem(stem: str) -> str:
    """Return ``stem`` if it is one of :data:`STEMS`, else raise naming the option."""
    if stem not in STEMS:
        raise OptionError("stem", f"{stem!r} is not known; accepted: {', '.join(map(repr, STEMS))}")
    return stem


def check_width(width: float) -> float:
    """Return ``width`` as a float if it is a finite number in (0, MAX_WIDTH], else raise naming the option."""
    if (
        isinstance(width, bool)
        or not isinstance(width, numbers.Real)
        or not math.isfinite(width)
        or not 0 < width <= MAX_WIDTH
    ):
        raise OptionError("width", f"must be a finite number in (0, {MAX_WIDTH:g}], got {width!r}")
    return float(width)


def check_count(option: str, value: int, high: int) -> int:
    """Return ``value`` if it is an integer in 1..high, else raise naming ``option``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or not 1 <= value <= high:
        raise OptionError(option, f"must be an integer in 1..{high}, got {value!r}")
    return int(value)


def check_options(num_classes: int, in_channels: int, width: float, stem: str) -> tuple[int, int, float, str]:
    """Validate the four options every builder shares."""
    return (
        check_count("num_classes", num_classes, MAX_CLASSES),
        check_count("in_channels", in_channels, MAX_IN_CHANNELS),
        check_width(width),
        check_stem(stem),
    )


def scale(channels: int, width: float) -> int:
    """``channels * width`` rounded half up, at least :data:`MIN_CHANNELS`."""
    return max(MIN_CHANNELS, int(math.floor(channels * width + 0.5)))


def conv_bn_relu(
    in_channels: int,
    out_channels: int,
    kernel_size: int = 3,
    stride: int = 1,
    padding: int | None = None,
    dilation: int = 1,
) -> nn.Sequential:
    """Conv2d (no bias) -> BatchNorm2d -> its own ReLU: ``[B, in, H, W] -> [B, out, H', W']``.

    ``padding`` defaults to ``dilation * (kernel_size // 2)``, which keeps the size at stride 1.
    """
    if padding is None:
        padding = dilation * (kernel_size // 2)
    return nn.Sequential(
        nn.Conv2d(
            in_channels, out_channels, kernel_size, stride=stride, padding=padding, dilation=dilation, bias=False
        ),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(),
    )


def init_weights(model: nn.Module) -> None:
    """Kaiming-normal convolutions and unit/zero BatchNorm; linear layers keep PyTorch's default."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
