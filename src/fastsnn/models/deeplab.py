"""Semantic segmentation without max-pooling: DeepLabv1-style VGG and DeepLabv3 on ResNet-34.

Both map ``[B, in_channels, H, W]`` to per-pixel logits ``[B, num_classes, H, W]``:
a fully convolutional body downsamples with stride-2 convolutions only, dilated
(atrous) 3x3 convolutions enlarge the receptive field without further striding,
a 1x1 conv classifies each position, and bilinear upsampling returns to the
input size. Every nonlinearity is its own ``nn.ReLU`` module; everything after
the last ReLU (1x1 conv, bilinear interpolation) is linear, so it commutes with
the SNN's average over time. Inputs with H and W divisible by 16 give exact
output strides; other sizes work too (the upsampling targets ``x.shape[-2:]``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

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

__all__ = ["ASPP", "DeepLabV3", "DeepLabVGG", "deeplab_vgg9", "deeplabv3_resnet34"]

# DeepLabv1-style VGG: (output channels, stride, dilation) of each 3x3 conv; output stride 2*2*2 = 8.
_VGG9_CONVS: tuple[tuple[int, int, int], ...] = (
    (64, 1, 1),
    (64, 2, 1),
    (128, 1, 1),
    (128, 2, 1),
    (256, 2, 1),
    (256, 1, 2),
    (256, 1, 2),
    (1024, 1, 12),
)

# DeepLabv3 on ResNet-34: stage channels, BasicBlocks per stage, stage strides, last stage dilated instead of strided.
_RESNET34_STAGES = ((64, 128, 256, 512), (3, 4, 6, 3), (1, 2, 2, 1), (1, 1, 1, 2))
_ASPP_RATES = (6, 12, 18, 24)
_ASPP_CHANNELS = 256


def _check(num_classes: int, in_channels: int, width: float) -> tuple[int, int, float]:
    """Validate the three options both segmentation builders share."""
    return (
        check_count("num_classes", num_classes, MAX_CLASSES),
        check_count("in_channels", in_channels, MAX_IN_CHANNELS),
        check_width(width),
    )


def _upsample(logits: Tensor, like: Tensor) -> Tensor:
    """Bilinear ``[B, K, h, w] -> [B, K, H, W]`` with ``(H, W)`` the spatial size of ``like``."""
    return F.interpolate(logits, size=like.shape[-2:], mode="bilinear", align_corners=False)


class DeepLabVGG(nn.Module):
    """Conv body at output stride 8, 1x1 classifier, bilinear upsampling: ``[B, C, H, W] -> [B, K, H, W]``.

    ``features``: ``[B, C, H, W] -> [B, F, H/8, W/8]``; ``classifier`` (1x1 conv with bias):
    ``-> [B, K, H/8, W/8]``; upsampling to the input size.
    """

    def __init__(self, features: nn.Sequential, classifier: nn.Conv2d) -> None:
        super().__init__()
        self.features = features
        self.classifier = classifier

    def forward(self, x: Tensor) -> Tensor:
        """``[B, C, H, W] -> [B, num_classes, H, W]`` per-pixel logits."""
        return _upsample(self.classifier(self.features(x)), x)


class ASPP(nn.Module):
    """Atrous spatial pyramid pooling without the image-pooling branch: ``[B, in, h, w] -> [B, out, h, w]``.

    One 1x1 branch and one 3x3 branch per rate, each conv-BN-ReLU with ``out`` channels, run in
    parallel and concatenated to ``[B, (1 + len(rates)) * out, h, w]``; ``project`` (1x1 conv-BN-ReLU)
    brings that back to ``[B, out, h, w]``.
    """

    def __init__(self, in_channels: int, out_channels: int, rates: Sequence[int]) -> None:
        super().__init__()
        branches = [conv_bn_relu(in_channels, out_channels, kernel_size=1)]
        branches += [conv_bn_relu(in_channels, out_channels, dilation=rate) for rate in rates]
        self.branches = nn.ModuleList(branches)
        self.project = conv_bn_relu(len(branches) * out_channels, out_channels, kernel_size=1)

    def forward(self, x: Tensor) -> Tensor:
        """``[B, in, h, w] -> [B, out, h, w]``."""
        return self.project(torch.cat([branch(x) for branch in self.branches], dim=1))


class DeepLabV3(nn.Module):
    """DeepLabv3 on a ResNet at output stride 16: ``[B, C, H, W] -> [B, num_classes, H, W]``.

    ``stem`` (7x7 stride-2 conv-BN-ReLU, then 3x3 stride-2 conv-BN-ReLU in place of the max-pool):
    ``[B, C, H, W] -> [B, c0, H/4, W/4]``; ``stages`` of BasicBlocks with strides 1/2/2 and a last
    stage dilated by 2 instead of strided: ``-> [B, c3, H/16, W/16]``; ``aspp``: ``-> [B, a, H/16, W/16]``;
    ``head`` (3x3 conv-BN-ReLU); ``classifier`` (1x1 conv with bias): ``-> [B, num_classes, H/16, W/16]``;
    bilinear upsampling to the input size.
    """

    def __init__(
        self,
        stage_channels: Sequence[int],
        blocks_per_stage: Sequence[int],
        stage_strides: Sequence[int],
        stage_dilations: Sequence[int],
        *,
        num_classes: int,
        in_channels: int,
        width: float,
    ) -> None:
        super().__init__()
        num_classes, in_channels, width = _check(num_classes, in_channels, width)
        widths = [scale(c, width) for c in stage_channels]
        self.stem = strided_stem(in_channels, widths[0])
        self.stages = basic_stages(widths, blocks_per_stage, stage_strides, stage_dilations)
        aspp = scale(_ASPP_CHANNELS, width)
        self.aspp = ASPP(widths[-1], aspp, _ASPP_RATES)
        self.head = conv_bn_relu(aspp, aspp)
        self.classifier = nn.Conv2d(aspp, num_classes, 1)
        init_weights(self)

    def forward(self, x: Tensor) -> Tensor:
        """``[B, C, H, W] -> [B, num_classes, H, W]`` per-pixel logits."""
        features = self.head(self.aspp(self.stages(self.stem(x))))
        return _upsample(self.classifier(features), x)


@register_model(task="segmentation")
def deeplab_vgg9(*, num_classes: int = 21, in_channels: int = 3, width: float = 1.0) -> nn.Module:
    """DeepLabv1-style VGG, output stride 8: eight 3x3 conv-BN-ReLU (three stride 2, dilations 2, 2, 12).

    Channels 64, 64/s2, 128, 128/s2, 256/s2, 256/d2, 256/d2, 1024/d12 (x width), then a 1x1
    classifier and bilinear upsampling: ``[B, in_channels, H, W] -> [B, num_classes, H, W]``.
    """
    num_classes, in_channels, width = _check(num_classes, in_channels, width)
    layers: list[nn.Module] = []
    channels = in_channels
    for out, stride, dilation in _VGG9_CONVS:
        out = scale(out, width)
        layers.append(conv_bn_relu(channels, out, stride=stride, dilation=dilation))
        channels = out
    model = DeepLabVGG(nn.Sequential(*layers), nn.Conv2d(channels, num_classes, 1))
    init_weights(model)
    return model


@register_model(task="segmentation")
def deeplabv3_resnet34(*, num_classes: int = 21, in_channels: int = 3, width: float = 1.0) -> nn.Module:
    """DeepLabv3 on ResNet-34 (3/4/6/3 BasicBlocks, last stage dilated), output stride 16.

    ASPP of a 1x1 and four 3x3 branches (rates 6/12/18/24), 256 channels each (x width), no image
    pooling; then 1x1 projection, 3x3 conv, 1x1 classifier and bilinear upsampling:
    ``[B, in_channels, H, W] -> [B, num_classes, H, W]``.
    """
    return DeepLabV3(*_RESNET34_STAGES, num_classes=num_classes, in_channels=in_channels, width=width)
