"""Semantic segmentation: cross-entropy with ignored pixels, knowledge distillation per pixel, argmax per pixel,
mIoU and pixel accuracy.

mIoU is VOC-style: one confusion matrix accumulated over the whole test set, then the mean over
classes of TP / (TP + FP + FN) (``torchmetrics``' ``MulticlassJaccardIndex(average="macro")``),
not a mean of per-image scores. Pixels labelled :data:`IGNORE_INDEX` count in neither metric.
Agreement with a reference network is per pixel, over all pixels.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch.nn import functional as F
from torch.utils.data import Dataset

from .classification import MatchRate, soft_divergence

if TYPE_CHECKING:
    from fastsnn.data import DatasetInfo

IGNORE_INDEX = 255  # VOC's object boundaries, Cityscapes' unlabelled classes


class Segmentation:
    """Outputs ``[B, num_classes, H, W]`` scores, targets ``[B, H, W]`` class indices (255 = ignore)."""

    name = "segmentation"
    metrics = ("mIoU", "pixel accuracy")
    model_options = ()
    agreement_unit = "pixels"

    def __init__(self, num_classes: int):
        self.num_classes = num_classes

    def prepare(self, train_set: Dataset, info: DatasetInfo) -> dict:
        """Nothing to derive from the training set: the model takes no task options."""
        return {}

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(output, target, ignore_index=IGNORE_INDEX)

    def distillation_loss(self, output: torch.Tensor, teacher_output: torch.Tensor, temperature: float) -> torch.Tensor:
        """Hinton's KD per pixel of scores ``[B, num_classes, H, W]``: :func:`.classification.soft_divergence`
        averaged over the B·H·W pixels (ignored pixels included: the teacher has an answer for every pixel)."""
        return soft_divergence(output, teacher_output, temperature).mean()

    def decode(self, output: torch.Tensor) -> torch.Tensor:
        """``[B, num_classes, H, W]`` -> predicted classes ``[B, H, W]``."""
        return output.argmax(1)

    def meter(self) -> SegmentationMeter:
        return SegmentationMeter(self.num_classes)

    def agreement_meter(self) -> MatchRate:
        return MatchRate("agreement")


class SegmentationMeter:
    """mIoU (one confusion matrix over all batches) and pixel accuracy, ignoring :data:`IGNORE_INDEX`."""

    def __init__(self, num_classes: int):
        from torchmetrics.classification import MulticlassJaccardIndex  # imported here: a heavy import

        self.jaccard = MulticlassJaccardIndex(num_classes, average="macro", ignore_index=IGNORE_INDEX)
        self.pixels = MatchRate("pixel accuracy", ignore_index=IGNORE_INDEX)

    def update(self, predictions: torch.Tensor, targets: torch.Tensor) -> None:
        targets = torch.as_tensor(targets)
        self.jaccard.update(predictions.cpu(), targets.cpu())
        self.pixels.update(predictions.cpu(), targets.cpu())

    def compute(self) -> dict[str, float]:
        return {"mIoU": float(self.jaccard.compute()), **self.pixels.compute()}
