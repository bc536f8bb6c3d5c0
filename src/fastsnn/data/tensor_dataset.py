"""In-memory image data sets: uint8 tensors plus a per-item transform."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch
from torch.utils.data import Dataset


class LabelledImages(NamedTuple):
    """One split held in memory: ``images`` uint8 ``[N, C, H, W]``, ``labels`` int64 ``[N]``."""

    images: torch.Tensor
    labels: torch.Tensor


class ImageTensorDataset(Dataset):
    """Items ``(transform(images[i]), int(labels[i]))``.

    ``images`` is uint8 ``[N, C, H, W]`` and is never modified; ``transform``
    maps one uint8 ``[C, H, W]`` image to float32 ``[C, H', W']``.
    """

    def __init__(self, split: LabelledImages, transform: Callable[[torch.Tensor], torch.Tensor]) -> None:
        if split.images.dtype != torch.uint8 or split.images.dim() != 4:
            raise ValueError(f"images must be uint8 [N, C, H, W], got {split.images.dtype} {list(split.images.shape)}")
        if split.labels.shape != split.images.shape[:1]:
            raise ValueError(f"{split.images.shape[0]} images but labels of shape {list(split.labels.shape)}")
        self.images = split.images
        self.labels = split.labels
        self.transform = transform

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.transform(self.images[index]), int(self.labels[index])
