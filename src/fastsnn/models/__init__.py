"""Model registry and builders (VGG, ResNet, AlexNet) without max-pooling.

Every nonlinearity is its own ``nn.ReLU`` module, so the quantizer and the
converter can swap each one independently::

    model = create_model("resnet20", num_classes=10, in_channels=3, width=0.5)
"""

from fastsnn.models.alexnet import AlexNet
from fastsnn.models.registry import ModelError, create_model, list_models, register_model
from fastsnn.models.resnet import BasicBlock, ResNet
from fastsnn.models.vgg import VGG

__all__ = [
    "AlexNet",
    "BasicBlock",
    "ResNet",
    "ModelError",
    "VGG",
    "create_model",
    "list_models",
    "register_model",
]
