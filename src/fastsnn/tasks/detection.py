"""Object detection with YOLOv2 heads: loss, distillation loss, decoding with NMS, mAP, and box agreement.

The network's output (for an SNN: its average over T, the analog readout) is decoded outside the network:
boxes from :mod:`.yolo_coding`, score = objectness x best class probability, candidates above
``score_threshold``, per-class NMS (``torchvision.ops.batched_nms``), at most :data:`MAX_DETECTIONS` per
image. Predictions are padded ``[B, MAX_DETECTIONS, 6]`` rows ``(x1, y1, x2, y2, score, label)`` (padding
-1), targets padded ``[B, MAX_OBJECTS, 5]`` rows ``(label, x1, y1, x2, y2)`` (:mod:`fastsnn.tasks.boxes`).

mAP is ``torchmetrics``' ``MeanAveragePrecision`` (COCO protocol, ``faster_coco_eval`` backend) with up to
:data:`MAX_DETECTIONS` detections per image: COCO's default of 100 would cap the recall of dense scenes
(a perfect prediction of an image with 574 trees scores 0.18). Box agreement with a reference network is
the mAP@0.5 of this network's detections scored against the reference's detections of score at least
:data:`REFERENCE_SCORE` taken as ground truth.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch
from torch.nn import functional as F
from torch.utils.data import Dataset

from ..errors import DataError
from .anchors import VOC_ANCHORS, box_sizes, kmeans_anchors
from .boxes import MAX_OBJECTS, PADDING, objects_of
from .classification import soft_divergence
from .yolo_coding import assign, decode_boxes, paired_iou, split_output

if TYPE_CHECKING:
    from fastsnn.data import DatasetInfo

MAX_DETECTIONS = MAX_OBJECTS
ANCHOR_ITEMS = 5000  # training items whose boxes k-means clusters into anchors
REFERENCE_SCORE = 0.25  # a reference detection at least this confident counts as ground truth for agreement
# YOLOv2's loss weights: objectness of positives, objectness of negatives, box offsets, classes
OBJECT_SCALE, NO_OBJECT_SCALE, COORD_SCALE, CLASS_SCALE = 5.0, 1.0, 1.0, 1.0


class Detection:
    """Outputs ``[B, A*(5+C), h, w]`` of a YOLOv2 head, targets ``[B, MAX_OBJECTS, 5]`` padded boxes.

    ``anchors``: ``A`` (width, height) pairs in grid cells of ``stride`` pixels (the model's option).
    """

    name = "detection"
    metrics = ("mAP@0.5", "mAP@[.5:.95]")
    agreement_unit = f"boxes (mAP@0.5 against the QANN's detections of score >= {REFERENCE_SCORE})"
    model_options = ("anchors",)  # the model options the task needs (fastsnn.workflows.checkpoint.ModelSpec.task)

    def __init__(
        self,
        num_classes: int,
        *,
        anchors: Sequence[Sequence[float]] = VOC_ANCHORS,
        stride: int = 32,
        score_threshold: float = 0.005,
        iou_threshold: float = 0.45,
    ):
        self.num_classes = num_classes
        self.anchors = torch.tensor([[float(w), float(h)] for w, h in anchors], dtype=torch.float32)
        self.stride = stride
        self.score_threshold, self.iou_threshold = score_threshold, iou_threshold

    def prepare(self, train_set: Dataset, info: DatasetInfo) -> dict:
        """``{"anchors": [[w, h], ...]}`` in cells of :attr:`stride` pixels, as many as this task has: the data
        set's published ``info.anchors`` when it declares them, else k-means (:func:`.anchors.kmeans_anchors`)
        of the box sizes of the first :data:`ANCHOR_ITEMS` items of ``train_set``. Raises :class:`DataError`
        naming the data set when those items hold fewer boxes than anchors."""
        anchors = info.anchors
        if anchors is None:
            sizes = box_sizes(train_set, limit=ANCHOR_ITEMS)
            if sizes.shape[0] < len(self.anchors):
                raise DataError(
                    f"data set {info.name}: its first {min(ANCHOR_ITEMS, len(train_set))} training items hold "
                    f"{sizes.shape[0]} boxes, too few for k-means of {len(self.anchors)} anchors"
                )
            anchors = kmeans_anchors(sizes, count=len(self.anchors), stride=self.stride)
        return {"anchors": [[float(w), float(h)] for w, h in anchors]}

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """YOLOv2 loss, summed over predictions and averaged over images: squared error of the objectness
        to the (detached) IoU of the predicted box with its ground truth for positives and to 0 for
        predictions neither positive nor ignored, squared error of ``(σ(tx), σ(ty), tw, th)`` weighted by
        ``2 - box area / image area``, and cross-entropy over classes."""
        raw = split_output(output, len(self.anchors), self.num_classes)
        batch, _, height, width = raw.shape[:4]
        assignment = assign(target.to(raw), self.anchors, stride=self.stride, grid=(height, width))
        objectness = torch.sigmoid(raw[..., 4])
        negative = ~(assignment.positive | assignment.ignore)
        positive = raw[assignment.positive]  # [P, 5+C], in the order of assignment.boxes
        with torch.no_grad():
            predicted = decode_boxes(raw.detach(), self.anchors, stride=self.stride)[assignment.positive]
            overlap = paired_iou(predicted, assignment.boxes)
        box_area = (assignment.boxes[:, 2:] - assignment.boxes[:, :2]).prod(-1)
        box_weight = 2 - box_area / (height * width * self.stride**2)
        loss = (
            OBJECT_SCALE * (objectness[assignment.positive] - overlap).pow(2).sum()
            + NO_OBJECT_SCALE * objectness[negative].pow(2).sum()
            + COORD_SCALE * (box_weight * (_offsets(positive) - assignment.offsets).pow(2).sum(1)).sum()
            + CLASS_SCALE * F.cross_entropy(positive[:, 5:], assignment.labels, reduction="sum")
        )
        return loss / batch

    def distillation_loss(self, output: torch.Tensor, teacher_output: torch.Tensor, temperature: float) -> torch.Tensor:
        """KD of a YOLOv2 output ``[B, A*(5+C), h, w]`` from a teacher's, on the scale of :meth:`loss` (summed
        over the B·A·h·w predictions, averaged over images): squared error of the objectness ``σ(to)`` to the
        teacher's; and, weighted by the teacher's objectness (so the boxes and classes of what it sees as
        objects count, not those of the background), the squared error of ``(σ(tx), σ(ty), tw, th)`` to the
        teacher's and the KD of the class logits (:func:`.classification.soft_divergence`, at ``temperature``)."""
        raw = split_output(output, len(self.anchors), self.num_classes)
        teacher = split_output(teacher_output.detach(), len(self.anchors), self.num_classes)
        teacher_objectness = torch.sigmoid(teacher[..., 4])
        classes = soft_divergence(raw[..., 5:].movedim(-1, 1), teacher[..., 5:].movedim(-1, 1), temperature)
        loss = (
            (torch.sigmoid(raw[..., 4]) - teacher_objectness).pow(2).sum()
            + (teacher_objectness * (_offsets(raw) - _offsets(teacher)).pow(2).sum(-1)).sum()
            + (teacher_objectness * classes).sum()
        )
        return loss / raw.shape[0]

    @torch.no_grad()
    def decode(self, output: torch.Tensor) -> torch.Tensor:
        """``[B, A*(5+C), h, w]`` -> detections ``[B, MAX_DETECTIONS, 6]`` rows ``(x1, y1, x2, y2, score,
        label)``, best first, padded with -1; boxes clipped to the ``h*stride`` x ``w*stride`` image."""
        from torchvision.ops import batched_nms, clip_boxes_to_image  # here: the library core loads no torchvision

        raw = split_output(output.float(), len(self.anchors), self.num_classes)
        height, width = raw.shape[2:4]
        image_size = (height * self.stride, width * self.stride)
        boxes = clip_boxes_to_image(decode_boxes(raw, self.anchors, stride=self.stride).flatten(1, 3), image_size)
        probabilities = torch.sigmoid(raw[..., 4:5]) * torch.softmax(raw[..., 5:], dim=-1)
        scores, labels = probabilities.flatten(1, 3).max(-1)
        detections = torch.full((raw.shape[0], MAX_DETECTIONS, 6), PADDING, device=output.device)
        for image in range(raw.shape[0]):
            candidates = (scores[image] >= self.score_threshold).nonzero(as_tuple=True)[0]
            found = boxes[image, candidates], scores[image, candidates], labels[image, candidates]
            keep = candidates[batched_nms(*found, self.iou_threshold)][:MAX_DETECTIONS]
            detections[image, : keep.numel(), :4] = boxes[image, keep]
            detections[image, : keep.numel(), 4] = scores[image, keep]
            detections[image, : keep.numel(), 5] = labels[image, keep].float()
        return detections

    def meter(self) -> DetectionMeter:
        return DetectionMeter()

    def agreement_meter(self) -> BoxAgreement:
        return BoxAgreement()


