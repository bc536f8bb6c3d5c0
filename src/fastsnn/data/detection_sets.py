"""Object detection sets read from the formats users bring: Pascal VOC 2012 (XML) and COCO 2017 (JSON).

Nothing here is downloaded; a missing set raises a :class:`DataError` saying what to put where. Items are
``(image float32 [3, size, size], target float32 [MAX_OBJECTS, 5])`` as :mod:`fastsnn.tasks.boxes` defines
them, the image normalised with the data set's mean/std. Every image's objects are checked when read, before
any transform, against the decoded image: a box outside it, of non-positive size, or of an unknown class
raises a :class:`DataError` naming the annotation file and the object.

Left out of the targets, so neither trained on nor scored:

* VOC objects marked ``difficult``. VOC's own evaluation ignores them (neither hit nor miss), which
  torchmetrics' mAP cannot express; dropping them is the simple honest choice (darknet's ``voc_label.py``
  does the same), but a detection of one then counts as a false positive, so mAP reads slightly low.
* COCO ``iscrowd`` regions (one box over a crowd, which COCO's evaluation also only ignores), and COCO boxes
  of zero width or height, which mark no pixel (``instances_train2017.json`` holds two: annotation ids 918
  and 2206849). A negative width or height is refused.

Geometry (images bilinear, boxes moved with them by torchvision.transforms.v2; padding is black):

* ``augment`` (training): scale jitter (the letterbox scale times a random factor in ``[0.5, 1.5]``), a random
  ``size`` x ``size`` crop (padded where the image is smaller, which also shifts it), a horizontal flip with
  p = 0.5; boxes are clipped to the crop (by the crop itself) and those under 1 pixel wide or tall dropped;
* otherwise: letterbox, the image resized (aspect kept) to fit ``size`` x ``size`` and padded bottom/right,
  boxes scaled by the same per-axis ratio.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from xml.etree import ElementTree

import numpy as np
import torch
from torch.utils.data import Dataset
from torchvision import tv_tensors
from torchvision.datasets import VOCDetection
from torchvision.transforms import v2

from fastsnn.data.info import IMAGENET_MEAN, IMAGENET_STD, DatasetInfo
from fastsnn.data.registry import register_dataset
from fastsnn.data.report import DataReport
from fastsnn.data.segmentation_sets import (
    _SPLITS,
    VOC_CLASSES,
    _Letterbox,
    _open,
    voc_pairs,
)
from fastsnn.data.transforms import refuse_test_augment
from fastsnn.errors import DataError
from fastsnn.tasks.anchors import VOC_ANCHORS
from fastsnn.tasks.boxes import check_objects, pad_objects

VOC_DETECTION_CLASSES = VOC_CLASSES[1:]  # no background: labels 0..19
# image_size is the letterbox / training crop; VOC publishes YOLOv2's anchors (darknet's yolo-voc.cfg)
VOC_DETECTION = DatasetInfo("voc-det", 3, 20, 320, IMAGENET_MEAN, IMAGENET_STD, "detection", anchors=VOC_ANCHORS)
COCO = DatasetInfo("coco", 3, 80, 320, IMAGENET_MEAN, IMAGENET_STD, "detection")
COCO_URL = "https://cocodataset.org/#download"
JITTER = (0.5, 1.5)


class _LetterboxObjects(_Letterbox):
    """The segmentation letterbox on ``(image, boxes, labels)``: F.resize / F.pad move BoundingBoxes too."""

    def __call__(self, image, boxes, labels):
        image, boxes = super().__call__(image, boxes)
        return image, boxes, labels


def _labels_of(inputs: tuple) -> torch.Tensor:
    return inputs[2]


def detection_transform(info: DatasetInfo, size: int, *, augment: bool) -> v2.Compose:
    """``(Image uint8 [3, H, W], BoundingBoxes [n, 4] XYXY, labels [n])`` -> ``(float32 [3, size, size],
    boxes [m, 4], labels [m])``, normalised with ``info.mean/std``; see the module docstring."""
    if augment:
        geometry = [
            v2.ScaleJitter((size, size), scale_range=JITTER, antialias=True),
            v2.RandomCrop(size, pad_if_needed=True, fill=0),
            v2.RandomHorizontalFlip(),
            v2.SanitizeBoundingBoxes(labels_getter=_labels_of),
        ]
    else:
        geometry = [_LetterboxObjects(size, size)]
    return v2.Compose(
        [
            *geometry,
            v2.ToDtype(torch.float32, scale=True),  # the image only
            v2.Normalize(mean=list(info.mean), std=list(info.std)),
            v2.ToPureTensor(),
        ]
    )


class DetectionFiles(Dataset):
    """Image files with their objects; subclasses say where the objects come from (:meth:`objects`).

    Items are ``(float32 [3, size, size], target float32 [MAX_OBJECTS, 5])`` after ``transform`` (see
    :func:`detection_transform`); :meth:`read` gives the validated objects before it.
    """

    def __init__(self, images: Sequence[Path], *, classes: Sequence[str], transform: Callable, title: str) -> None:
        self.images = [Path(image) for image in images]
        self.classes = tuple(classes)
        self.transform = transform
        self.title = title

    def __len__(self) -> int:
        return len(self.images)

    def objects(self, index: int, *, width: int, height: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Image ``index``'s checked objects: ``boxes float32 [n, 4]`` xyxy pixels, ``labels int64 [n]``."""
        raise NotImplementedError

    def read(self, index: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(image uint8 [3, H, W], boxes float32 [n, 4], labels int64 [n])``, validated, before any transform."""
        path = self.images[index]
        with _open(path, "image", self.title) as image:
            try:
                pixels = np.array(image.convert("RGB"))
            except OSError as error:
                raise DataError(f"Cannot decode {self.title} image {path} ({error}); replace it.") from error
        boxes, labels = self.objects(index, width=pixels.shape[1], height=pixels.shape[0])
        return torch.from_numpy(pixels).permute(2, 0, 1).contiguous(), boxes, labels

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        image, boxes, labels = self.read(index)
        canvas = tuple(image.shape[-2:])
        boxes = tv_tensors.BoundingBoxes(boxes, format="XYXY", canvas_size=canvas)
        image, boxes, labels = self.transform(tv_tensors.Image(image), boxes, labels)
        return image, pad_objects(boxes, labels, where=f"{self.title} image {self.images[index]}")


class VOCObjects(DetectionFiles):
    """Pascal VOC images with their ``Annotations/*.xml``, parsed by torchvision's ``VOCDetection.parse_voc_xml``.

    VOC corners are 1-based pixel indices, both ends included: ``(xmin, ymin, xmax, ymax)`` becomes the
    pixel-edge box ``(xmin - 1, ymin - 1, xmax, ymax)``. Objects marked difficult are checked, then dropped;
    "object k" in errors is the k-th ``<object>`` of the file.
    """

    def __init__(self, pairs: Sequence[tuple[str | Path, str | Path]], *, transform: Callable) -> None:
        images = [image for image, _ in pairs]
        super().__init__(images, classes=VOC_DETECTION_CLASSES, transform=transform, title="Pascal VOC")
        self.annotations = [Path(annotation) for _, annotation in pairs]

    def objects(self, index: int, *, width: int, height: int) -> tuple[torch.Tensor, torch.Tensor]:
        path = self.annotations[index]
        try:
            root = ElementTree.parse(path).getroot()
        except (OSError, ElementTree.ParseError) as error:
            raise DataError(f"Cannot read Pascal VOC annotation {path} ({error}); replace it.") from error
        if root.tag != "annotation":
            raise DataError(f"{path} is not a Pascal VOC annotation (its root element is <{root.tag}>).")
        entries = VOCDetection.parse_voc_xml(root)["annotation"].get("object", [])
        corners, labels, difficult = [], [], []
        for k, entry in enumerate(entries):
            try:
                name, box = entry["name"], entry["bndbox"]
                corners.append(
                    [float(box[key]) - shift for key, shift in (("xmin", 1), ("ymin", 1), ("xmax", 0), ("ymax", 0))]
                )
            except (KeyError, TypeError, ValueError) as error:
                raise DataError(
                    f"{path}: object {k} lacks a <name> or a numeric <bndbox> xmin/ymin/xmax/ymax ({error!r})."
                ) from error
            if name not in self.classes:
                raise DataError(
                    f"{path}: object {k} is named {name!r}, not one of the {len(self.classes)} Pascal VOC classes "
                    f"({', '.join(self.classes)})."
                )
            labels.append(self.classes.index(name))
            difficult.append(entry.get("difficult") == "1")
        boxes = torch.tensor(corners, dtype=torch.float32).reshape(-1, 4)
        labels = torch.tensor(labels, dtype=torch.int64)
        check_objects(boxes, labels, width=width, height=height, num_classes=len(self.classes), where=str(path))
        keep = ~torch.tensor(difficult, dtype=torch.bool)
        return boxes[keep], labels[keep]


class CocoObjects(DetectionFiles):
    """COCO images with the objects of one ``instances_*.json``, read with :mod:`json`.

    Categories map to ``0..C-1`` in order of category id; ``bbox [x, y, w, h]`` (pixel edges) becomes
    ``(x, y, x + w, y + h)``. Crowd regions and boxes of zero width or height are dropped before any check;
    errors name the file and the annotation id. Images are in order of image id, as torchvision's CocoDetection.
    """

    def __init__(self, annotation_file: str | Path, folder: str | Path, *, transform: Callable) -> None:
        self.annotation_file = Path(annotation_file)
        categories, files, rows = _coco_index(self.annotation_file)
        expected = COCO.num_classes
        if len(categories) != expected:
            raise DataError(
                f"{self.annotation_file} lists {len(categories)} categories; the 'coco' data set has the "
                f"{expected} of COCO 2017 detection."
            )
        self.label_of = {category_id: label for label, category_id in enumerate(sorted(categories))}
        unknown = [row for row in rows if int(row[2]) not in self.label_of]
        if unknown:
            raise DataError(
                f"{self.annotation_file}: annotation id {int(unknown[0][1])} has category_id {int(unknown[0][2])}, "
                f"not one of the {len(categories)} categories the file lists."
            )
        self.ids = sorted(files)
        self.file_names = [files[image_id] for image_id in self.ids]
        by_image = defaultdict(list)
        for row in rows:
            by_image[row[0]].append(row[1:])
        self._objects = [np.array(by_image[image_id], dtype=np.float64).reshape(-1, 7) for image_id in self.ids]
        classes = [categories[category_id] for category_id in sorted(categories)]
        super().__init__(
            [Path(folder) / name for name in self.file_names], classes=classes, transform=transform, title="COCO"
        )

    def objects(self, index: int, *, width: int, height: int) -> tuple[torch.Tensor, torch.Tensor]:
        rows = self._objects[index]
        rows = rows[(rows[:, 2] == 0) & (rows[:, 5] != 0) & (rows[:, 6] != 0)]
        boxes = torch.from_numpy(np.concatenate([rows[:, 3:5], rows[:, 3:5] + rows[:, 5:7]], axis=1)).float()
        labels = torch.tensor([self.label_of[int(category)] for category in rows[:, 1]], dtype=torch.int64)
        for k, row in enumerate(rows):
            where = (
                f"{self.annotation_file}: annotation id {int(row[0])} (image id {self.ids[index]}, "
                f"{self.file_names[index]})"
            )
            check_objects(
                boxes[k : k + 1],
                labels[k : k + 1],
                width=width,
                height=height,
                num_classes=len(self.classes),
                where=where,
            )
        return boxes, labels


def _coco_index(path: Path) -> tuple[dict[int, str], dict[int, str], list[tuple]]:
    """Categories ``{id: name}``, images ``{id: file_name}`` and one row per annotation:
    ``(image id, annotation id, category id, iscrowd, x, y, w, h)``."""
    try:
        with open(path, encoding="utf-8") as file:
            content = json.load(file)
    except (OSError, ValueError) as error:
        raise DataError(f"Cannot read the COCO annotation file {path} ({error}); replace it.") from error
    try:
        categories = {category["id"]: category["name"] for category in content["categories"]}
        files = {image["id"]: image["file_name"] for image in content["images"]}
        rows = []
        for entry in content["annotations"]:
            x, y, w, h = map(float, entry["bbox"])
            rows.append((entry["image_id"], entry["id"], entry["category_id"], entry.get("iscrowd", 0), x, y, w, h))
    except (KeyError, TypeError, ValueError) as error:
        raise DataError(
            f"{path} is not a COCO instances file: an entry of its images/annotations/categories lacks or mistypes "
            f"a field ({error!r}); expected the layout of instances_val2017.json."
        ) from error
    strays = sorted({row[0] for row in rows} - set(files))
    if strays:
        raise DataError(f"{path}: annotations refer to image id {strays[0]}, which the file does not list.")
    return categories, files, rows


def _coco_files(root: Path, split: str) -> tuple[Path, Path]:
    folder = Path(root) / "coco"
    annotation_file, images = folder / "annotations" / f"instances_{split}2017.json", folder / f"{split}2017"
    missing = [p for p in (annotation_file, images) if not p.exists()]
    if missing:
        raise DataError(
            f"COCO 2017 {split} not found: {', '.join(map(str, missing))} missing; download {split}2017.zip and "
            f"annotations_trainval2017.zip from {COCO_URL} and extract both into {folder}, giving "
            f"{split}2017/*.jpg and annotations/instances_{split}2017.json."
        )
    return annotation_file, images


def fetch_voc_detection(root: Path, *, download: bool) -> DataReport:
    """Locate and count Pascal VOC 2012 detection (there is nothing to download)."""
    train, val = voc_pairs(root, "train", detection=True), voc_pairs(root, "val", detection=True)
    base = Path(root) / "voc" / "VOCdevkit" / "VOC2012"
    return DataReport("voc-det", str(base), len(train), len(val), note="20 classes; objects marked difficult left out")


def fetch_coco(root: Path, *, download: bool) -> DataReport:
    """Locate, read and count COCO 2017 detection (there is nothing to download)."""
    train, val = load_coco(root, train=True), load_coco(root, train=False)
    note = "80 classes in order of category id; crowd regions left out"
    return DataReport("coco", str(Path(root) / "coco"), len(train), len(val), note=note)


@register_dataset(VOC_DETECTION, fetch=fetch_voc_detection)
def load_voc_detection(
    root: Path, *, train: bool, augment: bool = False, size: int = VOC_DETECTION.image_size
) -> VOCObjects:
    """Pascal VOC 2012 detection ``train``/``val`` from ``<root>/voc/VOCdevkit/VOC2012`` (20 classes).

    Items ``(float32 [3, size, size], target float32 [MAX_OBJECTS, 5])``; see the module docstring.
    """
    refuse_test_augment(VOC_DETECTION.name, train=train, augment=augment)
    pairs = voc_pairs(root, _SPLITS[train], detection=True)
    return VOCObjects(pairs, transform=detection_transform(VOC_DETECTION, size, augment=augment))


@register_dataset(COCO, fetch=fetch_coco)
def load_coco(root: Path, *, train: bool, augment: bool = False, size: int = COCO.image_size) -> CocoObjects:
    """COCO 2017 detection ``train``/``val`` from ``<root>/coco`` (80 classes, in order of category id).

    Items ``(float32 [3, size, size], target float32 [MAX_OBJECTS, 5])``; see the module docstring.
    """
    refuse_test_augment(COCO.name, train=train, augment=augment)
    annotation_file, images = _coco_files(root, _SPLITS[train])
    dataset = CocoObjects(annotation_file, images, transform=detection_transform(COCO, size, augment=augment))
    missing = [path for path in dataset.images if not path.is_file()]
    if missing:
        raise DataError(
            f"COCO {_SPLITS[train]}: {len(missing)} image(s) listed in {annotation_file} missing, the first "
            f"{missing[0]}; extract {_SPLITS[train]}2017.zip from {COCO_URL} into {images.parent}."
        )
    return dataset
