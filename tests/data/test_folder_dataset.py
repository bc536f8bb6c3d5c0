"""``folder:PATH``: the user's own images in ImageFolder layout, written here from real Fashion-MNIST items."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import fastsnn.data.fashion_mnist as fashion
from fastsnn.data import DatasetInfo, dataset_info, fetch_dataset, folder_info, list_datasets, load_dataset, load_folder
from fastsnn.errors import DataError
from helpers import write_folder

pytestmark = pytest.mark.skipif(
    not all((fashion.SYSTEM_DIRS[0] / (stem + ".gz")).is_file() for stem in fashion.FASHION_MNIST_FILES.values()),
    reason=f"Debian package dataset-fashion-mnist is not installed (no IDX files in {fashion.SYSTEM_DIRS[0]})",
)

CLASSES = {"tshirt": 0, "trouser": 1, "sneaker": 7}  # class folder -> Fashion-MNIST label
SORTED_CLASSES = sorted(CLASSES)  # ["sneaker", "trouser", "tshirt"]: ImageFolder's labels 0, 1, 2


@pytest.fixture(scope="module")
def fashion_items():
    """10 real Fashion-MNIST test images per class: {class folder: uint8 [10, 28, 28]}."""
    _, test = fashion.read_fashion_mnist(fashion.find_fashion_mnist(Path("/nonexistent")))
    return {name: test.images[test.labels == label][:10, 0].numpy() for name, label in CLASSES.items()}


def as_rgb(images: np.ndarray) -> np.ndarray:
    """[N, H, W] -> [N, H, W, 3]: the image, its mirror, its negative."""
    return np.stack([images, images[:, :, ::-1], 255 - images], axis=-1)


def channel_stats(pixels: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """numpy's per-channel mean and (population) std of uint8 images [H, W] or [H, W, 3] on the [0, 1] scale."""
    values = np.stack(pixels).reshape(len(pixels) * pixels[0].shape[0] * pixels[0].shape[1], -1) / 255.0
    return values.mean(0), values.std(0)


def expected_tensor(pixels: np.ndarray, info: DatasetInfo) -> torch.Tensor:
    """(pixel / 255 - mean) / std as float32 [C, H, W]; a grayscale image repeated over ``info``'s channels."""
    chw = torch.from_numpy(pixels.astype(np.float64) / 255).reshape(*pixels.shape[:2], -1).permute(2, 0, 1)
    chw = chw.expand(info.in_channels, -1, -1)
    mean, std = torch.tensor(info.mean).view(-1, 1, 1), torch.tensor(info.std).view(-1, 1, 1)
    return ((chw - mean) / std).float()


def test_grayscale_folder_is_measured(tmp_path, fashion_items):
    written = write_folder(tmp_path, fashion_items)
    info = dataset_info(f"folder:{tmp_path}")

    assert info.name == f"folder:{tmp_path.resolve()}" and info.task == "classification"
    assert (info.in_channels, info.num_classes, info.image_size) == (1, 3, 28)
    mean, std = channel_stats(list(written["train"].values()))
    np.testing.assert_allclose(info.mean, mean, rtol=0, atol=1e-6)
    np.testing.assert_allclose(info.std, std, rtol=0, atol=1e-6)
    all_mean, _ = channel_stats([*written["train"].values(), *written["val"].values()])
    assert abs(info.mean[0] - all_mean[0]) > 1e-4  # the val images are not counted


@pytest.mark.parametrize("train", [True, False])
def test_items_are_normalised_png_pixels_labelled_by_sorted_class(tmp_path, fashion_items, train):
    written = write_folder(tmp_path, fashion_items)["train" if train else "val"]
    info = dataset_info(f"folder:{tmp_path}")
    split = load_dataset(f"folder:{tmp_path}", train=train)

    assert split.classes == SORTED_CLASSES and len(split) == len(written)
    for index, (path, label) in enumerate(split.samples):
        image, target = split[index]
        assert target == label == SORTED_CLASSES.index(Path(path).parent.name)
        assert type(image) is torch.Tensor and image.dtype == torch.float32 and image.shape == (1, 28, 28)
        torch.testing.assert_close(image, expected_tensor(written[path], info), rtol=0, atol=1e-5)