def _offsets(raw: torch.Tensor) -> torch.Tensor:
    """The fitted box offsets ``(σ(tx), σ(ty), tw, th)`` of predictions ``[..., 5+C]`` -> ``[..., 4]``."""
    return torch.cat((torch.sigmoid(raw[..., :2]), raw[..., 2:4]), dim=-1)


def detections_of(detections: torch.Tensor) -> dict[str, torch.Tensor]:
    """One image's padded detections ``[MAX_DETECTIONS, 6]`` as ``{"boxes" [n, 4], "scores" [n], "labels" [n]}``."""
    real = detections[:, 4] >= 0
    return {"boxes": detections[real, :4], "scores": detections[real, 4], "labels": detections[real, 5].long()}


class DetectionMeter:
    """mAP@0.5 and mAP@[.5:.95] of padded detections against padded targets, over all images seen."""

    def __init__(self):
        from torchmetrics.detection import MeanAveragePrecision  # imported here: a heavy import

        self.average_precision = MeanAveragePrecision(
            box_format="xyxy",
            iou_type="bbox",
            backend="faster_coco_eval",
            max_detection_thresholds=[1, 10, MAX_DETECTIONS],
        )

    def update(self, predictions: torch.Tensor, targets: torch.Tensor) -> None:
        found = [detections_of(p) for p in predictions.cpu()]
        truth = [dict(zip(("boxes", "labels"), objects_of(t), strict=True)) for t in torch.as_tensor(targets).cpu()]
        self.average_precision.update(found, truth)

    def compute(self) -> dict[str, float]:
        result = self.average_precision.compute()
        # torchmetrics reports -1 when no image had a ground-truth box: the figure is undefined
        defined = {key: float(result[key]) if float(result[key]) >= 0 else float("nan") for key in ("map_50", "map")}
        return {"mAP@0.5": defined["map_50"], "mAP@[.5:.95]": defined["map"]}


class BoxAgreement:
    """Box agreement: mAP@0.5 of detections against a reference's detections of score >= :data:`REFERENCE_SCORE`."""

    def __init__(self):
        self.meter = DetectionMeter()

    def update(self, predictions: torch.Tensor, reference: torch.Tensor) -> None:
        reference = reference.cpu()
        confident = reference[..., 4] >= REFERENCE_SCORE
        truth = torch.full((*reference.shape[:2], 5), PADDING)
        truth[..., 0] = torch.where(confident, reference[..., 5], PADDING)
        truth[..., 1:] = reference[..., :4]
        self.meter.update(predictions, truth)

    def compute(self) -> dict[str, float]:
        return {"agreement": self.meter.compute()["mAP@0.5"]}
