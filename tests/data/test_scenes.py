"""Synthetic scenes: deterministic per index, masks and boxes agree with the pasted items, splits stay apart."""

from dataclasses import replace

import numpy as np
import pytest
import torch

import fastsnn.data.fashion_mnist as fashion
from fastsnn.data import dataset_info
from fastsnn.data.scenes import (
    TEST_SPLIT,
    TRAIN_SPLIT,
    SceneConfig,
    SceneSegmentation,
    compose_scene,
    load_scenes,
)
from fastsnn.errors import DataError
from helpers import write_idx, write_tiny_fashion_mnist

SMALL = SceneConfig(canvas=64, min_items=2, max_items=5, min_size=12, max_size=28, train_scenes=40, test_scenes=20)


@pytest.fixture
def no_system_copy(monkeypatch):
    """Only the fixture root is searched for Fashion-MNIST."""
    monkeypatch.setattr(fashion, "SYSTEM_DIRS", ())


@pytest.fixture
def tiny(tmp_path, no_system_copy):
    """Train and test splits of the tiny IDX stand-in: classes 0 and 1 stay below the threshold of 64."""
    root = write_tiny_fashion_mnist(tmp_path, train=64, test=32)
    train = fashion.load_fashion_mnist(root, train=True)
    return root, train.images, train.labels


def constant_items(n=64):
    """Items that are flat squares of distinct intensities 64 + 3·i (all >= threshold), class i % 10."""
    values = 64 + 3 * torch.arange(n)
    return values.to(torch.uint8)[:, None, None, None].expand(n, 1, 28, 28).contiguous(), torch.arange(n) % 10, values


def check_scene(scene, source_labels, config):
    """Every documented relation between image, mask, boxes, labels and items."""
    image, mask, boxes, labels, items = scene
    size = (config.canvas, config.canvas)
    assert image.dtype == torch.uint8 and image.shape == size and mask.dtype == torch.uint8 and mask.shape == size
    assert boxes.dtype == torch.float32 and boxes.shape == (len(labels), 4)
    assert labels.dtype == torch.int64 and items.dtype == torch.int64 and items.shape == labels.shape
    assert torch.equal(labels, source_labels[items] + 1)
    assert ((labels >= 1) & (labels <= 10)).all()
    assert torch.equal(mask > 0, image >= config.threshold)
    assert (boxes == boxes.round()).all() and (boxes >= 0).all() and (boxes <= config.canvas).all()
    assert (boxes[:, 2] > boxes[:, 0]).all() and (boxes[:, 3] > boxes[:, 1]).all()
    covered = {int(v): torch.zeros(size, dtype=torch.bool) for v in range(1, 11)}
    for (x0, y0, x1, y1), label in zip(boxes.long().tolist(), labels.tolist(), strict=True):
        covered[label][y0:y1, x0:x1] = True
        inside = mask[y0:y1, x0:x1] == label
        edges = (inside[0].any(), inside[-1].any(), inside[:, 0].any(), inside[:, -1].any())
        assert all(edges), "a box is not tight around pixels of its label"
    for value in range(1, 11):
        assert not ((mask == value) & ~covered[value]).any(), f"pixels of label {value} outside its boxes"
    outside = ~torch.stack(list(covered.values())).any(0)
    assert (image[outside] < config.threshold).all()


def test_scene_depends_only_on_seed_split_and_index(tiny):
    _, images, labels = tiny
    forward = [compose_scene(images, labels, i, config=SMALL, split_seed=TRAIN_SPLIT) for i in range(8)]
    backward = [compose_scene(images, labels, i, config=SMALL, split_seed=TRAIN_SPLIT) for i in reversed(range(8))]
    dataset = SceneSegmentation(images, labels, train=True, config=SMALL)
    for i, (a, b) in enumerate(zip(forward, reversed(backward), strict=True)):
        for x, y, z in zip(a, b, dataset.scene(i), strict=True):
            assert torch.equal(x, y) and torch.equal(x, z)
    assert len({tuple(s.items.tolist()) for s in forward}) > 4  # scenes differ from one another
    test_scene = SceneSegmentation(images, labels, train=False, config=SMALL).scene(3)
    assert torch.equal(test_scene.image, compose_scene(images, labels, 3, config=SMALL, split_seed=TEST_SPLIT).image)
    for other in (
        dict(config=replace(SMALL, seed=1), split_seed=TRAIN_SPLIT),
        dict(config=SMALL, split_seed=TEST_SPLIT),
    ):
        changed = [compose_scene(images, labels, i, **other) for i in range(8)]
        assert sum(not torch.equal(a.image, b.image) for a, b in zip(forward, changed, strict=True)) >= 6


