"""Detection task: YOLOv2 coding, loss, decoding with NMS, mAP, box agreement, k-means anchors."""

import math

import pytest
import torch

from fastsnn.tasks import create_task
from fastsnn.tasks.anchors import kmeans_anchors
from fastsnn.tasks.boxes import MAX_OBJECTS, pad_objects
from fastsnn.tasks.detection import MAX_DETECTIONS, REFERENCE_SCORE, BoxAgreement, DetectionMeter
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
