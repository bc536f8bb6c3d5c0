"""When a correction is kept: a held-out figure that improves beyond noise, judged image by image.

A held-out set of a thousand images cannot tell one or two changed predictions from chance. So a
correction is judged on the images whose score it changes: it is kept only if the figure over the whole
held-out set improves *and* it improved more of those images than it worsened, by more than chance
would (a one-sided sign test, exact binomial, at the level ``significance``). Equal figures revert.

The score of an image is the criterion's figure measured on that image alone: for ``"task"`` the task's
headline metric against the label (accuracy: 0 or 1, mIoU or mAP of the image), for ``"agreement"`` the
agreement of its prediction with the QANN's, for ``"mse"`` minus its output's squared error to the QANN's.
"""

import dataclasses
import math
from collections.abc import Callable

import torch

from ..errors import OptionError
from ..tasks import Meter, Task


@dataclasses.dataclass(frozen=True)
class HeldOutScore:
    """A network's figure on the held-out set (higher is better) and its score on each image ``[N]``."""

    figure: float
    images: torch.Tensor


@dataclasses.dataclass(frozen=True)
class Verdict:
    """How a correction changed the held-out images: ``wins`` improved, ``losses`` worsened, the sign test's
    one-sided ``p_value`` (1.0 when none changed), and whether the correction is kept."""

    wins: int
    losses: int
    p_value: float
    kept: bool


def per_image(new_meter: Callable[[], Meter], predictions: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """``[B]`` headline figure of a fresh meter fed with each image alone (NaN where undefined for that image).

    Uses the task's own meters (torchmetrics for mIoU and mAP), so an image's score is computed exactly
    as the figure over the whole set is.
    """
    scores = []
    for prediction, target in zip(predictions, targets, strict=True):
        meter = new_meter()
        meter.update(prediction[None], target[None])
        scores.append(next(iter(meter.compute().values())))
    return torch.tensor(scores, dtype=torch.float64)


def sign_test_p(wins: int, losses: int) -> float:
    """P(at least ``wins`` of ``wins + losses`` fair coin flips come up heads): the chance of a gain this
    large among the changed images if the correction did nothing."""
    changed = wins + losses
    return sum(math.comb(changed, k) for k in range(wins, changed + 1)) / 2**changed


def judge(before: HeldOutScore, after: HeldOutScore, significance: float) -> Verdict:
    """Kept iff the figure rose and the images it changed improved beyond chance (p ≤ ``significance``)."""
    difference = after.images - before.images
    changed = ~torch.isnan(difference) & (difference != 0)
    wins, losses = int((difference[changed] > 0).sum()), int((difference[changed] < 0).sum())
    p_value = sign_test_p(wins, losses)
    return Verdict(wins, losses, p_value, after.figure > before.figure and p_value <= significance)


class ScoreMeter:
    """Accumulates, over held-out batches, each image's score under one criterion, the criterion's figure
    where it is the task's metric, and the agreement with the QANN's predictions (given a task).

    ``update(output, reference, targets)`` takes the SNN's outputs, the QANN's outputs and the labels of a batch;
    each output is decoded once.
    """

    def __init__(self, criterion: str, task: Task | None):
        self.criterion, self.task = criterion, task
        self.agreement_meter = None if task is None else task.agreement_meter()
        self.metric = task.meter() if criterion == "task" else None
        self.images: list[torch.Tensor] = []

    def update(self, output: torch.Tensor, reference: torch.Tensor, targets) -> None:
        if self.task is not None:
            predicted, expected = self.task.decode(output), self.task.decode(reference)
            self.agreement_meter.update(predicted, expected)
        if self.criterion == "mse":
            self.images.append(-(output - reference).pow(2).flatten(1).mean(1).double())
        elif self.criterion == "agreement":
            self.images.append(per_image(self.task.agreement_meter, predicted, expected))
        else:
            if targets is None:
                raise OptionError("criterion", "task judges on the held-out labels: the held-out batches have none")
            truth = torch.as_tensor(targets)
            self.metric.update(predicted, truth)
            self.images.append(per_image(self.task.meter, predicted, truth))

    @property
    def agreement(self) -> float | None:
        """Share of predictions equal to the QANN's (None without a task)."""
        return None if self.agreement_meter is None else self.agreement_meter.compute()["agreement"]

    def compute(self, output_error: float) -> HeldOutScore:
        """The score, given the mean squared difference of all outputs to the QANN's (the "mse" figure)."""
        if self.criterion == "mse":
            figure = -output_error
        elif self.criterion == "agreement":
            figure = self.agreement
        else:
            figure = next(iter(self.metric.compute().values()))
        return HeldOutScore(figure, torch.cat(self.images))