@pytest.mark.parametrize(
    "config",
    [
        SMALL,
        SceneConfig(train_scenes=30),
        replace(SMALL, max_overlap=1.0, min_items=6, max_items=9),  # heavy occlusion: items get covered
    ],
)
def test_mask_boxes_and_image_agree(tiny, config):
    _, images, labels = tiny
    dataset = SceneSegmentation(images, labels, train=True, config=config)
    scenes = [dataset.scene(i) for i in range(len(dataset))]
    for scene in scenes:
        check_scene(scene, labels, config)
    # classes 0 and 1 of the fixture are dimmer than the threshold: such items are dropped, never boxed
    assert not any((s.labels <= 2).any() for s in scenes)
    assert sum(len(s.labels) for s in scenes) >= len(scenes)


def test_without_overlap_each_item_is_its_whole_pasted_square():
    images, labels, values = constant_items()
    config = replace(SMALL, max_overlap=0.0, threshold=64)
    for index in range(30):
        scene = compose_scene(images, labels, index, config=config, split_seed=TRAIN_SPLIT)
        check_scene(scene, labels, config)
        expected_image, expected_mask = torch.zeros_like(scene.image), torch.zeros_like(scene.mask)
        for (x0, y0, x1, y1), item in zip(scene.boxes.long().tolist(), scene.items.tolist(), strict=True):
            assert x1 - x0 == y1 - y0 and config.min_size <= x1 - x0 <= config.max_size  # the square itself
            assert (expected_mask[y0:y1, x0:x1] == 0).all(), "items overlap although max_overlap is 0"
            expected_image[y0:y1, x0:x1] = int(values[item])
            expected_mask[y0:y1, x0:x1] = int(labels[item]) + 1
        assert torch.equal(scene.image, expected_image) and torch.equal(scene.mask, expected_mask)


def test_last_item_is_covered_at_most_max_overlap():
    images, labels, _ = constant_items()
    config = replace(SMALL, max_overlap=0.1, min_items=5, max_items=5)
    overlapping = 0
    for index in range(60):
        scene = compose_scene(images, labels, index, config=config, split_seed=TRAIN_SPLIT)
        check_scene(scene, labels, config)
        *earlier, (x0, y0, x1, y1) = scene.boxes.long().tolist()  # the last item is fully visible
        union = torch.zeros(config.canvas, config.canvas, dtype=torch.bool)
        for a0, b0, a1, b1 in earlier:
            union[b0:b1, a0:a1] = True
        shared = int(union[y0:y1, x0:x1].sum())
        assert shared <= 0.1 * (x1 - x0) * (y1 - y0)
        overlapping += shared > 0
    assert overlapping > 0  # overlaps up to the limit do occur


def test_occluded_items_are_dropped():
    images, labels, _ = constant_items()
    # 9 possible corners for 12 items: some later item lands exactly on an earlier one and hides it
    config = SceneConfig(canvas=32, min_items=12, max_items=12, min_size=30, max_size=30, max_overlap=1.0)
    scenes = [compose_scene(images, labels, i, config=config, split_seed=TEST_SPLIT) for i in range(10)]
    for scene in scenes:
        check_scene(scene, labels, config)
        assert 1 <= len(scene.labels) < 12
        x0, y0, x1, y1 = scene.boxes[-1].long().tolist()  # the last item overwrites the mask in its whole square
        assert x1 - x0 == y1 - y0 == 30 and (scene.mask[y0:y1, x0:x1] == scene.labels[-1]).all()
    assert any(len(set(s.mask[s.mask > 0].tolist())) > 1 for s in scenes)


def write_split_source(root):
    """Fashion-MNIST IDX files whose train items (classes 0..4) are flat 101 and test items (5..9) flat 200."""
    folder = root / "fashion-mnist"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for prefix, count, value, classes in (("train", 40, 101, (0, 5)), ("t10k", 24, 200, (5, 10))):
        write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", np.full((count, 28, 28), value), gz=True)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", rng.integers(*classes, count), gz=True)


