"""Image classification: cross-entropy, Hinton's knowledge distillation, argmax over classes, top-1 accuracy;
agreement per image."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch.nn import functional as F
from torch.utils.data import Dataset

if TYPE_CHECKING:
    from fastsnn.data import DatasetInfo


class Classification:
    """Outputs ``[B, num_classes]`` logits, targets ``[B]`` class indices."""

    name = "classification"
    metrics = ("accuracy",)
    model_options = ()
    agreement_unit = "images"

    def __init__(self, num_classes: int | None = None):
        self.num_classes = num_classes  # not needed by the loss or the metrics

    def prepare(self, train_set: Dataset, info: DatasetInfo) -> dict:
        """Nothing to derive from the training set: the model takes no task options."""
        return {}

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(output, target)

    def distillation_loss(self, output: torch.Tensor, teacher_output: torch.Tensor, temperature: float) -> torch.Tensor:
        """Hinton's KD of logits ``[B, num_classes]``: :func:`soft_divergence` averaged over the batch."""
        return soft_divergence(output, teacher_output, temperature).mean()

    def decode(self, output: torch.Tensor) -> torch.Tensor:
        """``[B, num_classes]`` -> predicted classes ``[B]``."""
        return output.argmax(1)

    def meter(self) -> MatchRate:
        return MatchRate("accuracy")

    def agreement_meter(self) -> MatchRate:
        return MatchRate("agreement")


def soft_divergence(output: torch.Tensor, teacher_output: torch.Tensor, temperature: float) -> torch.Tensor:
    """τ² · KL(softmax(teacher / τ) || softmax(output / τ)) over the class dimension 1 (Hinton et al., 2015):
    ``[B, C, ...]`` logits -> ``[B, ...]``. The τ² keeps its gradient on the scale of the cross-entropy's;
    the teacher's output is detached."""
    student = F.log_softmax(output / temperature, dim=1)
    teacher = F.log_softmax(teacher_output.detach() / temperature, dim=1)
    return F.kl_div(student, teacher, log_target=True, reduction="none").sum(1) * temperature**2


class MatchRate:
    """Share of elements where predictions equal targets (elements equal to ``ignore_index`` excluded)."""

    def __init__(self, name: str, ignore_index: int | None = None):
        self.name, self.ignore_index = name, ignore_index
        self.matches, self.count = 0, 0

    def update(self, predictions: torch.Tensor, targets: torch.Tensor) -> None:
        targets = torch.as_tensor(targets).to(predictions.device)
        valid = (
            targets != self.ignore_index
            if self.ignore_index is not None
            else torch.ones_like(targets, dtype=torch.bool)
        )
        self.matches += int(((predictions == targets) & valid).sum())
        self.count += int(valid.sum())

    def compute(self) -> dict[str, float]:
        return {self.name: self.matches / self.count if self.count else float("nan")}
