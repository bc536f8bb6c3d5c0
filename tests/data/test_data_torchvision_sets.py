"""CIFAR-10/100 from tiny fixtures in the real pickle layout; ImageNet-style folders of PNGs.

torchvision checks every CIFAR file's md5 against the official archive's
before reading it, so a fixture cannot pass as is: the ``cifar_md5s_of``
fixture points torchvision's pinned md5 tables at the fixture's files for one
test, and the real tables are exercised by the "corrupt" test below.
"""

import numpy as np
import pytest
import torch
from PIL import Image

from fastsnn.data import fetch_dataset, load_dataset
from fastsnn.errors import DataError


@pytest.mark.parametrize("name", ["cifar10", "cifar100"])
def test_cifar_fixture_loads_exact_pixels_in_file_order(tmp_path, make, cifar_md5s_of, name):
    written = make.write_cifar(tmp_path / name, name)
    cifar_md5s_of(name, written["md5"])

    train_set = load_dataset(name, train=True, root=tmp_path)
    test_set = load_dataset(name, train=False, root=tmp_path)

    train_data, train_labels = written["train"]
    assert len(train_set) == len(train_labels) and len(test_set) == len(written["test"][1])
    assert torch.equal(train_set.images, torch.from_numpy(train_data.reshape(-1, 3, 32, 32)))
    assert train_set.labels.tolist() == train_labels
    image, label = test_set[1]
    assert image.dtype == torch.float32 and image.shape == (3, 32, 32)
    assert label == written["test"][1][1]
    mean = torch.tensor([0.4914, 0.4822, 0.4465] if name == "cifar10" else [0.5071, 0.4865, 0.4409])
    std = torch.tensor([0.2470, 0.2435, 0.2616] if name == "cifar10" else [0.2673, 0.2564, 0.2762])
    raw = torch.from_numpy(written["test"][0][1].reshape(3, 32, 32)).float() / 255
    assert torch.allclose(image, (raw - mean[:, None, None]) / std[:, None, None], atol=1e-5)
    augmented, augmented_label = load_dataset(name, train=True, root=tmp_path, augment=True)[0]
    assert augmented.shape == (3, 32, 32) and augmented_label == train_labels[0]


def test_cifar_fetch_reports_counts(tmp_path, make, cifar_md5s_of):
    cifar_md5s_of("cifar10", make.write_cifar(tmp_path / "cifar10", "cifar10")["md5"])
    report = fetch_dataset("cifar10", root=tmp_path, download=False)
    assert "10 train / 2 test" in report and str(tmp_path / "cifar10" / "cifar-10-batches-py") in report


def test_cifar_file_failing_the_official_md5_is_named(tmp_path, make):
    make.write_cifar(tmp_path / "cifar10", "cifar10")  # real md5 tables: the fixture is "corrupt"
    with pytest.raises(DataError, match=r"data_batch_1 fails its md5 check.*cifar-10-python\.tar\.gz"):
        load_dataset("cifar10", train=False, root=tmp_path)


def test_cifar_missing_file_is_named(tmp_path, make, cifar_md5s_of):
    cifar_md5s_of("cifar100", make.write_cifar(tmp_path / "cifar100", "cifar100")["md5"])
    (tmp_path / "cifar100" / "cifar-100-python" / "meta").unlink()
    with pytest.raises(DataError, match=r"cifar-100-python/meta is missing"):
        load_dataset("cifar100", train=True, root=tmp_path)


@pytest.mark.parametrize("name, folder", [("cifar10", "cifar-10-batches-py"), ("cifar100", "cifar-100-python")])
def test_cifar_absent_says_where_to_extract(tmp_path, name, folder):
    with pytest.raises(DataError) as caught:
        fetch_dataset(name, root=tmp_path, download=True)
    message = str(caught.value)
    assert str(tmp_path / name / folder) in message and "extract" in message and "https://" in message


def write_image_folder(split_dir, classes=("cat", "dog"), per_class=2, size=(40, 30)):
    rng = np.random.default_rng(2)
    for cls in classes:
        (split_dir / cls).mkdir(parents=True)
        for i in range(per_class):
            pixels = rng.integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)
            Image.fromarray(pixels).save(split_dir / cls / f"{i}.png")


def test_image_folder_labels_follow_sorted_class_folders(tmp_path):
    write_image_folder(tmp_path / "imagenet" / "train", classes=("dog", "cat"))
    write_image_folder(tmp_path / "imagenet" / "val", classes=("dog", "cat"), per_class=1)

    val_set = load_dataset("imagenet", train=False, root=tmp_path)
    train_set = load_dataset("imagenet", train=True, root=tmp_path, augment=True)

    assert len(val_set) == 2 and len(train_set) == 4
    assert [label for _, label in val_set.samples] == [0, 1]
    assert [path.split("/")[-2] for path, _ in val_set.samples] == ["cat", "dog"]
    for dataset in (val_set, train_set):
        image, label = dataset[len(dataset) - 1]
        assert image.dtype == torch.float32 and image.shape == (3, 224, 224) and label == 1
        assert type(image) is torch.Tensor


def test_image_folder_fetch_reports_counts_and_classes(tmp_path):
    write_image_folder(tmp_path / "imagenet" / "train")
    write_image_folder(tmp_path / "imagenet" / "val", per_class=1)
    report = fetch_dataset("imagenet", root=tmp_path)
    assert "4 train / 2 test" in report and "2 classes" in report


def test_image_folder_splits_with_different_classes_are_refused(tmp_path):
    write_image_folder(tmp_path / "imagenet" / "train", classes=("cat", "dog"))
    write_image_folder(tmp_path / "imagenet" / "val", classes=("cat", "eel"))
    with pytest.raises(DataError, match="class folders .* differ.*dog, eel"):
        load_dataset("imagenet", train=False, root=tmp_path)


def test_image_folder_missing_split_says_what_to_put_where(tmp_path):
    with pytest.raises(DataError, match=r"val split not found at .*imagenet/val.*subfolder per class"):
        load_dataset("imagenet", train=False, root=tmp_path)


def test_image_folder_without_images_is_a_data_error(tmp_path):
    (tmp_path / "imagenet" / "train" / "cat").mkdir(parents=True)
    with pytest.raises(DataError, match=r"imagenet/train"):
        load_dataset("imagenet", train=True, root=tmp_path)
