"""Semantic segmentation sets read from their standard layouts: Pascal VOC 2012 and Cityscapes (fine).

Nothing here is downloaded (VOC's archive is 2 GB, Cityscapes needs a
registration), so a missing set raises a :class:`DataError` saying what to put
where. Items are ``(image float32 [3, H, W], mask int64 [H, W])``: the image is
normalised with the ImageNet mean/std, the mask holds class indices with
``255`` = ignore. Every pair is checked when read, before any transform: the
mask must be an 8-bit (palette or grey) image of its image's size holding only
class indices or 255; VOC palette PNGs are read as their palette indices.

Geometry (images bilinear, masks nearest; padding is black for images, 255 for masks):

* ``augment`` (training): the shorter side is resized to a random length in
  ``[crop // 2, 2 * crop]``, a random ``crop`` x ``crop`` window is cut (padded
  where the image is smaller), and the pair is flipped horizontally with p = 0.5;
* otherwise (evaluation, or training without ``augment``): letterbox. The image
  is resized, aspect kept, to fit ``crop`` x ``crop`` (VOC) or ``crop`` x
  ``2 * crop`` (Cityscapes, whose 1024 x 2048 frames then fill it exactly) and
  padded at the bottom/right, so every labelled pixel is scored and batches collate.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset
from torchvision import tv_tensors
from torchvision.datasets import Cityscapes, VOCDetection, VOCSegmentation
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as F

from fastsnn.data.info import IMAGENET_MEAN, IMAGENET_STD, DatasetInfo
from fastsnn.data.registry import register_dataset
from fastsnn.data.report import DataReport
from fastsnn.data.transforms import refuse_test_augment
from fastsnn.errors import DataError
from fastsnn.tasks.segmentation import IGNORE_INDEX

VOC_CLASSES = (
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor",
)  # fmt: skip
CITYSCAPES_CLASSES = tuple(
    c.name for c in sorted(Cityscapes.classes, key=lambda c: c.train_id) if 0 <= c.train_id < 255
)
VOC_URL = "https://thor.robots.ox.ac.uk/pascal/VOC/voc2012/VOCtrainval_11-May-2012.tar"
CITYSCAPES_URL = "https://www.cityscapes-dataset.com/downloads/"
_SPLITS = {True: "train", False: "val"}
# image_size is the training crop
VOC_SEGMENTATION = DatasetInfo("voc-seg", 3, 21, 320, IMAGENET_MEAN, IMAGENET_STD, "segmentation")
CITYSCAPES = DatasetInfo("cityscapes", 3, 19, 512, IMAGENET_MEAN, IMAGENET_STD, "segmentation")


def voc_palette() -> torch.Tensor:
    """The Pascal VOC colour map ``[256, 3]`` uint8: class c's bits spread over R, G and B, high bit first."""
    palette = torch.zeros(256, 3, dtype=torch.uint8)
    for index in range(256):
        value, red, green, blue = index, 0, 0, 0
        for shift in range(7, -1, -1):
            red |= ((value >> 0) & 1) << shift
            green |= ((value >> 1) & 1) << shift
            blue |= ((value >> 2) & 1) << shift
            value >>= 3
        palette[index] = torch.tensor([red, green, blue])
    return palette


def cityscapes_label_map() -> np.ndarray:
    """uint8 ``[256]`` lookup table: official Cityscapes labelId -> train id (0..18), everything else 255."""
    table = np.full(256, IGNORE_INDEX, dtype=np.uint8)
    for entry in Cityscapes.classes:
        if 0 <= entry.id < 256 and entry.train_id not in (255, -1):
            table[entry.id] = entry.train_id
    return table


def _open(path: Path, what: str, title: str) -> Image.Image:
    try:
        return Image.open(path)
    except FileNotFoundError:
        raise DataError(f"{title} {what} {path} is missing; put it back or remove it from the split.") from None
    except OSError as error:
        raise DataError(f"Cannot read {title} {what} {path} ({error}); replace it with an intact copy.") from error


