"""Name -> loader dispatch: :func:`load_dataset` and :func:`fetch_dataset`."""

from __future__ import annotations

from functools import partial
from pathlib import Path

from torch.utils.data import Dataset

from fastsnn.data.detection_sets import fetch_coco, fetch_voc_detection, load_coco, load_voc_detection
from fastsnn.data.fashion_mnist import fetch_fashion_mnist, load_fashion_mnist
from fastsnn.data.info import dataset_info
from fastsnn.data.mnist import fetch_mnist, load_mnist
from fastsnn.data.root import resolve_root
from fastsnn.data.scene_boxes import load_scene_boxes
from fastsnn.data.scenes import load_scenes
from fastsnn.data.segmentation_sets import (
    fetch_cityscapes,
    fetch_voc_segmentation,
    load_cityscapes,
    load_voc_segmentation,
)
from fastsnn.data.torchvision_sets import fetch_cifar, fetch_image_folder, load_cifar, load_image_folder
from fastsnn.data.transforms import image_transform, refuse_test_augment
from fastsnn.data.trees import fetch_trees, load_trees

_LOADERS = {
    "mnist": load_mnist,
    "fashion-mnist": load_fashion_mnist,
    "cifar10": partial(load_cifar, "cifar10"),
    "cifar100": partial(load_cifar, "cifar100"),
    "imagenet": load_image_folder,
}
# segmentation and detection sets apply their own joint image/target transforms: loader(root, train=, augment=)
_JOINT_LOADERS = {
    "mnist-scenes": partial(load_scenes, "mnist"),
    "fashion-scenes": partial(load_scenes, "fashion-mnist"),
    "voc-seg": load_voc_segmentation,
    "cityscapes": load_cityscapes,
    "mnist-scenes-det": partial(load_scene_boxes, "mnist"),
    "fashion-scenes-det": partial(load_scene_boxes, "fashion-mnist"),
    "trees": load_trees,
    "voc-det": load_voc_detection,
    "coco": load_coco,
}
_FETCHERS = {
    "mnist": fetch_mnist,
    "fashion-mnist": fetch_fashion_mnist,
    "cifar10": partial(fetch_cifar, "cifar10"),
    "cifar100": partial(fetch_cifar, "cifar100"),
    "imagenet": fetch_image_folder,
    "mnist-scenes": fetch_mnist,  # scenes are composed on the fly from the source's items
    "fashion-scenes": fetch_fashion_mnist,
    "voc-seg": fetch_voc_segmentation,
    "cityscapes": fetch_cityscapes,
    "mnist-scenes-det": fetch_mnist,
    "fashion-scenes-det": fetch_fashion_mnist,
    "trees": fetch_trees,
    "voc-det": fetch_voc_detection,
    "coco": fetch_coco,
}


def load_dataset(name: str, *, train: bool, root: str | Path | None = None, augment: bool = False) -> Dataset:
    """One split of data set ``name``; items ``(image float32 [C, H, W], label int)``, for a segmentation
    set ``(image float32 [C, H, W], mask int64 [H, W])``, for a detection set ``(image float32 [C, H, W],
    boxes float32 [MAX_OBJECTS, 5])`` (:mod:`fastsnn.tasks.boxes`).

    Images are normalised with ``dataset_info(name).mean/std``. ``augment``
    (training split only) adds the data set's random crops/flips. ``root``
    defaults to :func:`default_data_root`. Nothing is downloaded here; run
    :func:`fetch_dataset` (``fastsnn data NAME``) first.
    """
    dataset_info(name)  # raises DataError for an unknown name
    refuse_test_augment(name, train=train, augment=augment)
    if name in _JOINT_LOADERS:
        return _JOINT_LOADERS[name](resolve_root(root), train=train, augment=augment)
    return _LOADERS[name](resolve_root(root), train=train, transform=image_transform(name, augment=augment))


def fetch_dataset(name: str, *, root: str | Path | None = None, download: bool = True) -> str:
    """Locate (for MNIST, download if allowed), verify and count data set ``name``; returns a short report.

    Raises :class:`DataError` saying what to do when the data set cannot be had.
    """
    dataset_info(name)
    return str(_FETCHERS[name](resolve_root(root), download=download))