def test_train_scenes_use_train_items_and_test_scenes_test_items(tmp_path, no_system_copy):
    write_split_source(tmp_path)
    for train, value, classes, count in ((True, 101, range(1, 6), 40), (False, 200, range(6, 11), 24)):
        source = fashion.load_fashion_mnist(tmp_path, train=train)
        dataset = load_scenes("fashion-mnist", tmp_path, train=train, config=SMALL)
        assert len(dataset) == (SMALL.train_scenes if train else SMALL.test_scenes)
        for i in range(len(dataset)):
            scene = dataset.scene(i)
            check_scene(scene, source.labels, SMALL)
            assert set(scene.image.unique().tolist()) <= {0, value}
            assert set(scene.labels.tolist()) <= set(classes) and (scene.items < count).all()


def test_dataset_items_are_normalised_images_and_int64_masks(tiny):
    root, _, _ = tiny
    config = replace(SMALL, train_scenes=7, test_scenes=3)
    train = load_scenes("fashion-mnist", root, train=True, config=config)
    test = load_scenes("fashion-mnist", root, train=False, config=config)
    assert (len(train), len(test)) == (7, 3)
    (mean,), (std,) = dataset_info("fashion-scenes").mean, dataset_info("fashion-scenes").std
    for dataset in (train, test):
        image, mask = dataset[2]
        scene = dataset.scene(2)
        assert image.dtype == torch.float32 and image.shape == (1, 64, 64)
        assert mask.dtype == torch.int64 and mask.shape == (64, 64)
        assert torch.allclose(image[0], (scene.image.float() / 255 - mean) / std, atol=1e-5)
        assert torch.equal(mask, scene.mask.long())
        assert torch.equal(dataset[-1][1], dataset[len(dataset) - 1][1])
        with pytest.raises(IndexError):
            dataset[len(dataset)]
    assert not torch.equal(train.scene(0).image, test.scene(0).image)


def test_augmentation_flips_image_and_mask_together(tiny):
    root, images, labels = tiny
    dataset = load_scenes("fashion-mnist", root, train=True, augment=True, config=SMALL)
    plain = load_scenes("fashion-mnist", root, train=True, config=SMALL)[0]
    assert not torch.equal(plain[1], plain[1].flip(-1))
    flips = []
    for _ in range(20):
        image, mask = dataset[0]
        flipped = torch.equal(mask, plain[1].flip(-1))
        assert flipped or torch.equal(mask, plain[1])
        assert torch.equal(image, plain[0].flip(-1) if flipped else plain[0])
        flips.append(flipped)
    assert 0 < sum(flips) < 20
    with pytest.raises(DataError, match="augment"):
        SceneSegmentation(images, labels, train=False, augment=True)


@pytest.mark.parametrize(
    "changes, field",
    [
        (dict(min_items=4, max_items=3), "max_items"),
        (dict(canvas=30, max_size=40), "canvas"),
        (dict(min_size=30, max_size=20), "max_size"),
        (dict(min_size=0), "min_size"),
        (dict(max_overlap=1.5), "max_overlap"),
        (dict(threshold=0), "threshold"),
        (dict(seed=-1), "seed"),
        (dict(test_scenes=-5), "test_scenes"),
        (dict(canvas=96.0), "canvas"),
    ],
)
def test_validate_names_the_bad_field(changes, field):
    with pytest.raises(DataError, match=rf"SceneConfig\.{field}="):
        SceneConfig(**changes).validate()
    images, labels, _ = constant_items(4)
    with pytest.raises(DataError, match=field):
        SceneSegmentation(images, labels, train=True, config=SceneConfig(**changes))


def test_bad_sources_are_refused(tmp_path):
    assert SceneConfig().validate() == SceneConfig()
    images, labels, _ = constant_items(4)
    with pytest.raises(DataError, match="Unknown scene source"):
        load_scenes("cifar10", tmp_path, train=True)
    with pytest.raises(DataError, match="uint8"):
        compose_scene(images.float(), labels, 0, config=SMALL, split_seed=0)
    with pytest.raises(DataError, match="labels in 0..9"):
        compose_scene(images, labels + 10, 0, config=SMALL, split_seed=0)
