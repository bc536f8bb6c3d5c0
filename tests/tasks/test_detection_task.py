"""Detection task: YOLOv2 coding, loss, decoding with NMS, mAP, box agreement, k-means anchors."""

import math

import pytest
import torch

from fastsnn.tasks import create_task
from fastsnn.tasks.anchors import kmeans_anchors
from fastsnn.tasks.boxes import MAX_OBJECTS, pad_objects
from fastsnn.tasks.detection import (
    CLASS_SCALE,
    COORD_SCALE,
    MAX_DETECTIONS,
    NO_OBJECT_SCALE,
    OBJECT_SCALE,
    REFERENCE_SCORE,
    BoxAgreement,
    DetectionMeter,
)
from fastsnn.tasks.yolo_coding import assign, split_output

ANCHORS = ((1.0, 1.0), (2.0, 3.0))
STRIDE = 32


def targets_of(*images):
    """Padded targets ``[B, MAX_OBJECTS, 5]`` from per-image lists of (label, x1, y1, x2, y2)."""
    rows = []
    for objects in images:
        objects = torch.tensor(objects, dtype=torch.float32).view(-1, 5)
        rows.append(pad_objects(objects[:, 1:], objects[:, 0], where="test image"))
    return torch.stack(rows)


def ideal_output(targets, *, num_classes, grid=(4, 4), confidence=30.0):
    """The output ``[B, A*(5+C), h, w]`` whose decoding reproduces ``targets`` exactly (one box per cell/anchor)."""
    assignment = assign(targets, torch.tensor(ANCHORS), stride=STRIDE, grid=grid)
    output = torch.zeros(targets.shape[0], len(ANCHORS) * (5 + num_classes), *grid)
    raw = split_output(output, len(ANCHORS), num_classes)  # a view: writing raw writes output
    raw[..., 4] = -confidence
    chosen = torch.zeros(assignment.labels.shape[0], 5 + num_classes)
    chosen[:, :2] = torch.logit(assignment.offsets[:, :2].double()).float()
    chosen[:, 2:4] = assignment.offsets[:, 2:]
    chosen[:, 4] = confidence
    chosen[torch.arange(chosen.shape[0]), 5 + assignment.labels] = confidence
    raw[assignment.positive] = chosen
    return output


def test_assignment_picks_the_cell_of_the_centre_and_the_best_shaped_anchor():
    # a 64 x 96 px box (2 x 3 cells: anchor 1's shape) centred at (2.25, 1.75) cells
    box = (72 - 32, 56 - 48, 72 + 32, 56 + 48)
    targets = targets_of([(1, *box)])
    assignment = assign(targets, torch.tensor(ANCHORS), stride=STRIDE, grid=(4, 4))
    assert assignment.positive.nonzero().tolist() == [[0, 1, 1, 2]]
    assert torch.allclose(assignment.offsets, torch.tensor([[0.25, 0.75, 0.0, 0.0]]))
    assert assignment.labels.tolist() == [1]
    # anchor 0 (1 x 1 cells) overlaps the box's shape by 1/6 < 0.5: not ignored
    assert not assignment.ignore.any()


def test_assignment_ignores_other_anchors_of_high_shape_overlap_and_keeps_the_last_of_two_boxes():
    anchors = torch.tensor([(2.0, 2.0), (2.0, 2.5)])  # shape IoU 0.8
    first, second = (0, 10, 10, 70, 70), (2, 12, 12, 72, 72)  # same cell, same best anchor
    assignment = assign(targets_of([first, second]), anchors, stride=STRIDE, grid=(3, 3))
    assert assignment.positive.sum() == 1 and assignment.labels.tolist() == [2]
    assert assignment.ignore.nonzero().tolist() == [[0, 1, 1, 1]]


def test_decoding_inverts_encoding_boxes_labels_and_scores():
    task = create_task("detection", num_classes=3, anchors=ANCHORS)
    targets = targets_of([(1, 40, 8, 104, 104), (0, 3, 5, 30, 37)], [(2, 70, 60, 100, 120)])
    detections = task.decode(ideal_output(targets, num_classes=3))
    assert detections.shape == (2, MAX_DETECTIONS, 6)
    for image, expected in enumerate(([(0, 3, 5, 30, 37), (1, 40, 8, 104, 104)], [(2, 70, 60, 100, 120)])):
        found = detections[image][detections[image, :, 4] >= 0]
        assert found.shape[0] == len(expected)
        found = found[found[:, 5].argsort()]
        assert torch.allclose(found[:, :4], torch.tensor(expected, dtype=torch.float32)[:, 1:], atol=1e-3)
        assert found[:, 5].tolist() == [row[0] for row in expected]
        assert bool((found[:, 4] > 0.999).all())
        assert bool((detections[image][found.shape[0] :] == -1).all())