def test_rgb_folder_gives_three_channels(tmp_path, fashion_items):
    written = write_folder(tmp_path, {name: as_rgb(images) for name, images in fashion_items.items()})
    info = folder_info(tmp_path)
    split = load_folder(tmp_path, train=True)

    assert (info.in_channels, info.num_classes, info.image_size) == (3, 3, 28)
    mean, std = channel_stats(list(written["train"].values()))
    np.testing.assert_allclose(info.mean, mean, rtol=0, atol=1e-6)
    np.testing.assert_allclose(info.std, std, rtol=0, atol=1e-6)
    for index in (0, 9, 20):
        image, _ = split[index]
        torch.testing.assert_close(image, expected_tensor(written["train"][split.samples[index][0]], info))


def test_one_colour_image_makes_every_image_rgb(tmp_path, fashion_items):
    written = write_folder(tmp_path, fashion_items)
    colour_path = next(iter(written["val"]))
    colour = as_rgb(written["val"][colour_path][None])[0]
    Image.fromarray(colour).save(colour_path)
    info = folder_info(tmp_path)

    assert info.in_channels == 3
    gray_mean, gray_std = channel_stats(list(written["train"].values()))
    np.testing.assert_allclose(info.mean, [gray_mean[0]] * 3, rtol=0, atol=1e-6)
    np.testing.assert_allclose(info.std, [gray_std[0]] * 3, rtol=0, atol=1e-6)
    train_set, val_set = load_folder(tmp_path, train=True), load_folder(tmp_path, train=False)
    image, _ = train_set[0]
    torch.testing.assert_close(image, expected_tensor(written["train"][train_set.samples[0][0]], info))
    index = [path for path, _ in val_set.samples].index(colour_path)
    torch.testing.assert_close(val_set[index][0], expected_tensor(colour, info))


def test_sixteen_bit_images_read_as_their_eight_bit_values(tmp_path, fashion_items):
    write_folder(tmp_path / "eight", fashion_items)
    # v = 257 p - 128 (at least 0) is nearest to 257 p: it must read back as p, the 8-bit value
    sixteen_bit = {
        name: np.maximum(images.astype(np.int64) * 257 - 128, 0).astype(np.uint16)
        for name, images in fashion_items.items()
    }
    write_folder(tmp_path / "sixteen", sixteen_bit)
    assert Image.open(next((tmp_path / "sixteen" / "train" / "tshirt").iterdir())).mode == "I;16"
    eight, sixteen = folder_info(tmp_path / "eight"), folder_info(tmp_path / "sixteen")

    assert (sixteen.in_channels, sixteen.mean, sixteen.std) == (1, eight.mean, eight.std)
    for train in (True, False):
        eight_set, sixteen_set = (
            load_folder(tmp_path / "eight", train=train),
            load_folder(tmp_path / "sixteen", train=train),
        )
        assert torch.equal(torch.stack([x for x, _ in eight_set]), torch.stack([x for x, _ in sixteen_set]))


def test_augment_shifts_and_flips_training_images(tmp_path, fashion_items):
    written = write_folder(tmp_path, fashion_items)["train"]
    info = folder_info(tmp_path)
    torch.manual_seed(0)
    split = load_dataset(f"folder:{tmp_path}", train=True, augment=True)
    pad = 28 // 8
    for index in (0, 8, 15):
        image, _ = split[index]
        padded = np.pad(written[split.samples[index][0]], pad)  # black border, as RandomCrop pads
        candidates = [
            expected_tensor(np.ascontiguousarray(view[top : top + 28, left : left + 28]), info)
            for view in (padded, padded[:, ::-1])
            for top in range(2 * pad + 1)
            for left in range(2 * pad + 1)
        ]
        assert any(torch.allclose(image, candidate, rtol=0, atol=1e-5) for candidate in candidates)
    with pytest.raises(DataError, match="augment=True was asked for the test split"):
        load_dataset(f"folder:{tmp_path}", train=False, augment=True)


def test_fetch_reports_the_folder_counts(tmp_path, fashion_items):
    write_folder(tmp_path, fashion_items)
    report = fetch_dataset(f"folder:{tmp_path}", root=tmp_path / "unused-root", download=True)
    assert f"folder:{tmp_path.resolve()}: 21 train / 9 test samples" in report
    assert "3 classes, 1 channel(s) of 28x28" in report
    assert not (tmp_path / "unused-root").exists()


def test_measurement_is_cached_per_resolved_path(tmp_path, fashion_items, monkeypatch):
    write_folder(tmp_path, fashion_items)
    info = folder_info(tmp_path)
    monkeypatch.chdir(tmp_path.parent)
    assert folder_info(tmp_path.name) is info
    assert dataset_info(f"folder:{tmp_path / 'train' / '..'}") is info


