"""Scene boxes: targets are the scene's boxes with labels minus one, padded with -1; flips move boxes with the image."""

import pytest
import torch

import fastsnn.data.fashion_mnist as fashion
from fastsnn.data import dataset_info
from fastsnn.data.scene_boxes import SceneDetection, load_scene_boxes
from fastsnn.data.scenes import TEST_SPLIT, SceneConfig, compose_scene, load_scenes
from fastsnn.errors import DataError
from fastsnn.tasks.boxes import MAX_OBJECTS, objects_of
from helpers import write_tiny_fashion_mnist

SMALL = SceneConfig(canvas=64, min_items=2, max_items=5, min_size=12, max_size=28, train_scenes=40, test_scenes=20)


@pytest.fixture
def root(tmp_path, monkeypatch):
    """The tiny IDX Fashion-MNIST stand-in; only this root is searched."""
    monkeypatch.setattr(fashion, "SYSTEM_DIRS", ())
    return write_tiny_fashion_mnist(tmp_path, train=64, test=32)


def test_targets_are_the_scene_boxes_with_labels_minus_one(root):
    dataset = load_scene_boxes("fashion-mnist", root, train=True, config=SMALL)
    assert len(dataset) == SMALL.train_scenes
    counts = []
    for index in range(len(dataset)):
        scene = dataset.scene(index)
        _, target = dataset[index]
        assert target.dtype == torch.float32 and target.shape == (MAX_OBJECTS, 5)
        boxes, labels = objects_of(target)
        assert torch.equal(boxes, scene.boxes) and torch.equal(labels, scene.labels - 1)
        assert ((labels >= 0) & (labels <= 9)).all()
        count = len(scene.labels)
        assert (target[count:] == -1).all() and (target[:count, 0] >= 0).all()
        counts.append(count)
    assert max(counts) >= 2 and sum(counts) > len(dataset)  # scenes hold several objects


def test_images_are_normalised_as_the_segmentation_scenes(root):
    boxes_set = load_scene_boxes("fashion-mnist", root, train=False, config=SMALL)
    segmentation_set = load_scenes("fashion-mnist", root, train=False, config=SMALL)
    info = dataset_info("fashion-scenes-det")
    assert (info.mean, info.std) == (dataset_info("fashion-scenes").mean, dataset_info("fashion-scenes").std)
    for index in (0, 7, -1):
        image, _ = boxes_set[index]
        assert image.dtype == torch.float32 and image.shape == (1, 64, 64)
        assert torch.equal(image, segmentation_set[index][0])
        expected = (boxes_set.scene(index).image.float() / 255 - info.mean[0]) / info.std[0]
        assert torch.allclose(image[0], expected, atol=1e-5)
    images = fashion.load_fashion_mnist(root, train=False)
    scene = compose_scene(images.images, images.labels, 3, config=SMALL, split_seed=TEST_SPLIT)
    assert torch.equal(boxes_set.scene(3).boxes, scene.boxes)  # test scenes come from the test items


def test_flip_moves_boxes_with_the_image(root):
    dataset = load_scene_boxes("fashion-mnist", root, train=True, augment=True, config=SMALL)
    plain = load_scene_boxes("fashion-mnist", root, train=True, config=SMALL)
    flipped_count = 0
    for index in range(len(dataset)):
        image, target = dataset[index]
        plain_image, plain_target = plain[index]
        boxes, labels = objects_of(target)
        plain_boxes, plain_labels = objects_of(plain_target)
        assert torch.equal(labels, plain_labels) and (target[len(labels) :] == -1).all()
        if torch.equal(image, plain_image):
            assert torch.equal(boxes, plain_boxes)
            continue
        assert torch.equal(image, plain_image.flip(-1))
        x1, y1, x2, y2 = plain_boxes.unbind(1)
        assert torch.equal(boxes, torch.stack([64 - x2, y1, 64 - x1, y2], 1))
        mask = plain.scene(index).mask.flip(-1)  # each flipped box is tight around its item's flipped pixels
        for (a, b, c, d), label in zip(boxes.long().tolist(), labels.tolist(), strict=True):
            inside = mask[b:d, a:c] == label + 1
            assert inside[0].any() and inside[-1].any() and inside[:, 0].any() and inside[:, -1].any()
        flipped_count += 1
    assert 5 <= flipped_count <= len(dataset) - 5  # probability 1/2


def test_refusals(root):
    with pytest.raises(DataError, match="training data only"):
        load_scene_boxes("fashion-mnist", root, train=False, augment=True, config=SMALL)
    with pytest.raises(DataError, match="Unknown scene source 'cifar10'"):
        load_scene_boxes("cifar10", root, train=True, config=SMALL)
    images = torch.zeros(4, 1, 28, 28, dtype=torch.uint8)
    with pytest.raises(DataError, match="training data only"):
        SceneDetection(images, torch.zeros(4, dtype=torch.int64), train=False, augment=True, config=SMALL)
