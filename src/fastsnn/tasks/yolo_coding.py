"""YOLOv2's output coding: which prediction answers for which box, what it should output, and the way back.

A YOLOv2 network outputs ``[B, A*(5+C), h, w]`` on an ``h`` x ``w`` grid of cells ``stride`` pixels wide;
channels ``a*(5+C) : (a+1)*(5+C)`` of cell ``(i, j)`` are anchor ``a``'s ``(tx, ty, tw, th, to, C class
logits)``. With anchor ``a`` of size ``(pw, ph)`` in cells, the box is centred at
``((j + σ(tx)) · stride, (i + σ(ty)) · stride)``, of size ``(pw·e^tw · stride, ph·e^th · stride)``; its
objectness is ``σ(to)`` and its class probabilities ``softmax(class logits)``.

Target assignment: a ground-truth box is answered by the cell holding its centre and, there, by the anchor
whose shape (both centred) overlaps it best; other anchors of that cell whose shape IoU with the box is above
:data:`IGNORE_IOU` are ignored by the objectness loss (neither positive nor negative). When two boxes pick
the same cell and anchor, the one listed last in the target keeps it.

    assignment = assign(targets, anchors, stride=32, grid=(h, w))
    boxes = decode_boxes(split_output(output, num_anchors, num_classes), anchors, stride=32)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

IGNORE_IOU = 0.5
MAX_LOG_SCALE = math.log(64.0)  # tw, th above this (a box 64 anchors wide) are clamped when decoding


def split_output(output: torch.Tensor, num_anchors: int, num_classes: int) -> torch.Tensor:
    """``[B, A*(5+C), h, w]`` -> ``[B, A, h, w, 5+C]`` (a view-and-permute, no copy)."""
    batch, channels, height, width = output.shape
    if channels != num_anchors * (5 + num_classes):
        raise ValueError(
            f"a YOLO output with {num_anchors} anchors and {num_classes} classes has "
            f"{num_anchors * (5 + num_classes)} channels, this one has {channels}"
        )
    return output.view(batch, num_anchors, 5 + num_classes, height, width).permute(0, 1, 3, 4, 2)


def decode_boxes(raw: torch.Tensor, anchors: torch.Tensor, *, stride: int) -> torch.Tensor:
    """Boxes of every prediction: ``raw [B, A, h, w, 5+C]``, ``anchors [A, 2]`` in cells -> ``[B, A, h, w, 4]``
    xyxy in pixels."""
    height, width = raw.shape[2:4]
    rows = torch.arange(height, device=raw.device, dtype=raw.dtype).view(1, 1, height, 1)
    columns = torch.arange(width, device=raw.device, dtype=raw.dtype).view(1, 1, 1, width)
    anchors = anchors.to(raw).view(1, -1, 1, 1, 2)
    centre_x = (columns + torch.sigmoid(raw[..., 0])) * stride
    centre_y = (rows + torch.sigmoid(raw[..., 1])) * stride
    size = anchors * torch.exp(raw[..., 2:4].clamp(max=MAX_LOG_SCALE)) * stride
    return torch.stack(
        (
            centre_x - size[..., 0] / 2,
            centre_y - size[..., 1] / 2,
            centre_x + size[..., 0] / 2,
            centre_y + size[..., 1] / 2,
        ),
        dim=-1,
    )


def paired_iou(first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
    """IoU of ``first[k]`` with ``second[k]``: ``[..., 4]`` xyxy each -> ``[...]``.

    Written here because ``torchvision.ops.box_iou`` computes all N x M pairs, not N matched ones."""
    top_left = torch.maximum(first[..., :2], second[..., :2])
    bottom_right = torch.minimum(first[..., 2:], second[..., 2:])
    inter = (bottom_right - top_left).clamp(min=0).prod(-1)
    area = (first[..., 2:] - first[..., :2]).prod(-1) + (second[..., 2:] - second[..., :2]).prod(-1)
    return inter / (area - inter).clamp(min=1e-12)


def shape_iou(sizes: torch.Tensor, anchor_sizes: torch.Tensor) -> torch.Tensor:
    """IoU of boxes and anchors placed on the same centre: ``[N, 2]`` and ``[A, 2]`` sizes -> ``[N, A]``."""
    inter = torch.minimum(sizes[:, None, :], anchor_sizes[None, :, :]).prod(-1)
    return inter / (sizes.prod(-1)[:, None] + anchor_sizes.prod(-1)[None, :] - inter)


@dataclass
class Assignment:
    """Targets on the prediction grid ``[B, A, h, w]``.

    ``positive``/``ignore`` bool ``[B, A, h, w]``; for the positives, in the order of
    ``positive.nonzero()``: ``boxes [P, 4]`` xyxy pixels, ``labels [P]``, and ``offsets [P, 4]``, the
    ``(σ(tx), σ(ty), tw, th)`` that reproduce each box exactly.
    """

    positive: torch.Tensor
    ignore: torch.Tensor
    boxes: torch.Tensor
    labels: torch.Tensor
    offsets: torch.Tensor


def assign(targets: torch.Tensor, anchors: torch.Tensor, *, stride: int, grid: tuple[int, int]) -> Assignment:
    """YOLOv2 target assignment of padded targets ``[B, M, 5]`` (rows ``label, x1, y1, x2, y2``; label -1 =
    padding) to the predictions of ``anchors [A, 2]`` (cells) on a ``grid = (h, w)`` of ``stride``-pixel cells."""
    batch, num_anchors, (height, width) = targets.shape[0], anchors.shape[0], grid
    anchors = anchors.to(targets)
    image, index = (targets[..., 0] >= 0).nonzero(as_tuple=True)
    objects = targets[image, index]
    labels, boxes = objects[:, 0].long(), objects[:, 1:]
    centres = (boxes[:, :2] + boxes[:, 2:]) / 2
    sizes = (boxes[:, 2:] - boxes[:, :2]).clamp(min=1e-6)
    column = (centres[:, 0] / stride).floor().long().clamp(0, width - 1)
    row = (centres[:, 1] / stride).floor().long().clamp(0, height - 1)
    overlap = shape_iou(sizes, anchors * stride)  # [N, A]
    best = overlap.argmax(1)

    # one box per (image, anchor, cell): the last listed wins, deterministically
    cell_key = ((image * num_anchors + best) * height + row) * width + column
    order = torch.arange(cell_key.numel(), device=targets.device)
    _, slot = torch.unique(cell_key, return_inverse=True)
    last = torch.full((int(slot.max()) + 1 if slot.numel() else 0,), -1, dtype=torch.long, device=targets.device)
    last = last.scatter_reduce(0, slot, order, reduce="amax")
    kept = last[slot] == order

    shape = (batch, num_anchors, height, width)
    ignore = torch.zeros(shape, dtype=torch.bool, device=targets.device)
    near = (overlap > IGNORE_IOU).nonzero(as_tuple=True)  # (object, anchor) pairs
    ignore[image[near[0]], near[1], row[near[0]], column[near[0]]] = True
    positive = torch.zeros(shape, dtype=torch.bool, device=targets.device)
    positive[image[kept], best[kept], row[kept], column[kept]] = True
    ignore &= ~positive

    # reorder the kept objects to positive.nonzero() order (row-major over [B, A, h, w])
    chosen = kept.nonzero(as_tuple=True)[0][cell_key[kept].argsort()]
    offsets = torch.stack(
        (
            centres[chosen, 0] / stride - column[chosen],
            centres[chosen, 1] / stride - row[chosen],
            torch.log(sizes[chosen, 0] / (anchors[best[chosen], 0] * stride)),
            torch.log(sizes[chosen, 1] / (anchors[best[chosen], 1] * stride)),
        ),
        dim=1,
    )
    return Assignment(positive, ignore, boxes[chosen], labels[chosen], offsets)
