"""Fashion-MNIST (60k train / 10k test) from its original IDX files.

Searched in ``<root>/fashion-mnist/`` first, then where the Debian package
``dataset-fashion-mnist`` installs them. Each file may be gzip'd
(``NAME.gz``) or plain (``NAME``).
"""

from __future__ import annotations

import functools
from pathlib import Path

import torch
from torchvision.transforms import v2

from fastsnn.data.idx import read_idx_images, read_idx_labels
from fastsnn.data.info import DatasetInfo
from fastsnn.data.registry import register_dataset
from fastsnn.data.report import DataReport
from fastsnn.data.tensor_dataset import ImageTensorDataset, LabelledImages
from fastsnn.data.transforms import image_transform
from fastsnn.errors import DataError

FASHION_MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
SYSTEM_DIRS: tuple[Path, ...] = (Path("/usr/share/datasets/fashion-mnist"),)
DEBIAN_PACKAGE = "dataset-fashion-mnist"
FASHION_MNIST = DatasetInfo("fashion-mnist", 1, 10, 28, (0.2860,), (0.3530,))  # mean / std of the training split


def _find_file(directory: Path, stem: str) -> Path | None:
    for name in (stem + ".gz", stem):
        if (directory / name).is_file():
            return directory / name
    return None


def find_fashion_mnist(root: Path) -> dict[str, Path]:
    """Paths of the four files (keys of ``FASHION_MNIST_FILES``) from the first folder holding all four."""
    searched = [root / "fashion-mnist", *SYSTEM_DIRS]
    partial = []
    for directory in searched:
        found = {key: _find_file(directory, stem) for key, stem in FASHION_MNIST_FILES.items()}
        if all(found.values()):
            return found
        missing = [FASHION_MNIST_FILES[key] for key, path in found.items() if path is None]
        if len(missing) < len(FASHION_MNIST_FILES):
            partial.append(f"{directory} lacks {', '.join(missing)}")
    detail = f" ({'; '.join(partial)})" if partial else ""
    raise DataError(
        f"Fashion-MNIST not found in {', '.join(map(str, searched))}{detail}; "
        f"install it with `apt-get install {DEBIAN_PACKAGE}`, or put "
        f"{', '.join(s + '.gz' for s in FASHION_MNIST_FILES.values())} into {searched[0]}."
    )


def read_fashion_mnist(files: dict[str, Path]) -> tuple[LabelledImages, LabelledImages]:
    """(train, test) splits; images uint8 ``[N, 1, 28, 28]``, labels int64 ``[N]``.

    Cached in-process per (path, size, mtime) of the four files.
    """
    stamps = []
    for key in FASHION_MNIST_FILES:
        stat = files[key].stat()
        stamps.append((key, str(files[key]), stat.st_size, stat.st_mtime_ns))
    return _read_cached(tuple(stamps))


@functools.lru_cache(maxsize=2)
def _read_cached(stamps: tuple[tuple[str, str, int, int], ...]) -> tuple[LabelledImages, LabelledImages]:
    files = {key: Path(path) for key, path, _, _ in stamps}
    return _read_split(files["train_images"], files["train_labels"]), _read_split(
        files["test_images"], files["test_labels"]
    )


def _read_split(images_path: Path, labels_path: Path) -> LabelledImages:
    images = read_idx_images(images_path)
    labels = read_idx_labels(labels_path)
    if tuple(images.shape[1:]) != (28, 28):
        raise DataError(
            f"{images_path} holds images of size {list(images.shape[1:])}, expected 28x28; "
            "check that it is a Fashion-MNIST file."
        )
    if images.shape[0] != labels.shape[0]:
        raise DataError(
            f"{images_path} holds {images.shape[0]} images but {labels_path} holds {labels.shape[0]} labels; "
            "both files must come from the same split."
        )
    if labels.numel() and int(labels.max()) > 9:
        raise DataError(
            f"{labels_path} holds label {int(labels.max())}, outside 0..9; check that it is a Fashion-MNIST file."
        )
    return LabelledImages(images.unsqueeze(1), labels.to(torch.int64))


def fetch_fashion_mnist(root: Path, *, download: bool) -> DataReport:
    """Locate and verify Fashion-MNIST (there is nothing to download: it comes from apt or by hand)."""
    files = find_fashion_mnist(root)
    train, test = read_fashion_mnist(files)
    return DataReport("fashion-mnist", str(files["train_images"].parent), len(train.labels), len(test.labels))


@register_dataset(FASHION_MNIST, fetch=fetch_fashion_mnist)
def load_fashion_mnist(root: Path, *, train: bool, augment: bool = False) -> ImageTensorDataset:
    """Fashion-MNIST split; items ``(float32 [1, 28, 28], label)``, normalised, with ``augment`` randomly
    shifted by up to 2 pixels and flipped horizontally with p = 0.5."""
    train_split, test_split = read_fashion_mnist(find_fashion_mnist(root))
    geometry = [v2.RandomCrop(28, padding=2), v2.RandomHorizontalFlip()] if augment else []
    return ImageTensorDataset(train_split if train else test_split, image_transform(FASHION_MNIST, geometry))
