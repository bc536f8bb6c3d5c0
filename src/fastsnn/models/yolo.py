"""Object detection without max-pooling: Tiny-YOLOv2 and YOLOv2 on ResNet-34.

Both map ``[B, in_channels, H, W]`` (H and W multiples of :data:`STRIDE` = 32) to raw YOLOv2
predictions on the grid of 32x32-pixel cells, ``[B, A * (5 + C), H/32, W/32]``, with A anchors
(``model.anchors``) and C classes. The channels of anchor ``a`` are ``[a*(5+C) : (a+1)*(5+C)]``:

    ``tx, ty, tw, th, objectness, class_0 ... class_{C-1}``

all raw (no sigmoid, exp or softmax: those are the task's decoding, outside the network). In
YOLOv2's decoding a box in cell ``(i, j)`` has centre ``(j + sigmoid(tx), i + sigmoid(ty))`` and
size ``(pw * exp(tw), ph * exp(th))`` in cells, ``(pw, ph) = model.anchors[a]``.

Every max-pool of the originals is a stride-2 3x3 convolution here, and every nonlinearity is its
own ``nn.ReLU`` module (YOLOv2's leaky ReLUs included), so quantization and conversion need no
detection-specific code. A model is a ``backbone`` and a ``head`` (:class:`YOLOv2`); everything
after the last ReLU is the 1x1 prediction conv, which is linear and commutes with the SNN's
average over time.
"""

from __future__ import annotations

import math
import numbers
import reprlib
from collections import OrderedDict
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from fastsnn.errors import OptionError
from fastsnn.models._layers import (
    MAX_CLASSES,
    MAX_IN_CHANNELS,
    check_count,
    check_width,
    conv_bn_relu,
    init_weights,
    scale,
)
from fastsnn.models.registry import register_model
from fastsnn.models.resnet import basic_stages, strided_stem
from fastsnn.tasks.anchors import VOC_ANCHORS  # the task owns anchors; the model only needs their number

__all__ = [
    "MAX_ANCHORS",
    "STRIDE",
    "VOC_ANCHORS",
    "PassthroughHead",
    "ResNetFeatures",
    "YOLOv2",
    "check_anchors",
    "check_input_size",
    "tiny_yolov2",
    "yolov2_resnet34",
]

STRIDE = 32  # pixels per grid cell: the output stride of both detectors
MAX_ANCHORS = 16
BOX_OUTPUTS = 5  # tx, ty, tw, th, objectness: the channels of an anchor before its class logits

# Tiny-YOLOv2: (output channels, stride) of each 3x3 conv-BN-ReLU of the backbone; stride 2^5 = 32.
_TINY_CONVS = ((16, 2), (32, 2), (64, 2), (128, 2), (256, 2), (512, 1), (1024, 1))
_TINY_HEAD = 1024
# YOLOv2 on ResNet-34: stage channels, BasicBlocks per stage, stage strides (stem 4 x 1*2*2*2 = 32).
_RESNET34_STAGES = ((64, 128, 256, 512), (3, 4, 6, 3), (1, 2, 2, 2))
_RESNET_HEAD = 1024
_PASSTHROUGH = 128


def check_anchors(anchors: Sequence[Sequence[float]]) -> tuple[tuple[float, float], ...]:
    """``anchors`` as a tuple of ``(width, height)`` float pairs, else OptionError naming the option.

    Accepts a tuple or list of 1..MAX_ANCHORS pairs (tuples or lists, as a JSON round trip gives)
    of finite numbers > 0, in grid cells.
    """

    def positive(value) -> bool:
        return not isinstance(value, bool) and isinstance(value, numbers.Real) and math.isfinite(value) and value > 0

    def is_sequence(value) -> bool:
        return isinstance(value, Sequence) and not isinstance(value, (str, bytes))

    if (
        not is_sequence(anchors)
        or not 1 <= len(anchors) <= MAX_ANCHORS
        or not all(is_sequence(pair) and len(pair) == 2 and all(map(positive, pair)) for pair in anchors)
    ):
        raise OptionError(
            "anchors",
            f"must be 1..{MAX_ANCHORS} (width, height) pairs of finite numbers > 0 in grid cells, "
            f"got anchors={reprlib.repr(anchors)}",
        )
    return tuple((float(width), float(height)) for width, height in anchors)


