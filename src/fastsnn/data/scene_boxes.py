"""The synthetic scenes of :mod:`fastsnn.data.scenes` as a detection set: each item's box and class.

    train_set = load_scene_boxes("mnist", root, train=True, augment=True)
    image, target = train_set[0]            # float32 [1, 96, 96], float32 [MAX_OBJECTS, 5] rows (class, x1, y1, x2, y2)
    scene = train_set.scene(0)              # the full Scene, for pictures

Scene ``i`` is the same scene as in the segmentation set (same config, split and source); its objects are
the scene's boxes with labels ``class`` in 0..9 (the scene's ``class + 1`` minus one), in pasting order.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
from torch.utils.data import Dataset
from torchvision.transforms import v2

from fastsnn.data.scenes import Scene, SceneConfig, SceneSegmentation, normalising_transform, scene_source
from fastsnn.errors import DataError
from fastsnn.tasks.boxes import pad_objects

SCENE_DETECTION_DATASETS = {"mnist": "mnist-scenes-det", "fashion-mnist": "fashion-scenes-det"}  # source -> data set


class SceneDetection(Dataset):
    """Scenes composed from one source split; items ``(image float32 [1, H, W], target float32 [MAX_OBJECTS, 5])``.

    Arguments as for :class:`~fastsnn.data.scenes.SceneSegmentation`. ``augment`` (train only) flips image and
    boxes together horizontally with probability 1/2, drawn from torch's global generator: a box
    ``(x1, y1, x2, y2)`` becomes ``(W - x2, y1, W - x1, y2)``.
    """

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        *,
        train: bool,
        config: SceneConfig = SceneConfig(),  # noqa: B008 - frozen, so a shared default is safe
        transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
        augment: bool = False,
    ) -> None:
        if augment and not train:
            raise DataError("augment=True was asked for test scenes; augmentation applies to training data only.")
        self.scenes = SceneSegmentation(images, labels, train=train, config=config)
        self.transform = transform if transform is not None else v2.ToDtype(torch.float32, scale=True)
        self.augment = augment

    def __len__(self) -> int:
        return len(self.scenes)

    def scene(self, index: int) -> Scene:
        """The full :class:`~fastsnn.data.scenes.Scene` number ``index`` (negative indices count from the end)."""
        return self.scenes.scene(index)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        scene = self.scene(index)
        image, boxes = scene.image, scene.boxes
        if self.augment and bool(torch.rand(()) < 0.5):
            width = image.shape[-1]
            image, boxes = (
                image.flip(-1),
                torch.stack([width - boxes[:, 2], boxes[:, 1], width - boxes[:, 0], boxes[:, 3]], 1),
            )
        target = pad_objects(boxes, scene.labels - 1, where=f"scene {index}")
        return self.transform(image[None].contiguous()), target


def load_scene_boxes(
    source: str,
    root: str | Path | None = None,
    *,
    train: bool,
    augment: bool = False,
    config: SceneConfig = SceneConfig(),  # noqa: B008 - frozen, so a shared default is safe
) -> SceneDetection:
    """Scene boxes of ``source`` ("mnist" or "fashion-mnist") from that source's own train / test split.

    ``root`` is as for :func:`fastsnn.data.load_dataset`. Images are normalised exactly as
    :func:`~fastsnn.data.scenes.load_scenes` does, with the mean / std of the registered detection set
    (:data:`SCENE_DETECTION_DATASETS`), which equal the segmentation set's.
    """
    images, labels = scene_source(source, root, train=train)
    transform = normalising_transform(SCENE_DETECTION_DATASETS[source])
    return SceneDetection(images, labels, train=train, config=config, transform=transform, augment=augment)
