"""Fashion-MNIST: located from a fixture root or the Debian package, validated, loaded."""

from pathlib import Path

import numpy as np
import pytest
import torch

import fastsnn.data.fashion_mnist as fashion
from fastsnn.data import fetch_dataset, load_dataset
from fastsnn.errors import DataError

DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")


@pytest.fixture
def no_system_copy(monkeypatch):
    """Hide the Debian package's copy so only the fixture root is searched."""
    monkeypatch.setattr(fashion, "SYSTEM_DIRS", ())


def write_fashion(root, make, *, n_train=6, n_test=4, gz=True, labels_train=None):
    """Four IDX files under ``root/fashion-mnist``; returns (train images, train labels, test images, test labels)."""
    folder = root / "fashion-mnist"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(1)
    arrays = {
        "train_images": rng.integers(0, 256, size=(n_train, 28, 28), dtype=np.uint8),
        "train_labels": np.arange(n_train, dtype=np.uint8) % 10 if labels_train is None else labels_train,
        "test_images": rng.integers(0, 256, size=(n_test, 28, 28), dtype=np.uint8),
        "test_labels": (np.arange(n_test, dtype=np.uint8) * 3) % 10,
    }
    for key, stem in fashion.FASHION_MNIST_FILES.items():
        make.write_idx(folder / (stem + ".gz" if gz else stem), arrays[key], gz=gz)
    return arrays


@pytest.mark.parametrize("gz", [True, False])
def test_load_from_fixture_root(tmp_path, make, no_system_copy, gz):
    arrays = write_fashion(tmp_path, make, gz=gz)
    test_set = load_dataset("fashion-mnist", train=False, root=tmp_path)

    assert len(test_set) == 4
    image, label = test_set[2]
    assert type(image) is torch.Tensor and image.dtype == torch.float32 and image.shape == (1, 28, 28)
    assert label == int(arrays["test_labels"][2])
    expected = (torch.from_numpy(arrays["test_images"][2]).float() / 255 - 0.2860) / 0.3530
    assert torch.allclose(image[0], expected, atol=1e-6)


def test_fetch_reports_location_and_counts(tmp_path, make, no_system_copy):
    write_fashion(tmp_path, make, n_train=7, n_test=3)
    report = fetch_dataset("fashion-mnist", root=tmp_path, download=False)
    assert str(tmp_path / "fashion-mnist") in report
    assert "7 train / 3 test" in report


def test_root_copy_wins_over_the_system_copy(tmp_path, make, monkeypatch):
    write_fashion(tmp_path / "a", make, n_train=5)
    write_fashion(tmp_path / "b", make, n_train=8)
    monkeypatch.setattr(fashion, "SYSTEM_DIRS", (tmp_path / "b" / "fashion-mnist",))
    assert len(load_dataset("fashion-mnist", train=True, root=tmp_path / "a")) == 5
    assert len(load_dataset("fashion-mnist", train=True, root=tmp_path / "elsewhere")) == 8


def test_nothing_present_says_how_to_install(tmp_path, no_system_copy):
    with pytest.raises(DataError) as caught:
        fetch_dataset("fashion-mnist", root=tmp_path, download=False)
    message = str(caught.value)
    assert "apt-get install dataset-fashion-mnist" in message
    assert str(tmp_path / "fashion-mnist") in message and "train-images-idx3-ubyte.gz" in message


def test_partial_folder_names_the_missing_files(tmp_path, make, no_system_copy):
    write_fashion(tmp_path, make)
    (tmp_path / "fashion-mnist" / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError, match="lacks t10k-labels-idx1-ubyte"):
        load_dataset("fashion-mnist", train=True, root=tmp_path)


def test_image_and_label_count_mismatch_names_both_files(tmp_path, make, no_system_copy):
    write_fashion(tmp_path, make, n_train=6)
    folder = tmp_path / "fashion-mnist"
    make.write_idx(folder / "train-labels-idx1-ubyte.gz", np.zeros(5, np.uint8), gz=True)
    expected = r"train-images-idx3-ubyte\.gz holds 6 images but .*train-labels-idx1-ubyte\.gz holds 5"
    with pytest.raises(DataError, match=expected):
        load_dataset("fashion-mnist", train=True, root=tmp_path)


def test_label_out_of_range_names_the_file(tmp_path, make, no_system_copy):
    write_fashion(tmp_path, make, n_train=3, labels_train=np.array([0, 10, 2], np.uint8))
    with pytest.raises(DataError, match=r"train-labels-idx1-ubyte\.gz holds label 10"):
        load_dataset("fashion-mnist", train=True, root=tmp_path)


def test_corrupt_file_surfaces_as_data_error(tmp_path, make, no_system_copy):
    write_fashion(tmp_path, make)
    path = tmp_path / "fashion-mnist" / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:30])
    with pytest.raises(DataError, match="t10k-images-idx3-ubyte.gz"):
        fetch_dataset("fashion-mnist", root=tmp_path)


@pytest.mark.skipif(
    not all((DEBIAN_DIR / (stem + ".gz")).is_file() for stem in fashion.FASHION_MNIST_FILES.values()),
    reason=f"Debian package dataset-fashion-mnist is not installed (no IDX files in {DEBIAN_DIR})",
)
def test_real_fashion_mnist_from_the_debian_package(tmp_path):
    train_set = load_dataset("fashion-mnist", train=True, root=tmp_path)
    test_set = load_dataset("fashion-mnist", train=False, root=tmp_path)
    assert len(train_set) == 60000 and len(test_set) == 10000
    assert torch.bincount(train_set.labels, minlength=10).tolist() == [6000] * 10
    assert torch.bincount(test_set.labels, minlength=10).tolist() == [1000] * 10
    pixels = train_set.images.float() / 255
    assert abs(pixels.mean().item() - 0.2860) < 1e-3 and abs(pixels.std().item() - 0.3530) < 1e-3