def _check(
    num_classes: int, in_channels: int, width: float, anchors: Sequence[Sequence[float]]
) -> tuple[int, int, float, tuple[tuple[float, float], ...]]:
    """Validate the four options both detection builders share, and the prediction size they imply."""
    num_classes = check_count("num_classes", num_classes, MAX_CLASSES)
    anchors = check_anchors(anchors)
    outputs = len(anchors) * (BOX_OUTPUTS + num_classes)
    if outputs > MAX_CLASSES:
        raise OptionError(
            "num_classes",
            f"{num_classes} with {len(anchors)} anchors asks for {outputs} prediction channels "
            f"(anchors x (5 + num_classes)); at most {MAX_CLASSES}",
        )
    return num_classes, check_count("in_channels", in_channels, MAX_IN_CHANNELS), check_width(width), anchors


@torch.fx.wrap
def check_input_size(x: Tensor) -> Tensor:
    """``x [..., H, W]`` unchanged if H and W are multiples of :data:`STRIDE`, else ValueError naming the size.

    torch.fx records this as one call (it needs a concrete shape), so tracing the models still works.
    """
    height, width = x.shape[-2:]
    if height % STRIDE or width % STRIDE:
        raise ValueError(
            f"YOLOv2 needs an input height and width that are multiples of {STRIDE}, got {height}x{width} "
            f"(input shape {tuple(x.shape)}); resize or pad the images"
        )
    return x


class YOLOv2(nn.Module):
    """A detector: ``backbone`` then ``head``, ``[B, C, H, W] -> [B, A * (5 + K), H/32, W/32]``.

    ``anchors`` (read-only, from the builder's option; not a buffer) are the A ``(width, height)``
    priors in grid cells, in the order of the anchors' channel groups; ``stride`` is 32 pixels.
    """

    stride = STRIDE

    def __init__(self, backbone: nn.Module, head: nn.Module, anchors: tuple[tuple[float, float], ...]) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head
        self._anchors = anchors

    @property
    def anchors(self) -> tuple[tuple[float, float], ...]:
        """The A anchor ``(width, height)`` pairs in grid cells."""
        return self._anchors

    def forward(self, x: Tensor) -> Tensor:
        """``[B, C, H, W] -> [B, A * (5 + K), H/32, W/32]`` raw predictions; ValueError unless 32 | H, W."""
        return self.head(self.backbone(check_input_size(x)))

    def extra_repr(self) -> str:
        return f"stride={self.stride}, anchors={self.anchors}"


