"""Model registry and builders (VGG, ResNet, AlexNet; DeepLab segmentation; YOLOv2 detection) without max-pooling.

Every nonlinearity is its own ``nn.ReLU`` module, so the quantizer and the
converter can swap each one independently::

    model = create_model("resnet20", num_classes=10, in_channels=3, width=0.5)

Classifiers map ``[B, C, H, W]`` to ``[B, num_classes]``; the segmentation
builders ``deeplab_vgg9`` and ``deeplabv3_resnet34`` map it to per-pixel logits
``[B, num_classes, H, W]``; the detection builders ``tiny_yolov2`` and
``yolov2_resnet34`` map it (H and W multiples of 32) to raw YOLOv2 predictions
``[B, A * (5 + num_classes), H / 32, W / 32]`` for ``A = len(model.anchors)``.

Classifiers of torchvision and timm are built by name too, with the same options (:mod:`fastsnn.models.zoo`;
their max-pools kept, non-ReLU activations and attention refused)::

    model = create_model("torchvision:resnet18", num_classes=10, in_channels=1, width=0.25, stem="cifar")
"""

from fastsnn.models.alexnet import AlexNet
from fastsnn.models.deeplab import DeepLabV3, DeepLabVGG
from fastsnn.models.registry import create_model, list_models, model_options, model_task, register_model
from fastsnn.models.resnet import BasicBlock, ResNet
from fastsnn.models.vgg import VGG
from fastsnn.models.yolo import YOLOv2

__all__ = [
    "AlexNet",
    "BasicBlock",
    "DeepLabV3",
    "DeepLabVGG",
    "ResNet",
    "VGG",
    "YOLOv2",
    "create_model",
    "list_models",
    "model_options",
    "model_task",
    "register_model",
]
