"""Image transforms of the classification-style sets (torchvision.transforms.v2).

Every pipeline ends in float32 ``[C, H, W]`` normalised with the data set's
mean/std, returned as a plain tensor. Geometry (augmentations, resizing) runs on
uint8 pixels, so padding is black (0) before normalisation. In-memory data sets
pass plain uint8 tensors, which v2 treats as images, so only PIL sources get the
``ToImage``/``ToPureTensor`` wrapping (it costs ~40 us per item).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torchvision.transforms import v2

from fastsnn.data.info import DatasetInfo
from fastsnn.errors import DataError


def image_transform(info: DatasetInfo, geometry: Sequence[v2.Transform] = (), *, pil: bool = False) -> v2.Transform:
    """``geometry``, then scaling to [0, 1] and normalisation with ``info.mean/std``: one image (uint8
    ``[C, H, W]`` tensor, or a PIL image when ``pil``) -> float32 ``[C, H', W']``."""
    steps = [*geometry, v2.ToDtype(torch.float32, scale=True), v2.Normalize(mean=list(info.mean), std=list(info.std))]
    if pil:
        steps = [v2.ToImage(), *steps, v2.ToPureTensor()]
    return v2.Compose(steps)


def refuse_test_augment(name: str, *, train: bool, augment: bool) -> None:
    """Raise :class:`DataError` when augmentation is asked for the test split of data set ``name``."""
    if augment and not train:
        raise DataError(
            f"augment=True was asked for the test split of {name}; augmentation applies to training data only, "
            "so pass train=True or augment=False."
        )
