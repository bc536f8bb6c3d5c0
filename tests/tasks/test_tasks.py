"""Tasks: model options from the training set, losses, decoding and metrics, checked against direct computations."""

import json

import pytest
import torch
from torch.utils.data import Dataset

from fastsnn.data import DatasetInfo, dataset_info
from fastsnn.errors import DataError
from fastsnn.tasks import Classification, Detection, Segmentation, create_task, detection
from fastsnn.tasks.anchors import VOC_ANCHORS, box_sizes, kmeans_anchors
from fastsnn.tasks.boxes import pad_objects
from fastsnn.tasks.segmentation import IGNORE_INDEX


def confusion_miou(predictions: torch.Tensor, targets: torch.Tensor, num_classes: int) -> float:
    """VOC mIoU by hand: one confusion matrix over valid pixels, IoU per class present in either, mean."""
    valid = targets != IGNORE_INDEX
    confusion = torch.zeros(num_classes, num_classes, dtype=torch.long)
    for truth, guess in zip(targets[valid].tolist(), predictions[valid].tolist(), strict=True):
        confusion[truth, guess] += 1
    ious = []
    for c in range(num_classes):
        tp, fp, fn = confusion[c, c], confusion[:, c].sum() - confusion[c, c], confusion[c, :].sum() - confusion[c, c]
        if tp + fp + fn > 0:
            ious.append(tp.item() / (tp + fp + fn).item())
    return sum(ious) / len(ious)


def test_miou_equals_a_hand_computed_confusion_matrix_with_ignored_pixels():
    targets = torch.tensor([[[0, 0, 1, 1], [2, 2, IGNORE_INDEX, 1]]])
    predictions = torch.tensor([[[0, 1, 1, 1], [2, 0, 3, 1]]])  # the 3 falls on an ignored pixel: it counts nowhere
    # class 0: TP 1, FP 1, FN 1 -> 1/3; class 1: TP 3, FP 1 -> 3/4; class 2: TP 1, FN 1 -> 1/2; class 3: absent
    meter = Segmentation(4).meter()
    meter.update(predictions, targets)
    figures = meter.compute()
    assert figures["mIoU"] == pytest.approx((1 / 3 + 3 / 4 + 1 / 2) / 3)
    assert figures["pixel accuracy"] == pytest.approx(5 / 7)


@pytest.mark.parametrize("seed", range(3))
def test_metrics_accumulate_over_batches_exactly_as_over_one_batch(seed):
    generator = torch.Generator().manual_seed(seed)
    num_classes = 5
    targets = torch.randint(0, num_classes, (12, 9, 7), generator=generator)
    targets[torch.rand(targets.shape, generator=generator) < 0.1] = IGNORE_INDEX
    predictions = torch.where(
        torch.rand(targets.shape, generator=generator) < 0.6,
        targets,
        torch.randint(0, num_classes, targets.shape, generator=generator),
    )
    predictions[predictions == IGNORE_INDEX] = 0
    whole, batched = Segmentation(num_classes).meter(), Segmentation(num_classes).meter()
    whole.update(predictions, targets)
    for part in range(0, 12, 5):
        batched.update(predictions[part : part + 5], targets[part : part + 5])
    assert batched.compute() == pytest.approx(whole.compute())
    assert whole.compute()["mIoU"] == pytest.approx(confusion_miou(predictions, targets, num_classes))
    per_image = (
        sum(confusion_miou(p[None], t[None], num_classes) for p, t in zip(predictions, targets, strict=True)) / 12
    )
    assert whole.compute()["mIoU"] != pytest.approx(per_image), "one confusion matrix, not a mean of per-image scores"


def test_segmentation_loss_ignores_pixels_and_decoding_is_per_pixel():
    task = create_task("segmentation", num_classes=3)
    scores = torch.randn(2, 3, 4, 5, requires_grad=True)
    targets = torch.randint(0, 3, (2, 4, 5))
    ignored = targets.clone()
    ignored[:, 0] = IGNORE_INDEX
    task.loss(scores, ignored).backward()
    assert torch.all(scores.grad[:, :, 0] == 0) and torch.any(scores.grad[:, :, 1:] != 0)
    assert torch.equal(task.decode(scores), scores.argmax(1)) and task.decode(scores).shape == (2, 4, 5)