def read_pair(
    image_path: Path, mask_path: Path, *, num_classes: int, label_map: np.ndarray | None = None, title: str = "The"
) -> tuple[np.ndarray, np.ndarray]:
    """Validated ``(image uint8 [H, W, 3], mask uint8 [H, W])``; the mask is mapped through ``label_map`` if given.

    Raises :class:`DataError` naming the mask file when it is not an 8-bit class-index image, differs in size
    from its image, or holds values outside ``0..num_classes-1`` other than 255.
    """
    with _open(image_path, "image", title) as image, _open(mask_path, "mask", title) as mask:
        if mask.mode not in ("P", "L"):
            raise DataError(
                f"{title} mask {mask_path} is a {mask.mode} image; expected an 8-bit PNG of class indices "
                "(palette or greyscale), not a colour rendering."
            )
        if mask.size != image.size:
            raise DataError(
                f"{title} mask {mask_path} is {mask.size[0]}x{mask.size[1]} pixels but its image {image_path} is "
                f"{image.size[0]}x{image.size[1]}; replace it with the mask made for that image."
            )
        try:
            pixels = np.array(image.convert("RGB"))
            labels = np.array(mask)  # mode P: the palette indices, not the colours
        except OSError as error:
            raise DataError(f"Cannot decode {title} pair {image_path} / {mask_path} ({error}).") from error
    if label_map is not None:
        labels = label_map[labels]
    bad = np.flatnonzero(np.bincount(labels.ravel(), minlength=256)[num_classes:IGNORE_INDEX]) + num_classes
    if bad.size:
        values = ", ".join(str(v) for v in bad[:10]) + (", ..." if bad.size > 10 else "")
        raise DataError(
            f"{title} mask {mask_path} holds class value(s) {values} outside 0..{num_classes - 1} "
            f"({IGNORE_INDEX} = ignore); replace it with a class-index mask."
        )
    return pixels, labels


