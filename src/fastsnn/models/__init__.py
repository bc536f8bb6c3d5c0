"""Model registry and builders (VGG, ResNet, AlexNet; DeepLab segmentation) without max-pooling.

Every nonlinearity is its own ``nn.ReLU`` module, so the quantizer and the
converter can swap each one independently::

    model = create_model("resnet20", num_classes=10, in_channels=3, width=0.5)

Classifiers map ``[B, C, H, W]`` to ``[B, num_classes]``; the segmentation
builders ``deeplab_vgg9`` and ``deeplabv3_resnet34`` map it to per-pixel logits
``[B, num_classes, H, W]``.
"""

from fastsnn.models.alexnet import AlexNet
from fastsnn.models.deeplab import DeepLabV3, DeepLabVGG
from fastsnn.models.registry import ModelError, create_model, list_models, model_options, model_task, register_model
from fastsnn.models.resnet import BasicBlock, ResNet
from fastsnn.models.vgg import VGG
from fastsnn.models.yolo import YOLOv2

__all__ = [
    "AlexNet",
    "BasicBlock",
    "DeepLabV3",
    "DeepLabVGG",
    "ResNet",
    "ModelError",
    "VGG",
    "YOLOv2",
    "create_model",
    "list_models",
    "model_options",
    "model_task",
    "register_model",
]
