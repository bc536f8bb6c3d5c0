"""CIFAR-10/100 and ImageNet-style folders, read by torchvision from their standard layouts.

Nothing here is downloaded: these data sets have no offline source, so a
missing one raises a :class:`DataError` saying what to put where.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
import torch
from torchvision.datasets import CIFAR10, CIFAR100, ImageFolder
from torchvision.datasets.utils import check_integrity
from torchvision.transforms import v2

from fastsnn.data.info import IMAGENET_MEAN, IMAGENET_STD, DatasetInfo
from fastsnn.data.integrity import safe_extract, verify_sha256
from fastsnn.data.registry import register_dataset
from fastsnn.data.report import DataReport
from fastsnn.data.tensor_dataset import ImageTensorDataset, LabelledImages
from fastsnn.data.transforms import image_transform
from fastsnn.errors import DataError

# CIFAR statistics are those of the training split.
CIFAR_INFOS = {
    "cifar10": DatasetInfo("cifar10", 3, 10, 32, (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar100": DatasetInfo("cifar100", 3, 100, 32, (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
}
IMAGENET = DatasetInfo("imagenet", 3, 1000, 224, IMAGENET_MEAN, IMAGENET_STD)
_CIFAR = {"cifar10": CIFAR10, "cifar100": CIFAR100}
_CIFAR_TITLE = {"cifar10": "CIFAR-10", "cifar100": "CIFAR-100"}
# SHA-256 of the official archives (cifar-10-python.tar.gz, cifar-100-python.tar.gz), checked before extraction.
CIFAR_ARCHIVE_SHA256 = {
    "cifar10": "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce",
    "cifar100": "85cd44d02ba6437773c5bbd22e183051d648de2e7d6b014e1ef29b855ba677a7",
}
_IMAGENET_SPLITS = {True: "train", False: "val"}


def read_cifar(name: str, root: Path, *, train: bool) -> LabelledImages:
    """One CIFAR split from ``<root>/<name>/<base_folder>``: images uint8 ``[N, 3, 32, 32]``, labels int64 ``[N]``.

    torchvision checks each batch file's md5 against the official archive's
    before unpickling it; a failed check is diagnosed file by file here.
    """
    cls = _CIFAR[name]
    folder = root / name
    _check_cifar_folder(name, folder)
    try:
        dataset = cls(str(folder), train=train, download=False)
    except RuntimeError:
        raise DataError(_cifar_problem(name, folder)) from None
    images = torch.from_numpy(np.ascontiguousarray(dataset.data.transpose(0, 3, 1, 2)))
    return LabelledImages(images, torch.tensor(dataset.targets, dtype=torch.int64))


def _check_cifar_folder(name: str, folder: Path) -> None:
    """The extracted folder exists, or is made from the official archive (hash-checked) lying in ``folder``."""
    cls = _CIFAR[name]
    base = folder / cls.base_folder
    archive = folder / cls.filename
    if not base.is_dir() and archive.is_file():
        verify_sha256(
            archive,
            CIFAR_ARCHIVE_SHA256[name],
            what=f"The {_CIFAR_TITLE[name]} archive",
            remedy=f"it is not the official {cls.filename}, so download {cls.url} again",
        )
        safe_extract(archive, folder)
    if not base.is_dir():
        raise DataError(
            f"{_CIFAR_TITLE[name]} not found: expected the extracted folder {cls.base_folder} at {base}; "
            f"download {cls.url} into {folder} (it is checked and extracted there) or extract it there yourself."
        )


def _cifar_problem(name: str, folder: Path) -> str:
    """Which file of an existing CIFAR folder is missing or fails its md5 check."""
    cls = _CIFAR[name]
    base = folder / cls.base_folder
    again = f"extract {cls.filename} ({cls.url}) into {folder} again"
    entries = [*cls.train_list, *cls.test_list, [cls.meta["filename"], cls.meta["md5"]]]
    for filename, md5 in entries:
        path = base / filename
        if not path.is_file():
            return f"{_CIFAR_TITLE[name]} file {path} is missing; {again}."
        if not check_integrity(str(path), md5):
            return f"{_CIFAR_TITLE[name]} file {path} fails its md5 check (corrupt or not the official file); {again}."
    return f"torchvision could not read {_CIFAR_TITLE[name]} from {base}; {again}."


def load_cifar(name: str, root: Path, *, train: bool, augment: bool = False) -> ImageTensorDataset:
    """CIFAR split; items ``(float32 [3, 32, 32], label)``, normalised, with ``augment`` randomly shifted by
    up to 4 pixels and flipped horizontally with p = 0.5."""
    geometry = [v2.RandomCrop(32, padding=4), v2.RandomHorizontalFlip()] if augment else []
    return ImageTensorDataset(read_cifar(name, root, train=train), image_transform(CIFAR_INFOS[name], geometry))


def fetch_cifar(name: str, root: Path, *, download: bool) -> DataReport:
    """Locate and verify a CIFAR data set (there is nothing to download)."""
    train = read_cifar(name, root, train=True)
    test = read_cifar(name, root, train=False)
    return DataReport(name, str(root / name / _CIFAR[name].base_folder), len(train.labels), len(test.labels))


register_dataset(CIFAR_INFOS["cifar10"], load=partial(load_cifar, "cifar10"), fetch=partial(fetch_cifar, "cifar10"))
register_dataset(CIFAR_INFOS["cifar100"], load=partial(load_cifar, "cifar100"), fetch=partial(fetch_cifar, "cifar100"))


def _class_folders(folder: Path) -> list[str]:
    return sorted(entry.name for entry in folder.iterdir() if entry.is_dir())


def _image_folder(root: Path, *, train: bool, transform: Callable | None) -> ImageFolder:
    """ImageNet-style split ``<root>/imagenet/{train,val}/<class>/<image>``; items ``(transform(PIL image), label)``.

    Labels index the sorted class folder names, which must be the same in
    ``train`` and ``val`` (else the two splits would number classes differently).
    """
    base = root / "imagenet"
    folder = base / _IMAGENET_SPLITS[train]
    if not folder.is_dir():
        raise DataError(
            f"ImageNet {_IMAGENET_SPLITS[train]} split not found at {folder}; put one subfolder per class "
            f"(e.g. n01440764/) holding that class's JPEG/PNG images into {base / 'train'} and {base / 'val'}."
        )
    other = base / _IMAGENET_SPLITS[not train]
    if other.is_dir() and _class_folders(other) != _class_folders(folder):
        differ = sorted(set(_class_folders(other)) ^ set(_class_folders(folder)))
        raise DataError(
            f"The class folders of {base / 'train'} and {base / 'val'} differ ({', '.join(differ[:5])}"
            f"{', ...' if len(differ) > 5 else ''}); give both splits the same class subfolders."
        )
    try:
        return ImageFolder(str(folder), transform=transform)
    except FileNotFoundError as error:
        raise DataError(
            f"Cannot read ImageNet images from {folder} ({str(error).rstrip('.')}); "
            "put one subfolder per class holding that class's JPEG/PNG images there."
        ) from error


def fetch_image_folder(root: Path, *, download: bool) -> DataReport:
    """Locate and index both ImageNet-style splits (there is nothing to download)."""
    train = _image_folder(root, train=True, transform=None)
    test = _image_folder(root, train=False, transform=None)
    return DataReport(
        "imagenet",
        str(root / "imagenet"),
        len(train),
        len(test),
        note=f"{len(train.classes)} classes",
    )


@register_dataset(IMAGENET, fetch=fetch_image_folder)
def load_image_folder(root: Path, *, train: bool, augment: bool = False) -> ImageFolder:
    """ImageNet-style split ``<root>/imagenet/{train,val}/<class>/<image>``; items ``(float32 [3, 224, 224],
    label)``, normalised: with ``augment`` a random resized crop flipped horizontally with p = 0.5, else the
    centre crop of the image resized to a shorter side of 256 (see :func:`_image_folder` for the layout).
    """
    if augment:
        geometry = [v2.RandomResizedCrop(224, antialias=True), v2.RandomHorizontalFlip()]
    else:
        geometry = [v2.Resize(256, antialias=True), v2.CenterCrop(224)]
    return _image_folder(root, train=train, transform=image_transform(IMAGENET, geometry, pil=True))
