"""Per-data-set image transforms (torchvision.transforms.v2).

Every pipeline ends in float32 ``[C, H, W]`` normalised with the data set's
mean/std, returned as a plain tensor. Augmentations run on uint8 pixels, so
padding is black (0) before normalisation. In-memory data sets pass plain
uint8 tensors, which v2 treats as images, so only PIL sources get the
``ToImage``/``ToPureTensor`` wrapping (it costs ~40 us per item).
"""

from __future__ import annotations

import torch
from torchvision.transforms import v2

from fastsnn.data.info import dataset_info
from fastsnn.errors import DataError

_AUGMENTATIONS = {
    "mnist": lambda: [v2.RandomCrop(28, padding=2)],
    "fashion-mnist": lambda: [v2.RandomCrop(28, padding=2), v2.RandomHorizontalFlip()],
    "cifar10": lambda: [v2.RandomCrop(32, padding=4), v2.RandomHorizontalFlip()],
    "cifar100": lambda: [v2.RandomCrop(32, padding=4), v2.RandomHorizontalFlip()],
    "imagenet": lambda: [v2.RandomResizedCrop(224, antialias=True), v2.RandomHorizontalFlip()],
}

# Geometry applied without augmentation (evaluation, or training with augment=False).
_EVAL_GEOMETRY = {
    "imagenet": lambda: [v2.Resize(256, antialias=True), v2.CenterCrop(224)],
}
# Data sets whose items reach the transform as PIL images (torchvision ImageFolder).
_PIL_SOURCES = {"imagenet"}


def image_transform(name: str, *, augment: bool) -> v2.Transform:
    """Transform for one image of data set ``name`` (uint8 ``[C, H, W]`` tensor, or PIL) -> float32 ``[C, H, W]``."""
    info = dataset_info(name)
    geometry = _AUGMENTATIONS[name]() if augment else _EVAL_GEOMETRY.get(name, list)()
    steps = [*geometry, v2.ToDtype(torch.float32, scale=True), v2.Normalize(mean=list(info.mean), std=list(info.std))]
    if name in _PIL_SOURCES:
        steps = [v2.ToImage(), *steps, v2.ToPureTensor()]
    return v2.Compose(steps)


def refuse_test_augment(name: str, *, train: bool, augment: bool) -> None:
    """Raise :class:`DataError` when augmentation is asked for the test split of data set ``name``."""
    if augment and not train:
        raise DataError(
            f"augment=True was asked for the test split of {name}; augmentation applies to training data only, "
            "so pass train=True or augment=False."
        )
