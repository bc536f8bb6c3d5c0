"""What a task provides: model options from the training set, a loss, a distillation loss, a decoding of
outputs into predictions, metric and agreement meters."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

import torch
from torch.utils.data import Dataset

if TYPE_CHECKING:  # the data package imports the tasks' box format, not the other way round
    from fastsnn.data import DatasetInfo


class Meter(Protocol):
    """Accumulates over batches; ``compute`` gives the figures of everything seen so far."""

    def update(self, predictions: torch.Tensor, targets: torch.Tensor) -> None: ...

    def compute(self) -> dict[str, float]: ...


class Task(Protocol):
    """A vision task. ``metrics`` names the figures of :meth:`meter`, headline first (all in [0, 1])."""

    name: str
    num_classes: int
    metrics: tuple[str, ...]
    agreement_unit: str  # what agreement counts: "images", "pixels", ...
    model_options: tuple[str, ...]  # options of the model the task is built with (detection: its anchors)

    def prepare(self, train_set: Dataset, info: DatasetInfo) -> dict:
        """The model options (of :attr:`model_options`) this task derives from the un-augmented training set
        ``train_set`` of data set ``info``, as JSON values; ``{}`` when it derives none."""
        ...

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Training loss of a network output against its target (a scalar)."""
        ...

    def distillation_loss(self, output: torch.Tensor, teacher_output: torch.Tensor, temperature: float) -> torch.Tensor:
        """Knowledge distillation loss of a network output against a teacher's output of the same shape (a
        scalar, on the scale of :meth:`loss`; 0 where they are equal; no gradient reaches ``teacher_output``);
        ``temperature`` > 0 softens the class probabilities compared."""
        ...

    def decode(self, output: torch.Tensor) -> torch.Tensor:
        """Predictions from a network output (for an SNN: its output averaged over T)."""
        ...

    def meter(self) -> Meter:
        """A fresh accumulator of :attr:`metrics` over ``(predictions, targets)`` batches."""
        ...

    def agreement_meter(self) -> Meter:
        """A fresh accumulator of agreement over ``(predictions, reference predictions)``: ``{"agreement": ...}``."""
        ...