class ResNetFeatures(nn.Module):
    """ResNet backbone returning its last two stages: ``[B, C, H, W] -> ([B, c3, H/16, W/16], [B, c4, H/32, W/32])``.

    ``stem``: :func:`~fastsnn.models.resnet.strided_stem` (stride 4); ``stages``: BasicBlock stages
    whose strides multiply to 8, the last one strided by 2.
    """

    def __init__(
        self, in_channels: int, stage_channels: Sequence[int], blocks_per_stage: Sequence[int], strides: Sequence[int]
    ) -> None:
        super().__init__()
        self.stem = strided_stem(in_channels, stage_channels[0])
        self.stages = basic_stages(stage_channels, blocks_per_stage, strides)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``[B, C, H, W]`` -> (fine ``[B, c3, H/16, W/16]``, coarse ``[B, c4, H/32, W/32]``)."""
        fine = self.stem(x)
        for stage in self.stages[:-1]:  # one call per stage: torch.fx needs registered submodules
            fine = stage(fine)
        return fine, self.stages[-1](fine)


class PassthroughHead(nn.Module):
    """YOLOv2's head with the passthrough layer: ``(fine [B, f, 2h, 2w], coarse [B, c, h, w]) -> [B, outputs, h, w]``.

    ``convs`` (1x1, 3x3, 3x3 conv-BN-ReLU): coarse ``-> [B, n, h, w]``; ``passthrough`` (1x1 conv-BN-ReLU
    to p channels, then space-to-depth by 2): fine ``-> [B, 4p, h, w]``; ``fuse`` (3x3 conv-BN-ReLU) on
    their concatenation ``[B, 4p + n, h, w]`` (passthrough first, as YOLOv2's route layer) ``-> [B, n, h, w]``;
    ``predict`` (1x1 conv with bias) ``-> [B, outputs, h, w]``.
    """

    def __init__(self, fine: int, coarse: int, channels: int, passthrough: int, outputs: int) -> None:
        super().__init__()
        self.convs = nn.Sequential(
            conv_bn_relu(coarse, channels, kernel_size=1),
            conv_bn_relu(channels, channels),
            conv_bn_relu(channels, channels),
        )
        self.passthrough = nn.Sequential(conv_bn_relu(fine, passthrough, kernel_size=1), nn.PixelUnshuffle(2))
        self.fuse = conv_bn_relu(4 * passthrough + channels, channels)
        self.predict = nn.Conv2d(channels, outputs, 1)

    def forward(self, features: tuple[Tensor, Tensor]) -> Tensor:
        """(fine ``[B, f, 2h, 2w]``, coarse ``[B, c, h, w]``) -> ``[B, outputs, h, w]``."""
        fine, coarse = features
        return self.predict(self.fuse(torch.cat([self.passthrough(fine), self.convs(coarse)], dim=1)))


@register_model(task="detection")
def tiny_yolov2(
    *,
    num_classes: int = 20,
    in_channels: int = 3,
    width: float = 1.0,
    anchors: Sequence[Sequence[float]] = VOC_ANCHORS,
) -> nn.Module:
    """Tiny-YOLOv2 with strided convs for max-pools: ``[B, in_channels, H, W] -> [B, A*(5+C), H/32, W/32]``.

    ``backbone``: 3x3 conv-BN-ReLU to 16/s2, 32/s2, 64/s2, 128/s2, 256/s2, 512, 1024 channels (x width);
    ``head``: ``conv`` (3x3 conv-BN-ReLU, 1024 x width) and ``predict`` (1x1 conv with bias).
    """
    num_classes, in_channels, width, anchors = _check(num_classes, in_channels, width, anchors)
    layers: list[nn.Module] = []
    channels = in_channels
    for out, stride in _TINY_CONVS:
        out = scale(out, width)
        layers.append(conv_bn_relu(channels, out, stride=stride))
        channels = out
    head = scale(_TINY_HEAD, width)
    predict = nn.Conv2d(head, len(anchors) * (BOX_OUTPUTS + num_classes), 1)
    model = YOLOv2(
        nn.Sequential(*layers), nn.Sequential(OrderedDict(conv=conv_bn_relu(channels, head), predict=predict)), anchors
    )
    init_weights(model)
    return model


@register_model(task="detection")
def yolov2_resnet34(
    *,
    num_classes: int = 20,
    in_channels: int = 3,
    width: float = 1.0,
    anchors: Sequence[Sequence[float]] = VOC_ANCHORS,
) -> nn.Module:
    """YOLOv2 on ResNet-34 without max-pool: ``[B, in_channels, H, W] -> [B, A*(5+C), H/32, W/32]``.

    ``backbone`` (:class:`ResNetFeatures`): strided stem, 3/4/6/3 BasicBlocks of 64/128/256/512 channels
    at strides 1/2/2/2; ``head`` (:class:`PassthroughHead`): 1024 channels, passthrough of 128 from the
    256-channel stage (all x width), then the 1x1 prediction conv.
    """
    num_classes, in_channels, width, anchors = _check(num_classes, in_channels, width, anchors)
    widths = [scale(c, width) for c in _RESNET34_STAGES[0]]
    backbone = ResNetFeatures(in_channels, widths, *_RESNET34_STAGES[1:])
    head = PassthroughHead(
        widths[-2],
        widths[-1],
        scale(_RESNET_HEAD, width),
        scale(_PASSTHROUGH, width),
        len(anchors) * (BOX_OUTPUTS + num_classes),
    )
    model = YOLOv2(backbone, head, anchors)
    init_weights(model)
    return model
