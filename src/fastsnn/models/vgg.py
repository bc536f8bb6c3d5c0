"""VGG without max-pooling: conv3x3-BN-ReLU blocks, ``AvgPool2d(2)`` between stages."""

from __future__ import annotations

from torch import Tensor, nn

from fastsnn.models._layers import check_options, conv_bn_relu, init_weights, scale
from fastsnn.models.registry import register_model

__all__ = ["VGG", "vgg11", "vgg16"]

# Output channels of each conv; "A" is a 2x2 average pool (stride 2, ceil mode).
_CONFIGS: dict[str, list[int | str]] = {
    "vgg11": [64, "A", 128, "A", 256, 256, "A", 512, 512, "A", 512, 512, "A"],
    "vgg16": [64, 64, "A", 128, 128, "A", 256, 256, 256, "A", 512, 512, 512, "A", 512, 512, 512, "A"],
}

# Hidden width of the two-hidden-layer classifier used with stem="imagenet".
_IMAGENET_HIDDEN = 1024


class VGG(nn.Module):
    """VGG body + global average pool + classifier: ``[B, C, H, W] -> [B, num_classes]``.

    ``features`` downsamples with ``AvgPool2d(2, ceil_mode=True)`` only, so 28-px
    inputs reach 1x1 after five pools; ``AdaptiveAvgPool2d(1)`` makes the
    classifier independent of the input size.
    """

    def __init__(self, features: nn.Sequential, classifier: nn.Sequential) -> None:
        super().__init__()
        self.features = features
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten(1)
        self.classifier = classifier

    def forward(self, x: Tensor) -> Tensor:
        """``[B, C, H, W] -> [B, num_classes]`` logits."""
        return self.classifier(self.flatten(self.pool(self.features(x))))


def _vgg(config: str, num_classes: int, in_channels: int, width: float, stem: str) -> VGG:
    num_classes, in_channels, width, stem = check_options(num_classes, in_channels, width, stem)
    layers: list[nn.Module] = []
    channels = in_channels
    for item in _CONFIGS[config]:
        if item == "A":
            layers.append(nn.AvgPool2d(kernel_size=2, stride=2, ceil_mode=True))
        else:
            out = scale(int(item), width)
            layers.append(conv_bn_relu(channels, out))
            channels = out
    if stem == "imagenet":
        hidden = scale(_IMAGENET_HIDDEN, width)
        classifier = nn.Sequential(
            nn.Linear(channels, hidden),
            nn.ReLU(),
            nn.Dropout(0.5),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            nn.Dropout(0.5),
            nn.Linear(hidden, num_classes),
        )
    else:
        classifier = nn.Sequential(nn.Linear(channels, num_classes))
    model = VGG(nn.Sequential(*layers), classifier)
    init_weights(model)
    return model


@register_model
def vgg11(*, num_classes: int = 10, in_channels: int = 3, width: float = 1.0, stem: str = "cifar") -> nn.Module:
    """VGG-11 (8 conv layers) with average pooling; ``[B, in_channels, H, W] -> [B, num_classes]``."""
    return _vgg("vgg11", num_classes, in_channels, width, stem)


@register_model
def vgg16(*, num_classes: int = 10, in_channels: int = 3, width: float = 1.0, stem: str = "cifar") -> nn.Module:
    """VGG-16 (13 conv layers) with average pooling; ``[B, in_channels, H, W] -> [B, num_classes]``."""
    return _vgg("vgg16", num_classes, in_channels, width, stem)
