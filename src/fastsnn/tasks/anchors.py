"""YOLOv2 anchors: k-means of the training boxes' sizes under the distance 1 - IoU (boxes centred together).

    sizes = box_sizes(train_set, limit=5000)            # [N, 2] widths and heights in pixels
    anchors = kmeans_anchors(sizes, count=5, stride=32)  # ((w, h), ...) in grid cells, smallest first

VOC declares its published anchors (:data:`VOC_ANCHORS`) in its ``DatasetInfo``; other data sets get theirs
from their training boxes (:meth:`fastsnn.tasks.Detection.prepare`) when a detection model is trained, and
the checkpoint records them.
"""

from __future__ import annotations

import torch
from torch.utils.data import Dataset

from .boxes import objects_of
from .yolo_coding import shape_iou

# YOLOv2's anchors for Pascal VOC (darknet's yolo-voc.cfg), in 32-pixel cells
VOC_ANCHORS = ((1.3221, 1.73145), (3.19275, 4.00944), (5.05587, 8.09892), (9.47112, 4.84053), (11.2364, 10.0071))


def box_sizes(dataset: Dataset, *, limit: int = 5000) -> torch.Tensor:
    """Widths and heights ``[N, 2]`` (pixels) of the boxes of the first ``limit`` items of a detection set."""
    sizes = []
    for index in range(min(limit, len(dataset))):
        boxes, _ = objects_of(dataset[index][1])
        sizes.append(boxes[:, 2:] - boxes[:, :2])
    return torch.cat(sizes) if sizes else torch.zeros(0, 2)


def kmeans_anchors(
    sizes: torch.Tensor, *, count: int = 5, stride: int = 32, iterations: int = 100, seed: int = 0
) -> tuple[tuple[float, float], ...]:
    """``count`` anchors (width, height in cells of ``stride`` pixels, by increasing area) clustering box
    ``sizes [N, 2]`` (pixels) by k-means with distance ``1 - IoU``, k-means++ initialisation from ``seed``,
    centres updated to their cluster's mean until they stop moving (at most ``iterations`` rounds)."""
    sizes = sizes.to(torch.float64)
    if sizes.shape[0] < count:
        raise ValueError(f"k-means of {count} anchors needs at least {count} boxes, got {sizes.shape[0]}")
    generator = torch.Generator().manual_seed(seed)
    centres = sizes[torch.randint(sizes.shape[0], (1,), generator=generator)]
    while centres.shape[0] < count:  # k-means++: the next centre drawn in proportion to its distance
        distance = (1 - shape_iou(sizes, centres)).min(1).values
        pick = torch.multinomial(distance.clamp(min=1e-12), 1, generator=generator)
        centres = torch.cat((centres, sizes[pick]))
    for _ in range(iterations):
        cluster = shape_iou(sizes, centres).argmax(1)
        updated = centres.clone()
        for k in range(count):
            members = sizes[cluster == k]
            if members.shape[0]:
                updated[k] = members.mean(0)
        if torch.allclose(updated, centres):
            break
        centres = updated
    centres = centres[centres.prod(1).argsort()] / stride
    return tuple((round(float(w), 4), round(float(h), 4)) for w, h in centres)