class SegmentationPairs(Dataset):
    """Items ``transform(image, mask)`` of ``(image path, mask path)`` pairs, each validated when read.

    ``transform`` takes ``(tv_tensors.Image uint8 [3, H, W], tv_tensors.Mask uint8 [H, W])``; the ones made by
    :func:`train_transform` / :func:`eval_transform` return ``(float32 [3, h, w], int64 [h, w])``. Without one,
    items are :meth:`read`'s.
    """

    def __init__(
        self,
        pairs: Sequence[tuple[str | Path, str | Path]],
        *,
        classes: Sequence[str],
        transform: Callable | None = None,
        label_map: np.ndarray | None = None,
        title: str = "Segmentation",
    ) -> None:
        self.images = [Path(image) for image, _ in pairs]
        self.masks = [Path(mask) for _, mask in pairs]
        self.classes = tuple(classes)
        self.transform = transform
        self.label_map = label_map
        self.title = title

    def __len__(self) -> int:
        return len(self.images)

    def _read(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        mask, classes = self.masks[index], len(self.classes)
        return read_pair(self.images[index], mask, num_classes=classes, label_map=self.label_map, title=self.title)

    def read(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The validated pair before any transform: image uint8 ``[3, H, W]``, mask int64 ``[H, W]``."""
        pixels, labels = self._read(index)
        return torch.from_numpy(pixels).permute(2, 0, 1).contiguous(), torch.from_numpy(labels.astype(np.int64))

    def __getitem__(self, index: int):
        if self.transform is None:
            return self.read(index)
        pixels, labels = self._read(index)
        image = tv_tensors.Image(torch.from_numpy(pixels).permute(2, 0, 1))
        return self.transform(image, tv_tensors.Mask(torch.from_numpy(labels)))


class _Letterbox:
    """Resize (aspect kept) to fit ``height`` x ``width``, then pad bottom/right: images with 0, masks with 255."""

    def __init__(self, height: int, width: int) -> None:
        self.height, self.width = height, width

    def __call__(self, image: tv_tensors.Image, mask: tv_tensors.Mask):
        h, w = image.shape[-2:]
        scale = min(self.height / h, self.width / w)
        size = [min(self.height, max(1, round(h * scale))), min(self.width, max(1, round(w * scale)))]
        if size != [h, w]:
            image, mask = F.resize(image, size, antialias=True), F.resize(mask, size)  # masks: nearest
        padding = [0, 0, self.width - size[1], self.height - size[0]]  # left, top, right, bottom
        return F.pad(image, padding, fill=0), F.pad(mask, padding, fill=IGNORE_INDEX)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(height={self.height}, width={self.width})"


def _finish(geometry: list) -> v2.Compose:
    return v2.Compose(
        [
            *geometry,
            v2.ToDtype({tv_tensors.Image: torch.float32, tv_tensors.Mask: torch.int64}, scale=True),
            v2.Normalize(mean=list(IMAGENET_MEAN), std=list(IMAGENET_STD)),
            v2.ToPureTensor(),
        ]
    )


def train_transform(crop: int) -> v2.Compose:
    """Joint random scale (shorter side in ``[crop // 2, 2 * crop]``), ``crop`` x ``crop`` crop and flip."""
    fill = {tv_tensors.Image: 0, tv_tensors.Mask: IGNORE_INDEX}
    return _finish(
        [
            v2.RandomResize(crop // 2, 2 * crop + 1, antialias=True),
            v2.RandomCrop(crop, pad_if_needed=True, fill=fill),
            v2.RandomHorizontalFlip(),
        ]
    )


def eval_transform(height: int, width: int) -> v2.Compose:
    """Deterministic letterbox into ``height`` x ``width`` (see the module docstring)."""
    return _finish([_Letterbox(height, width)])


def _checked_pairs(pairs: list[tuple[str, str]], title: str, where: Path, remedy: str) -> list[tuple[str, str]]:
    if not pairs:
        raise DataError(f"{title} lists no images in {where}; {remedy}.")
    missing = [path for pair in pairs for path in pair if not Path(path).is_file()]
    if missing:
        raise DataError(f"{title}: {len(missing)} listed file(s) missing, the first {missing[0]}; {remedy}.")
    return pairs


def voc_pairs(root: Path, split: str, *, detection: bool = False) -> list[tuple[str, str]]:
    """(image, target file) pairs of Pascal VOC 2012 split ``split`` under ``<root>/voc``, indexed by torchvision:
    class masks (``VOCSegmentation``), or with ``detection`` annotation XMLs (``VOCDetection``). A missing
    folder, split list or listed file raises :class:`DataError` saying what to download and where."""
    folder = Path(root) / "voc"
    base = folder / "VOCdevkit" / "VOC2012"
    targets, lists, index = (
        ("Annotations", "Main", VOCDetection) if detection else ("SegmentationClass", "Segmentation", VOCSegmentation)
    )
    remedy = (
        f"download {VOC_URL} and extract it into {folder} (it holds VOCdevkit/VOC2012 with JPEGImages/, "
        f"{targets}/ and ImageSets/{lists}/{{train,val}}.txt)"
    )
    split_file = base / "ImageSets" / lists / f"{split}.txt"
    missing = [p for p in (base / "JPEGImages", base / targets, split_file) if not p.exists()]
    if missing:
        task = "detection" if detection else "segmentation"
        raise DataError(
            f"Pascal VOC 2012 {task} ({split}) not found: {', '.join(map(str, missing))} missing; {remedy}."
        )
    try:
        dataset = index(str(folder), year="2012", image_set=split, download=False)
    except (RuntimeError, OSError) as error:
        raise DataError(f"torchvision could not index Pascal VOC 2012 in {base} ({error}); {remedy}.") from error
    files = dataset.annotations if detection else dataset.masks
    pairs = [(image, target) for image, target in zip(dataset.images, files, strict=True) if Path(image).name != ".jpg"]
    return _checked_pairs(pairs, f"Pascal VOC 2012 {split}", split_file, remedy)


def _cityscapes_pairs(root: Path, split: str) -> list[tuple[str, str]]:
    folder = Path(root) / "cityscapes"
    remedy = (
        f"download leftImg8bit_trainvaltest.zip and gtFine_trainvaltest.zip from {CITYSCAPES_URL} and extract both "
        f"into {folder}, giving leftImg8bit/{split}/<city>/*_leftImg8bit.png and "
        f"gtFine/{split}/<city>/*_gtFine_labelIds.png"
    )
    missing = [p for p in (folder / "leftImg8bit" / split, folder / "gtFine" / split) if not p.is_dir()]
    if missing:  # checked here so that torchvision never extracts archives itself
        raise DataError(f"Cityscapes {split} split not found: {', '.join(map(str, missing))} missing; {remedy}.")
    try:
        dataset = Cityscapes(str(folder), split=split, mode="fine", target_type="semantic")
    except (RuntimeError, OSError) as error:
        raise DataError(f"torchvision could not index Cityscapes in {folder} ({error}); {remedy}.") from error
    pairs = sorted(  # torchvision lists in directory order, which differs between file systems
        (image, targets[0])
        for image, targets in zip(dataset.images, dataset.targets, strict=True)
        if image.endswith("_leftImg8bit.png")
    )
    return _checked_pairs(pairs, f"Cityscapes {split}", folder / "leftImg8bit" / split, remedy)


def fetch_voc_segmentation(root: Path, *, download: bool) -> DataReport:
    """Locate and count Pascal VOC 2012 segmentation (there is nothing to download)."""
    train, val = voc_pairs(root, "train"), voc_pairs(root, "val")
    base = Path(root) / "voc" / "VOCdevkit" / "VOC2012"
    return DataReport("voc-seg", str(base), len(train), len(val), note="21 classes (0 = background); 255 = ignore")


def fetch_cityscapes(root: Path, *, download: bool) -> DataReport:
    """Locate and count Cityscapes fine train/val (there is nothing to download)."""
    train, val = _cityscapes_pairs(root, "train"), _cityscapes_pairs(root, "val")
    note = "19 classes (labelIds mapped to train ids); 255 = ignore"
    return DataReport("cityscapes", str(Path(root) / "cityscapes"), len(train), len(val), note=note)


@register_dataset(VOC_SEGMENTATION, fetch=fetch_voc_segmentation)
def load_voc_segmentation(
    root: Path, *, train: bool, augment: bool = False, crop: int = VOC_SEGMENTATION.image_size
) -> SegmentationPairs:
    """Pascal VOC 2012 ``train``/``val`` from ``<root>/voc/VOCdevkit/VOC2012``: 21 classes, 255 = ignore.

    Items ``(float32 [3, crop, crop], int64 [crop, crop])``; see the module docstring for the geometry.
    """
    refuse_test_augment(VOC_SEGMENTATION.name, train=train, augment=augment)
    pairs = voc_pairs(root, _SPLITS[train])
    transform = train_transform(crop) if augment else eval_transform(crop, crop)
    return SegmentationPairs(pairs, classes=VOC_CLASSES, transform=transform, title="Pascal VOC")


@register_dataset(CITYSCAPES, fetch=fetch_cityscapes)
def load_cityscapes(
    root: Path, *, train: bool, augment: bool = False, crop: int = CITYSCAPES.image_size
) -> SegmentationPairs:
    """Cityscapes fine ``train``/``val`` from ``<root>/cityscapes``: labelIds mapped to the 19 train ids, else 255.

    Items ``(float32 [3, crop, crop], int64 [crop, crop])`` with ``augment``, else ``[crop, 2 * crop]``.
    """
    refuse_test_augment(CITYSCAPES.name, train=train, augment=augment)
    pairs = _cityscapes_pairs(root, _SPLITS[train])
    transform = train_transform(crop) if augment else eval_transform(crop, 2 * crop)
    return SegmentationPairs(
        pairs, classes=CITYSCAPES_CLASSES, transform=transform, label_map=cityscapes_label_map(), title="Cityscapes"
    )
