"""AlexNet with BatchNorm and average pooling (no max-pooling)."""

from __future__ import annotations

from torch import Tensor, nn

from fastsnn.models._layers import check_options, conv_bn_relu, init_weights, scale
from fastsnn.models.registry import register_model

__all__ = ["AlexNet", "alexnet"]


class AlexNet(nn.Module):
    """Five conv-BN-ReLU layers, average pools, adaptive pool, 3-layer MLP: ``[B, C, H, W] -> [B, num_classes]``."""

    def __init__(self, features: nn.Sequential, pool_size: int, classifier: nn.Sequential) -> None:
        super().__init__()
        self.features = features
        self.pool = nn.AdaptiveAvgPool2d(pool_size)
        self.flatten = nn.Flatten(1)
        self.classifier = classifier

    def forward(self, x: Tensor) -> Tensor:
        """``[B, C, H, W] -> [B, num_classes]`` logits."""
        return self.classifier(self.flatten(self.pool(self.features(x))))


def _classifier(in_features: int, hidden: int, num_classes: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Dropout(0.5),
        nn.Linear(in_features, hidden),
        nn.ReLU(),
        nn.Dropout(0.5),
        nn.Linear(hidden, hidden),
        nn.ReLU(),
        nn.Linear(hidden, num_classes),
    )


@register_model
def alexnet(*, num_classes: int = 10, in_channels: int = 3, width: float = 1.0, stem: str = "cifar") -> nn.Module:
    """AlexNet; ``[B, in_channels, H, W] -> [B, num_classes]``.

    ``stem="cifar"``: 3x3 convs (64/192/384/256/256 x width), three 2x2 average
    pools, 2x2 adaptive pool, 1024-wide hidden layers (x width).
    ``stem="imagenet"``: the classic 11x11 stride-4 / 5x5 / 3x3 convs with 3x3
    stride-2 average pools, 6x6 adaptive pool, 4096-wide hidden layers (x width).
    """
    num_classes, in_channels, width, stem = check_options(num_classes, in_channels, width, stem)
    c1, c2, c3, c4, c5 = (scale(c, width) for c in (64, 192, 384, 256, 256))
    if stem == "imagenet":
        features = nn.Sequential(
            conv_bn_relu(in_channels, c1, kernel_size=11, stride=4, padding=2),
            nn.AvgPool2d(kernel_size=3, stride=2),
            conv_bn_relu(c1, c2, kernel_size=5),
            nn.AvgPool2d(kernel_size=3, stride=2),
            conv_bn_relu(c2, c3),
            conv_bn_relu(c3, c4),
            conv_bn_relu(c4, c5),
            nn.AvgPool2d(kernel_size=3, stride=2),
        )
        pool_size, hidden = 6, scale(4096, width)
    else:
        features = nn.Sequential(
            conv_bn_relu(in_channels, c1),
            nn.AvgPool2d(kernel_size=2, stride=2, ceil_mode=True),
            conv_bn_relu(c1, c2),
            nn.AvgPool2d(kernel_size=2, stride=2, ceil_mode=True),
            conv_bn_relu(c2, c3),
            conv_bn_relu(c3, c4),
            conv_bn_relu(c4, c5),
            nn.AvgPool2d(kernel_size=2, stride=2, ceil_mode=True),
        )
        pool_size, hidden = 2, scale(1024, width)
    model = AlexNet(features, pool_size, _classifier(c5 * pool_size * pool_size, hidden, num_classes))
    init_weights(model)
    return model