def test_nms_merges_overlapping_boxes_of_one_class_only():
    task = create_task("detection", num_classes=2, anchors=ANCHORS)
    same = targets_of([(0, 10, 10, 40, 40), (0, 40, 40, 104, 136)])
    output = ideal_output(same, num_classes=2)
    raw = split_output(output, 2, 2)
    raw[0, 0, 0, 1] = raw[0, 0, 0, 0]  # the neighbouring cell predicts the same box shifted by a cell
    raw[0, 0, 0, 1, 0] -= 1e3  # ... pushed back by its σ(tx) = 0 to overlap the first box
    detections = task.decode(output)[0]
    assert int((detections[:, 4] >= 0).sum()) == 2  # the near-duplicate was suppressed
    raw[0, 0, 0, 1, 5:] = torch.tensor([-30.0, 30.0])  # the near-duplicate now says class 1: kept
    assert int((task.decode(output)[0][:, 4] >= 0).sum()) == 3


def test_loss_is_lower_for_the_correct_prediction_than_for_a_shifted_one():
    task = create_task("detection", num_classes=3, anchors=ANCHORS)
    targets = targets_of([(1, 40, 8, 104, 104), (0, 3, 5, 30, 37)])
    correct = ideal_output(targets, num_classes=3, confidence=4.0)
    shifted = correct.clone()
    raw = split_output(shifted, 2, 3)
    raw[..., 0] += 1.5  # every centre moved
    assert task.loss(correct, targets) < task.loss(shifted, targets)
    wrong_class = correct.clone()
    split_output(wrong_class, 2, 3)[..., 5:] = split_output(correct, 2, 3)[..., 5:].roll(1, dims=-1)
    assert task.loss(correct, targets) < task.loss(wrong_class, targets)
    correct.requires_grad_(True)
    task.loss(correct, targets).backward()
    assert torch.isfinite(correct.grad).all() and correct.grad.abs().sum() > 0


# A 3 x 3 grid of 32 px cells (a 96 x 96 image), anchors of 2 x 2 and 2 x 2.5 cells, 2 classes, 2 images.
# Image 0: a 60 x 84 px box of class 1 centred at (56, 48) px, in cell (row 1, column 1): anchor 1 answers
# (shape IoU 0.90) and anchor 0 (shape IoU 0.73 > 0.5) is ignored there. Image 1: a 30 x 36 px box of class 0
# centred at (80, 20) px, in cell (row 0, column 2): anchor 0 answers (0.26), anchor 1 (0.21) stays negative.
HAND_ANCHORS = ((2.0, 2.0), (2.0, 2.5))
HAND_POSITIVES = [((0, 1, 1, 1), (26.0, 6.0, 86.0, 90.0), 1), ((1, 0, 0, 2), (65.0, 2.0, 95.0, 38.0), 0)]
HAND_IGNORED = (0, 0, 1, 1)  # (image, anchor, row, column)


def yolo_loss_by_hand(output):
    """YOLOv2's loss of ``output [2, 2*7, 3, 3]`` for the targets of :data:`HAND_POSITIVES`, term by term."""
    objectness = torch.sigmoid(output[:, [4, 11]])  # [B, A, h, w]: channel 4 of each anchor's 7
    negative = torch.ones_like(objectness, dtype=torch.bool)
    negative[HAND_IGNORED] = False
    object_term = coordinate_term = class_term = 0.0
    for (image, anchor, row, column), (x1, y1, x2, y2), label in HAND_POSITIVES:
        negative[image, anchor, row, column] = False
        tx, ty, tw, th, to, *logits = output[image, 7 * anchor : 7 * anchor + 7, row, column]
        (pw, ph), sx, sy = HAND_ANCHORS[anchor], torch.sigmoid(tx), torch.sigmoid(ty)
        with torch.no_grad():  # the objectness target: IoU of the predicted box with the ground truth
            cx, cy = (column + sx) * STRIDE, (row + sy) * STRIDE
            w, h = pw * torch.exp(tw) * STRIDE, ph * torch.exp(th) * STRIDE
            overlap_w = ((cx + w / 2).clamp(max=x2) - (cx - w / 2).clamp(min=x1)).clamp(min=0)
            overlap_h = ((cy + h / 2).clamp(max=y2) - (cy - h / 2).clamp(min=y1)).clamp(min=0)
            iou = overlap_w * overlap_h / (w * h + (x2 - x1) * (y2 - y1) - overlap_w * overlap_h)
            assert iou > 0.1, "the case must exercise the IoU target"
        object_term = object_term + (torch.sigmoid(to) - iou) ** 2
        fitted = ((x1 + x2) / 2 / STRIDE - column, (y1 + y2) / 2 / STRIDE - row)
        fitted += (math.log((x2 - x1) / (pw * STRIDE)), math.log((y2 - y1) / (ph * STRIDE)))
        squared = (sx - fitted[0]) ** 2 + (sy - fitted[1]) ** 2 + (tw - fitted[2]) ** 2 + (th - fitted[3]) ** 2
        coordinate_term = coordinate_term + (2 - (x2 - x1) * (y2 - y1) / 96**2) * squared
        class_term = class_term - torch.log_softmax(torch.stack(logits), 0)[label]
    assert int(negative.sum()) == 2 * 2 * 3 * 3 - 3
    no_object_term = objectness[negative].pow(2).sum()
    return (
        OBJECT_SCALE * object_term
        + NO_OBJECT_SCALE * no_object_term
        + COORD_SCALE * coordinate_term
        + CLASS_SCALE * class_term
    ) / 2  # averaged over the 2 images


