"""Static facts about a data set: shape, classes, normalisation, task."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DatasetInfo:
    """What a model needs to know about a data set.

    Images are ``[in_channels, image_size, image_size]`` after the data set's
    transform; ``mean``/``std`` (one value per channel, on the [0, 1] pixel
    scale) are what :func:`fastsnn.data.load_dataset` normalises with.
    ``anchors``: a detection set's published YOLOv2 anchors ``((w, h), ...)`` in
    32-pixel cells, which :meth:`fastsnn.tasks.Detection.prepare` takes instead of
    k-means of the training boxes; ``None`` when the set publishes none.
    """

    name: str
    in_channels: int
    num_classes: int
    image_size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    # what the targets are: class indices, per-pixel class masks ("segmentation"), or boxes ("detection",
    # padded [MAX_OBJECTS, 5] rows of fastsnn.tasks.boxes; num_classes counts object classes, no background)
    task: str = "classification"
    anchors: tuple[tuple[float, float], ...] | None = None


IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