def test_agreement_counts_images_for_classification_and_pixels_for_segmentation():
    classification = Classification().agreement_meter()
    classification.update(torch.tensor([1, 2, 3, 4]), torch.tensor([1, 2, 0, 0]))
    assert classification.compute() == {"agreement": 0.5}
    segmentation = Segmentation(3).agreement_meter()
    segmentation.update(torch.tensor([[[0, 1], [2, 2]]]), torch.tensor([[[0, 1], [2, 0]]]))
    assert segmentation.compute() == {"agreement": 0.75}


def test_unknown_task_is_refused():
    with pytest.raises(ValueError, match="unknown task 'depth'"):
        create_task("depth", num_classes=2)


class RandomBoxes(Dataset):
    """A detection set of ``len(counts)`` blank 1 x 64 x 64 images; item ``i`` holds ``counts[i]`` random boxes of
    4..60 px, all from ``seed``."""

    def __init__(self, counts, *, seed=0):
        generator = torch.Generator().manual_seed(seed)
        self.targets = []
        for count in counts:
            corners = torch.rand(count, 2, generator=generator) * 4
            sizes = 4 + torch.rand(count, 2, generator=generator) * 56
            labels = torch.randint(0, 2, (count,), generator=generator)
            boxes = torch.cat((corners, corners + sizes), 1)
            self.targets.append(pad_objects(boxes, labels, where=f"random image {len(self.targets)}"))

    def __len__(self):
        return len(self.targets)

    def __getitem__(self, index):
        return torch.zeros(1, 64, 64), self.targets[index]


class Unreadable(Dataset):
    """A training set that must not be read."""

    def __len__(self):
        return 10

    def __getitem__(self, index):
        raise AssertionError("the task read the training set")


BOXES = DatasetInfo("boxes", 1, 2, 64, (0.5,), (0.25,), "detection")


def as_json(anchors):
    return [[float(w), float(h)] for w, h in anchors]


@pytest.mark.parametrize("task", [Classification(10), Segmentation(3)])
def test_classification_and_segmentation_derive_no_model_options_and_read_nothing(task):
    assert task.prepare(Unreadable(), dataset_info("mnist")) == {}


@pytest.mark.parametrize("anchors", [VOC_ANCHORS, ((1.0, 1.0), (2.5, 4.0), (6.0, 3.0))])
def test_detection_anchors_are_the_k_means_of_the_training_boxes(anchors):
    train_set = RandomBoxes([3, 0, 2, 4, 1, 3, 2, 4])
    task = create_task("detection", num_classes=2, anchors=anchors)
    prepared = task.prepare(train_set, BOXES)
    expected = kmeans_anchors(box_sizes(train_set), count=len(anchors), stride=32)
    assert prepared == {"anchors": as_json(expected)} and len(prepared["anchors"]) == len(anchors)
    assert json.loads(json.dumps(prepared)) == prepared  # recorded in checkpoints as JSON


def test_detection_anchors_cluster_the_first_anchor_items_only(monkeypatch):
    monkeypatch.setattr(detection, "ANCHOR_ITEMS", 6)
    train_set = RandomBoxes([2] * 10, seed=1)
    prepared = Detection(2).prepare(train_set, BOXES)
    assert prepared == {"anchors": as_json(kmeans_anchors(box_sizes(train_set, limit=6)))}
    assert prepared != {"anchors": as_json(kmeans_anchors(box_sizes(train_set, limit=10)))}


def test_a_data_set_that_declares_anchors_gets_exactly_those():
    declared = ((0.5, 0.75), (3.0, 2.0))
    info = DatasetInfo("published", 3, 2, 64, (0.5,) * 3, (0.25,) * 3, "detection", anchors=declared)
    assert Detection(2).prepare(Unreadable(), info) == {"anchors": [[0.5, 0.75], [3.0, 2.0]]}
    voc = dataset_info("voc-det")
    assert voc.anchors == VOC_ANCHORS
    assert Detection(voc.num_classes).prepare(Unreadable(), voc) == {"anchors": as_json(VOC_ANCHORS)}


def test_too_few_boxes_for_the_anchors_name_the_data_set():
    with pytest.raises(DataError, match=r"^data set boxes: its first 3 training items hold 4 boxes, too few") as caught:
        Detection(2).prepare(RandomBoxes([1, 0, 3]), BOXES)
    assert "\n" not in str(caught.value)