def test_loss_and_its_gradient_equal_yolov2s_loss_computed_by_hand():
    task = create_task("detection", num_classes=2, anchors=HAND_ANCHORS)
    targets = targets_of(*([(label, *box)] for _, box, label in HAND_POSITIVES))  # one box per image, in order
    output = 0.5 * torch.randn(2, 2 * 7, 3, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    by_hand, computed = output.clone().requires_grad_(True), output.clone().requires_grad_(True)
    expected, loss = yolo_loss_by_hand(by_hand), task.loss(computed, targets)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-12)
    expected.backward()
    loss.backward()
    assert torch.allclose(computed.grad, by_hand.grad, rtol=1e-10, atol=1e-12), "the IoU target must be detached"


def detections_from(targets, score=0.9, shift=0.0):
    """Padded detections ``[B, MAX_DETECTIONS, 6]`` that repeat ``targets``' boxes, moved by ``shift`` px."""
    detections = torch.full((targets.shape[0], MAX_DETECTIONS, 6), -1.0)
    real = targets[..., 0] >= 0
    detections[:, :MAX_OBJECTS, :4] = torch.where(real[..., None], targets[..., 1:] + shift, -1.0)
    detections[:, :MAX_OBJECTS, 4] = torch.where(real, score, -1.0)
    detections[:, :MAX_OBJECTS, 5] = torch.where(real, targets[..., 0], -1.0)
    return detections


def dense_tile(count=150, seed=0):
    generator = torch.Generator().manual_seed(seed)
    corner = torch.rand(count, 2, generator=generator) * 280
    boxes = torch.cat((corner, corner + 10 + torch.rand(count, 2, generator=generator) * 30), dim=1)
    return pad_objects(boxes, torch.zeros(count), where="dense tile")[None]


def test_map_of_a_perfect_prediction_is_one_even_on_a_dense_tile_and_lower_when_shifted():
    for targets in (targets_of([(1, 40, 8, 104, 104), (0, 3, 5, 30, 37)]), dense_tile()):
        perfect, shifted = DetectionMeter(), DetectionMeter()
        perfect.update(detections_from(targets), targets)
        shifted.update(detections_from(targets, shift=6.0), targets)
        assert perfect.compute() == {"mAP@0.5": 1.0, "mAP@[.5:.95]": 1.0}
        assert shifted.compute()["mAP@[.5:.95]"] < 0.9


def test_box_agreement_is_one_for_identical_detections_and_counts_only_confident_reference_boxes():
    targets = dense_tile(count=20)
    reference = detections_from(targets)
    reference[0, 10:20, 4] = REFERENCE_SCORE / 2  # unconfident: not ground truth for agreement
    same = BoxAgreement()
    same.update(reference, reference)
    assert same.compute() == {"agreement": 1.0}
    missing = reference.clone()
    missing[0, :5] = -1.0  # five confident reference boxes not found
    partial = BoxAgreement()
    partial.update(missing, reference)
    assert partial.compute()["agreement"] == pytest.approx(0.5, abs=0.02)


def test_kmeans_recovers_well_separated_box_shapes_in_grid_cells():
    generator = torch.Generator().manual_seed(0)
    shapes = torch.tensor([[16.0, 16.0], [64.0, 32.0], [96.0, 160.0]])
    sizes = shapes.repeat_interleave(50, 0) * (1 + 0.02 * torch.randn(150, 2, generator=generator))
    anchors = kmeans_anchors(sizes, count=3, stride=32)
    assert torch.allclose(torch.tensor(anchors), shapes / 32, rtol=0.02)
    assert all(math.prod(a) <= math.prod(b) for a, b in zip(anchors, anchors[1:], strict=False))
    with pytest.raises(ValueError, match="at least 5 boxes"):
        kmeans_anchors(sizes[:3], count=5)
