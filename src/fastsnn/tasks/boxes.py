"""Detection targets as fixed-size tensors, so that the default DataLoader collation batches them.

An item of a detection data set is ``(image float32 [C, H, W], target float32 [MAX_OBJECTS, 5])``. Row
``k`` of ``target`` is ``(label, x1, y1, x2, y2)``: class index ``label`` in ``0..num_classes - 1`` and
the box corners in pixels of the returned image (pixel-edge coordinates: column ``c`` spans
``[c, c + 1)``). Rows past the image's objects are padding, all ``-1`` (:data:`PADDING`). A fixed size
(rather than a list of dicts) keeps training, evaluation and fine-tuning task-generic: targets batch to
``[B, MAX_OBJECTS, 5]`` and move with ``.to(device)`` like class indices or masks.

    target = pad_objects(boxes, labels, where="tile 3 of trees")     # [MAX_OBJECTS, 5]
    boxes, labels = objects_of(target)                              # [n, 4] float32, [n] int64
"""

from __future__ import annotations

import torch

from fastsnn.errors import DataError

MAX_OBJECTS = 300  # per image; COCO's densest images hold under 100, a 320-px tree tile under 60
PADDING = -1.0


def pad_objects(boxes: torch.Tensor, labels: torch.Tensor, *, where: str) -> torch.Tensor:
    """``boxes [n, 4]`` xyxy pixels and ``labels [n]`` -> ``target [MAX_OBJECTS, 5]``; ``where`` names the
    image in the :class:`DataError` raised when it holds more than :data:`MAX_OBJECTS` objects."""
    count = int(boxes.shape[0])
    if count > MAX_OBJECTS:
        raise DataError(f"{where} holds {count} objects; fastsnn takes at most {MAX_OBJECTS} per image")
    target = torch.full((MAX_OBJECTS, 5), PADDING, dtype=torch.float32)
    target[:count, 0] = labels.to(torch.float32)
    target[:count, 1:] = boxes.to(torch.float32)
    return target


def objects_of(target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The objects of one padded ``target [MAX_OBJECTS, 5]``: ``boxes [n, 4]`` float32, ``labels [n]`` int64."""
    real = target[:, 0] >= 0
    return target[real, 1:], target[real, 0].to(torch.int64)


def check_objects(
    boxes: torch.Tensor, labels: torch.Tensor, *, width: int, height: int, num_classes: int, where: str
) -> None:
    """Raise :class:`DataError` naming ``where`` and the object's index for a box outside the
    ``width`` x ``height`` image, a box of non-positive width or height, or a label outside
    ``0..num_classes - 1``."""
    for k in range(int(boxes.shape[0])):
        x1, y1, x2, y2 = (float(v) for v in boxes[k])
        label = int(labels[k])
        if not 0 <= label < num_classes:
            raise DataError(f"{where}: object {k} has class {label}, outside 0..{num_classes - 1}")
        if not (x2 > x1 and y2 > y1):
            raise DataError(f"{where}: object {k} has a box of non-positive size ({x1}, {y1}, {x2}, {y2})")
        if x1 < 0 or y1 < 0 or x2 > width or y2 > height:
            raise DataError(
                f"{where}: object {k} has a box ({x1}, {y1}, {x2}, {y2}) outside its {width}x{height} image"
            )
