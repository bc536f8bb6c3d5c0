"""CIFAR-10/100 and ImageNet-style folders, read by torchvision from their standard layouts.

Nothing here is downloaded: these data sets have no offline source, so a
missing one raises a :class:`DataError` saying what to put where.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torchvision.datasets import CIFAR10, CIFAR100, ImageFolder
from torchvision.datasets.utils import check_integrity

from fastsnn.data.integrity import safe_extract, verify_sha256
from fastsnn.data.report import DataReport
from fastsnn.data.tensor_dataset import ImageTensorDataset, LabelledImages
from fastsnn.errors import DataError

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


def load_cifar(name: str, root: Path, *, train: bool, transform) -> ImageTensorDataset:
    """CIFAR split; items ``(transform(uint8 [3, 32, 32]), label)``."""
    return ImageTensorDataset(read_cifar(name, root, train=train), transform)


def fetch_cifar(name: str, root: Path, *, download: bool) -> DataReport:
    """Locate and verify a CIFAR data set (there is nothing to download)."""
    train = read_cifar(name, root, train=True)
    test = read_cifar(name, root, train=False)
    return DataReport(name, str(root / name / _CIFAR[name].base_folder), len(train.labels), len(test.labels))


def _class_folders(folder: Path) -> list[str]:
    return sorted(entry.name for entry in folder.iterdir() if entry.is_dir())


def load_image_folder(root: Path, *, train: bool, transform) -> ImageFolder:
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
    train = load_image_folder(root, train=True, transform=None)
    test = load_image_folder(root, train=False, transform=None)
    return DataReport(
        "imagenet",
        str(root / "imagenet"),
        len(train),
        len(test),
        note=f"{len(train.classes)} classes",
    )
