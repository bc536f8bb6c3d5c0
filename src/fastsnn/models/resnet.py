"""ResNets built from BasicBlocks, with a separate ReLU after each residual addition."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from fastsnn.models._layers import check_options, conv_bn_relu, init_weights, scale
from fastsnn.models.registry import register_model

__all__ = ["BasicBlock", "ResNet", "basic_stages", "strided_stem", "resnet8", "resnet18", "resnet20", "resnet34"]


class BasicBlock(nn.Module):
    """Two 3x3 conv-BN layers plus shortcut: ``[B, in, H, W] -> [B, out, H/stride, W/stride]``.

    ``out = relu_out(bn2(conv2(relu1(bn1(conv1(x))))) + shortcut(x))``; the
    shortcut is the identity, or a 1x1 conv + BN when the shape changes.
    ``dilation`` dilates (and pads) both 3x3 convs alike, keeping the spatial size
    at stride 1 (DeepLab's atrous stages); the default 1 is the plain block.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, *, dilation: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(
            in_channels, out_channels, 3, stride=stride, padding=dilation, dilation=dilation, bias=False
        )
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, stride=1, padding=dilation, dilation=dilation, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        if stride != 1 or in_channels != out_channels:
            self.shortcut: nn.Module = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )
        else:
            self.shortcut = nn.Identity()
        self.relu_out = nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        """``[B, in, H, W] -> [B, out, H', W']``."""
        out = self.relu1(self.bn1(self.conv1(x)))
        return self.relu_out(self.bn2(self.conv2(out)) + self.shortcut(x))


def basic_stages(
    stage_channels: Sequence[int],
    blocks_per_stage: Sequence[int],
    stage_strides: Sequence[int],
    stage_dilations: Sequence[int] | None = None,
) -> nn.Sequential:
    """BasicBlock stages ``[B, c[0], H, W] -> [B, c[-1], H/s, W/s]``; c = ``stage_channels``, s = product of strides.

    Stage ``i`` is ``blocks_per_stage[i]`` blocks of ``c[i]`` channels, its first block strided by
    ``stage_strides[i]``, all dilated by ``stage_dilations[i]`` (default 1 everywhere).
    """
    if stage_dilations is None:
        stage_dilations = [1] * len(stage_channels)
    stages: list[nn.Module] = []
    channels = stage_channels[0]
    for out, blocks, stride, dilation in zip(
        stage_channels, blocks_per_stage, stage_strides, stage_dilations, strict=True
    ):
        layer: list[nn.Module] = []
        for i in range(blocks):
            layer.append(BasicBlock(channels, out, stride if i == 0 else 1, dilation=dilation))
            channels = out
        stages.append(nn.Sequential(*layer))
    return nn.Sequential(*stages)


def strided_stem(in_channels: int, out_channels: int) -> nn.Sequential:
    """7x7 stride-2 conv-BN-ReLU, then a 3x3 stride-2 conv-BN-ReLU in place of the max-pool.

    ``[B, in, H, W] -> [B, out, H/4, W/4]``: the ImageNet stem without max-pooling (dense prediction).
    """
    return nn.Sequential(
        conv_bn_relu(in_channels, out_channels, kernel_size=7, stride=2, padding=3),
        conv_bn_relu(out_channels, out_channels, kernel_size=3, stride=2),
    )


class ResNet(nn.Module):
    """Stem, stages of BasicBlocks, global average pool, linear: ``[B, C, H, W] -> [B, num_classes]``.

    ``stem="cifar"``: 3x3 stride-1 conv-BN-ReLU (28/32-px inputs).
    ``stem="imagenet"``: 7x7 stride-2 conv-BN-ReLU, then a 3x3 stride-2 average
    pool in place of the usual max-pool (224-px inputs).
    """

    def __init__(
        self,
        stage_channels: Sequence[int],
        blocks_per_stage: Sequence[int],
        stage_strides: Sequence[int],
        *,
        num_classes: int,
        in_channels: int,
        width: float,
        stem: str,
    ) -> None:
        super().__init__()
        num_classes, in_channels, width, stem = check_options(num_classes, in_channels, width, stem)
        widths = [scale(c, width) for c in stage_channels]
        if stem == "imagenet":
            self.stem = nn.Sequential(
                *conv_bn_relu(in_channels, widths[0], kernel_size=7, stride=2, padding=3),
                nn.AvgPool2d(kernel_size=3, stride=2, padding=1),
            )
        else:
            self.stem = conv_bn_relu(in_channels, widths[0], kernel_size=3, stride=1)
        self.stages = basic_stages(widths, blocks_per_stage, stage_strides)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten(1)
        self.fc = nn.Linear(widths[-1], num_classes)
        init_weights(self)

    def forward(self, x: Tensor) -> Tensor:
        """``[B, C, H, W] -> [B, num_classes]`` logits."""
        return self.fc(self.flatten(self.pool(self.stages(self.stem(x)))))


@register_model
def resnet18(*, num_classes: int = 10, in_channels: int = 3, width: float = 1.0, stem: str = "cifar") -> nn.Module:
    """ResNet-18: stages of 64/128/256/512 channels x width, 2 BasicBlocks each."""
    return ResNet(
        (64, 128, 256, 512),
        (2, 2, 2, 2),
        (1, 2, 2, 2),
        num_classes=num_classes,
        in_channels=in_channels,
        width=width,
        stem=stem,
    )


@register_model
def resnet34(*, num_classes: int = 10, in_channels: int = 3, width: float = 1.0, stem: str = "cifar") -> nn.Module:
    """ResNet-34: stages of 64/128/256/512 channels x width, with 3/4/6/3 BasicBlocks."""
    return ResNet(
        (64, 128, 256, 512),
        (3, 4, 6, 3),
        (1, 2, 2, 2),
        num_classes=num_classes,
        in_channels=in_channels,
        width=width,
        stem=stem,
    )


@register_model
def resnet8(*, num_classes: int = 10, in_channels: int = 3, width: float = 1.0, stem: str = "cifar") -> nn.Module:
    """ResNet-8 (CIFAR variant): stages of 16/32/64 channels x width, 1 BasicBlock each (benchmarks' small ResNet)."""
    return ResNet(
        (16, 32, 64),
        (1, 1, 1),
        (1, 2, 2),
        num_classes=num_classes,
        in_channels=in_channels,
        width=width,
        stem=stem,
    )


@register_model
def resnet20(*, num_classes: int = 10, in_channels: int = 3, width: float = 1.0, stem: str = "cifar") -> nn.Module:
    """ResNet-20 (CIFAR variant): stages of 16/32/64 channels x width, 3 BasicBlocks each."""
    return ResNet(
        (16, 32, 64),
        (3, 3, 3),
        (1, 2, 2),
        num_classes=num_classes,
        in_channels=in_channels,
        width=width,
        stem=stem,
    )
