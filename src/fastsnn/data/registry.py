"""Name -> loader dispatch: :func:`load_dataset` and :func:`fetch_dataset`."""

from __future__ import annotations

from functools import partial
from pathlib import Path

from torch.utils.data import Dataset

from fastsnn.data.fashion_mnist import fetch_fashion_mnist, load_fashion_mnist
from fastsnn.data.info import dataset_info
from fastsnn.data.mnist import fetch_mnist, load_mnist
from fastsnn.data.root import resolve_root
from fastsnn.data.torchvision_sets import fetch_cifar, fetch_image_folder, load_cifar, load_image_folder
from fastsnn.data.transforms import image_transform
from fastsnn.errors import DataError

_LOADERS = {
    "mnist": load_mnist,
    "fashion-mnist": load_fashion_mnist,
    "cifar10": partial(load_cifar, "cifar10"),
    "cifar100": partial(load_cifar, "cifar100"),
    "imagenet": load_image_folder,
}
_FETCHERS = {
    "mnist": fetch_mnist,
    "fashion-mnist": fetch_fashion_mnist,
    "cifar10": partial(fetch_cifar, "cifar10"),
    "cifar100": partial(fetch_cifar, "cifar100"),
    "imagenet": fetch_image_folder,
}


def load_dataset(name: str, *, train: bool, root: str | Path | None = None, augment: bool = False) -> Dataset:
    """One split of data set ``name``; items ``(image float32 [C, H, W], label int)``.

    Images are normalised with ``dataset_info(name).mean/std``. ``augment``
    (training split only) adds the data set's random crops/flips. ``root``
    defaults to :func:`default_data_root`. Nothing is downloaded here; run
    :func:`fetch_dataset` (``fastsnn data NAME``) first.
    """
    dataset_info(name)  # raises DataError for an unknown name
    if augment and not train:
        raise DataError(
            f"augment=True was asked for the test split of {name}; augmentation applies to training data only, "
            "so pass train=True or augment=False."
        )
    return _LOADERS[name](resolve_root(root), train=train, transform=image_transform(name, augment=augment))


def fetch_dataset(name: str, *, root: str | Path | None = None, download: bool = True) -> str:
    """Locate (for MNIST, download if allowed), verify and count data set ``name``; returns a short report.

    Raises :class:`DataError` saying what to do when the data set cannot be had.
    """
    dataset_info(name)
    return str(_FETCHERS[name](resolve_root(root), download=download))
