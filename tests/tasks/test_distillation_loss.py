"""Tasks' distillation losses: zero at the teacher, a gradient toward it, and equal to direct computations."""

import math

import pytest
import torch
from torch.nn import functional as F

from fastsnn.tasks import Classification, Detection, Segmentation

ANCHORS = [[1.0, 1.5], [3.0, 2.0]]
CLASSES = 3
CASES = {  # a task and the shape of its outputs
    "classification": (Classification(CLASSES), (4, CLASSES)),
    "segmentation": (Segmentation(CLASSES), (2, CLASSES, 5, 6)),
    "detection": (Detection(CLASSES, anchors=ANCHORS), (2, len(ANCHORS) * (5 + CLASSES), 3, 4)),
}


def random_outputs(shape, seed):
    generator = torch.Generator().manual_seed(seed)
    return 2 * torch.randn(shape, generator=generator), 2 * torch.randn(shape, generator=generator)


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("name", CASES)
def test_distillation_loss_is_zero_at_the_teacher_only(name, seed):
    task, shape = CASES[name]
    student, teacher = random_outputs(shape, seed)
    assert task.distillation_loss(teacher.clone(), teacher, 4.0).item() == pytest.approx(0, abs=1e-5)
    assert task.distillation_loss(student, teacher, 4.0).item() > 1e-3


@pytest.mark.parametrize("temperature", [1.0, 4.0])
@pytest.mark.parametrize("name", CASES)
def test_a_gradient_step_moves_the_student_toward_the_teacher_and_leaves_the_teacher_alone(name, temperature):
    task, shape = CASES[name]
    student, teacher = random_outputs(shape, 7)
    student.requires_grad_(True)
    teacher.requires_grad_(True)
    before = task.distillation_loss(student, teacher, temperature)
    before.backward()
    assert teacher.grad is None, "no gradient reaches the teacher's output"
    with torch.no_grad():
        after = task.distillation_loss(student - 0.05 * student.grad, teacher, temperature)
    assert after.item() < before.item()


@pytest.mark.parametrize("temperature", [0.5, 4.0])
def test_classification_is_hintons_batch_mean_kl_scaled_by_the_squared_temperature(temperature):
    student, teacher = random_outputs((6, 5), 1)
    expected = F.kl_div(
        F.log_softmax(student / temperature, 1), F.log_softmax(teacher / temperature, 1), log_target=True,
        reduction="batchmean",
    ) * temperature**2  # fmt: skip
    assert Classification(5).distillation_loss(student, teacher, temperature).item() == pytest.approx(expected.item())


def test_segmentation_is_classification_of_every_pixel_averaged_over_pixels():
    student, teacher = random_outputs((2, 4, 3, 5), 2)
    pixel_student, pixel_teacher = (scores.permute(0, 2, 3, 1).reshape(-1, 4) for scores in (student, teacher))
    expected = Classification(4).distillation_loss(pixel_student, pixel_teacher, 2.0)
    assert Segmentation(4).distillation_loss(student, teacher, 2.0).item() == pytest.approx(expected.item())


def test_detection_equals_the_documented_sum_over_predictions_computed_one_by_one():
    task, shape = CASES["detection"]
    student, teacher = random_outputs(shape, 3)
    temperature, sigmoid = 2.0, lambda v: 1 / (1 + math.exp(-v))
    expected = 0.0
    for image in range(shape[0]):
        for anchor in range(len(ANCHORS)):
            for row in range(shape[2]):
                for column in range(shape[3]):
                    channels = slice(anchor * (5 + CLASSES), (anchor + 1) * (5 + CLASSES))
                    s, t = (o[image, channels, row, column].tolist() for o in (student, teacher))
                    weight = sigmoid(t[4])
                    box = [sigmoid(s[0]) - sigmoid(t[0]), sigmoid(s[1]) - sigmoid(t[1]), s[2] - t[2], s[3] - t[3]]
                    p = torch.softmax(torch.tensor(t[5:]) / temperature, 0)
                    q = torch.softmax(torch.tensor(s[5:]) / temperature, 0)
                    kl = float((p * (p.log() - q.log())).sum()) * temperature**2
                    expected += (sigmoid(s[4]) - weight) ** 2 + weight * sum(d * d for d in box) + weight * kl
    expected /= shape[0]
    assert task.distillation_loss(student, teacher, temperature).item() == pytest.approx(expected, rel=1e-5)