def test_recorded_info_rebuilds_and_normalises_the_split(tmp_path, fashion_items):
    written = write_folder(tmp_path, fashion_items)["val"]
    measured = folder_info(tmp_path)
    for info in [measured, *(dataset_info(name) for name in list_datasets())]:
        assert DatasetInfo.from_dict(json.loads(json.dumps(info.to_dict()))) == info
    recorded = DatasetInfo.from_dict({**measured.to_dict(), "mean": [0.5], "std": [0.25]})
    split = load_folder(tmp_path, train=False, info=recorded)
    torch.testing.assert_close(split[4][0], expected_tensor(written[split.samples[4][0]], recorded))
    with pytest.raises(DataError, match=f"Image folder {tmp_path.resolve()} has 3 classes but .* has 4"):
        load_folder(tmp_path, train=False, info=DatasetInfo.from_dict({**measured.to_dict(), "num_classes": 4}))


def test_recorded_info_with_wrong_fields_is_refused():
    recorded = {"name": "folder:/x", "in_channels": 1, "num_classes": 3, "mean": [0.5], "std": [0.2], "size": 28}
    with pytest.raises(DataError, match="missing fields: image_size; unknown fields: size"):
        DatasetInfo.from_dict(recorded)


def _break(root: Path, how: str) -> tuple[Path, str]:
    """Break the written folder ``root`` one way; returns (the folder to name, a text the refusal must hold)."""
    train, val = root / "train", root / "val"
    if how == "missing":
        return root / "absent", f"Image folder {root / 'absent'} does not exist"
    if how in ("no train", "no val"):
        split = train if how == "no train" else val
        split.rename(root / "elsewhere")
        return root, f"Image folder {root} has no {split.name}/ folder"
    if how == "no class folder":
        for path in train.glob("*/*.png"):
            path.unlink()
        for folder in train.iterdir():
            folder.rmdir()
        return root, f"{train} holds no class folder"
    if how == "val classes differ":
        (val / "tshirt").rename(val / "shirt")
        return root, "missing from val/: tshirt; extra in val/: shirt"
    if how == "class without image":
        for path in (train / "trouser").glob("*.png"):
            path.unlink()
        (train / "trouser" / "notes.txt").write_text("not an image")
        return root, f"Class folder {train / 'trouser'} holds no image"
    path = val / "sneaker" / "08.png"
    if how == "truncated image":
        path.write_bytes(path.read_bytes()[:60])
        return root, f"Cannot read image {path}"
    if how == "not an image":
        path.write_text("hello")
        return root, f"Cannot read image {path}"
    if how == "float pixels":
        path = path.with_suffix(".tiff")
        Image.fromarray(np.full((28, 28), 0.5, np.float32)).save(path)
        return root, f"Image {path} has 32-bit pixels (PIL mode F)"
    if how == "other size":
        Image.fromarray(np.zeros((30, 30), np.uint8)).save(path)
        first = train / "sneaker" / "00.png"
        return root, f"Images {first} (28x28) and {path} (30x30) differ in size"
    if how == "not square":
        Image.fromarray(np.zeros((28, 30), np.uint8)).save(path)
        return root, f"Image {path} is 30x28; images of a folder must be square"
    assert how == "constant"
    for path in train.glob("*/*.png"):
        Image.fromarray(np.full((28, 28), 7, np.uint8)).save(path)
    return root, f"The training images of {train} are one constant colour"


@pytest.mark.parametrize(
    "how",
    [
        "missing",
        "no train",
        "no val",
        "no class folder",
        "val classes differ",
        "class without image",
        "truncated image",
        "not an image",
        "float pixels",
        "other size",
        "not square",
        "constant",
    ],
)
def test_a_broken_folder_is_refused_naming_the_culprit(tmp_path, fashion_items, how):
    write_folder(tmp_path, fashion_items)
    root, expected = _break(tmp_path, how)
    for use in (dataset_info, lambda name: load_dataset(name, train=False), fetch_dataset):
        with pytest.raises(DataError) as caught:
            use(f"folder:{root}")
        message = str(caught.value)
        assert expected in message and "\n" not in message


@pytest.mark.parametrize("name", ["folder:", "folder:  ", "no-such-set"])
def test_names_without_a_folder_say_how_to_name_one(name):
    with pytest.raises(DataError, match="folder:PATH"):
        dataset_info(name)
