"""The synthetic scenes of :mod:`fastsnn.data.scenes` as a detection set: each item's box and class.

    train_set = load_scene_boxes("mnist", root, train=True, augment=True)
    image, target = train_set[0]            # float32 [1, 96, 96], float32 [MAX_OBJECTS, 5] rows (class, x1, y1, x2, y2)
    scene = train_set.scene(0)              # the full Scene, for pictures

Scene ``i`` is the same scene as in the segmentation set (same config, split and source); its objects are
the scene's boxes with labels ``class`` in 0..9 (the scene's ``class + 1`` minus one), in pasting order.
"""

from __future__ import annotations

import dataclasses
from functools import partial
from pathlib import Path

import torch

from fastsnn.data.fashion_mnist import fetch_fashion_mnist
from fastsnn.data.mnist import fetch_mnist
from fastsnn.data.registry import register_dataset
from fastsnn.data.scenes import SCENE_INFOS, SceneConfig, SceneSegmentation, scene_source
from fastsnn.data.transforms import image_transform
from fastsnn.tasks.boxes import pad_objects

# source -> its detection set: the scene segmentation set's images and statistics, 10 object classes
SCENE_DETECTION_INFOS = {
    source: dataclasses.replace(info, name=f"{info.name}-det", num_classes=10, task="detection")
    for source, info in SCENE_INFOS.items()
}


class SceneDetection(SceneSegmentation):
    """Scenes composed from one source split; items ``(image float32 [1, H, W], target float32 [MAX_OBJECTS, 5])``.

    Arguments and :meth:`scene` as for :class:`~fastsnn.data.scenes.SceneSegmentation`. ``augment`` (train only)
    flips image and boxes together horizontally with probability 1/2, drawn from torch's global generator: a box
    ``(x1, y1, x2, y2)`` becomes ``(W - x2, y1, W - x1, y2)``.
    """

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        scene = self.scene(index)
        image, boxes = scene.image, scene.boxes
        if self.augment and bool(torch.rand(()) < 0.5):
            width = image.shape[-1]
            image = image.flip(-1)
            boxes = torch.stack([width - boxes[:, 2], boxes[:, 1], width - boxes[:, 0], boxes[:, 3]], 1)
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
    :func:`~fastsnn.data.scenes.load_scenes` does, with the mean / std of the detection set
    (:data:`SCENE_DETECTION_INFOS`), which are the segmentation set's.
    """
    images, labels = scene_source(source, root, train=train)
    transform = image_transform(SCENE_DETECTION_INFOS[source])
    return SceneDetection(images, labels, train=train, config=config, transform=transform, augment=augment)


register_dataset(SCENE_DETECTION_INFOS["mnist"], load=partial(load_scene_boxes, "mnist"), fetch=fetch_mnist)
register_dataset(
    SCENE_DETECTION_INFOS["fashion-mnist"], load=partial(load_scene_boxes, "fashion-mnist"), fetch=fetch_fashion_mnist
)
