"""Distillation from the float network in the quantized training stages: who teaches, the loss, and refusals."""

import copy
import shutil

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

import fastsnn.models.registry as registry
import fastsnn.workflows.train as train_module
from fastsnn.cli import main
from fastsnn.errors import CheckpointError, OptionError
from fastsnn.models import register_model
from fastsnn.workflows.checkpoint import load_checkpoint, save_checkpoint
from fastsnn.workflows.model_spec import ModelSpec
from fastsnn.workflows.teacher import frozen, load_teacher
from fastsnn.workflows.train import TrainConfig, train_progressive
from helpers import write_tiny_fashion_mnist


def tiny_config(tmp_path, out="run", **overrides):
    root = tmp_path / "data"
    if not root.exists():
        write_tiny_fashion_mnist(root, train=64, test=16)
    settings = dict(
        model="resnet8", dataset="fashion-mnist", data_root=str(root), width=0.25, bits=3, float_epochs=1, epochs=1,
        batch_size=32, out_dir=str(tmp_path / out), progress=False,
    )  # fmt: skip
    return TrainConfig(**(settings | overrides))


@pytest.fixture
def recorded_teachers(monkeypatch):
    """The ``teacher`` of every ``fit`` call, in stage order; ``fit`` itself trains nothing (returns its model)."""
    teachers = []

    def record(model, spec, *args, teacher=None, **kwargs):
        teachers.append(None if teacher is None else (teacher.training, copy.deepcopy(teacher.state_dict())))
        assert teacher is None or not any(p.requires_grad for p in teacher.parameters())
        return model

    monkeypatch.setattr(train_module, "fit", record)
    return teachers


def assert_same_state(state, expected):
    assert state.keys() == expected.keys()
    for key in expected:
        assert torch.equal(state[key], expected[key]), key


def test_without_distillation_no_stage_has_a_teacher(tmp_path, recorded_teachers):
    train_progressive(tiny_config(tmp_path, distill=0.0))
    assert recorded_teachers == [None, None, None]


def test_every_quantized_stage_learns_from_the_frozen_float_model(tmp_path, recorded_teachers, monkeypatch):
    float_model = {}
    real_quantize = train_module.quantize
    monkeypatch.setattr(
        train_module, "quantize", lambda model, *a, **k: real_quantize(float_model.setdefault("state", model), *a, **k)
    )
    train_progressive(tiny_config(tmp_path, distill=0.5))
    assert recorded_teachers[0] is None, "the float stage distills from nothing"
    for training, state in recorded_teachers[1:]:
        assert not training, "the teacher runs in eval mode"
        assert_same_state(state, float_model["state"].state_dict())


def test_a_teacher_checkpoint_teaches_every_quantized_stage(tmp_path, recorded_teachers):
    spec = ModelSpec("resnet20", num_classes=10, in_channels=1, options={"width": 0.5})  # another, larger network
    teacher = spec.build()
    save_checkpoint(tmp_path / "teacher.safetensors", teacher, spec)
    train_progressive(tiny_config(tmp_path, teacher=str(tmp_path / "teacher.safetensors")))
    assert recorded_teachers[0] is None
    for training, state in recorded_teachers[1:]:
        assert not training
        assert_same_state(state, teacher.state_dict())


def test_loading_a_teacher_draws_no_random_numbers(tmp_path):
    spec = ModelSpec("resnet8", num_classes=10, in_channels=1, options={"width": 0.25})
    path = save_checkpoint(tmp_path / "teacher.safetensors", spec.build(), spec)
    train_set = TensorDataset(torch.rand(2, 1, 28, 28), torch.zeros(2))
    before = torch.get_rng_state()
    teacher = load_teacher(path, spec, train_set)
    assert torch.equal(torch.get_rng_state(), before), "resumed runs stay bit-exact"
    assert not teacher.training and not any(p.requires_grad for p in teacher.parameters())


def test_distillation_changes_the_quantized_stages_only(tmp_path):
    plain = train_progressive(tiny_config(tmp_path, "plain", bits=4, distill=0.0))
    (tmp_path / "distilled").mkdir()
    shutil.copy(plain["float"], tmp_path / "distilled" / "float.safetensors")  # a complete float stage, resumed
    distilled = train_progressive(tiny_config(tmp_path, "distilled", bits=4, distill=0.5))
    assert_same_state(load_checkpoint(distilled["float"]).model_state, load_checkpoint(plain["float"]).model_state)
    ours, theirs = (load_checkpoint(paths["q4"]).model_state for paths in (distilled, plain))
    assert any(not torch.equal(ours[key], theirs[key]) for key in ours)


@pytest.mark.parametrize("weight", [0.0, 0.3, 1.0])
def test_the_stage_loss_mixes_task_and_distillation_losses_by_the_weight(weight):
    config = TrainConfig(bits=2, width=0.25, distill=weight, temperature=3.0)
    teacher, spec = frozen(config.spec().build()), config.spec().with_bits(2)
    stage, task = train_module._Stage(spec.build(), spec, 1, 0.01, None, config, 1, teacher), spec.task
    images, labels = torch.randn(8, 1, 28, 28), torch.randint(0, 10, (8,))
    stage.model.eval()  # batch statistics aside: the same output in each call
    output = stage.model(images)
    expected = (1 - weight) * task.loss(output, labels) + weight * task.distillation_loss(output, teacher(images), 3.0)
    loss = stage.loss(stage.model, images, labels)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
    assert loss.item() != pytest.approx(task.loss(output, labels).item()) or weight == 0
    loss.backward()
    assert all(p.grad is None for p in teacher.parameters())
    stage.teacher = None
    assert stage.loss(stage.model, images, labels).item() == pytest.approx(task.loss(output, labels).item())


@pytest.mark.parametrize(
    "field, value", [("temperature", 0.0), ("temperature", -1.0), ("distill", -0.1), ("distill", 1.5)]
)
def test_out_of_range_distillation_options_are_refused_by_name(field, value):
    with pytest.raises(OptionError) as error:
        TrainConfig(**{field: value})
    assert error.value.option == field


@pytest.mark.parametrize("argv", [["--temperature", "0"], ["--distill", "2"], ["--teacher", "absent.safetensors"]])
def test_the_command_line_refuses_them_under_the_flag_typed(argv, tmp_path, capsys):
    try:
        status = main(["train", *argv, "--out", str(tmp_path / "run"), "--quiet"])
    except SystemExit as exit:  # argparse refuses a value out of its bounds
        status = exit.code
    assert status == 2 and argv[0] in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_a_missing_teacher_file_is_refused_before_anything_runs(tmp_path):
    with pytest.raises(OptionError, match="does not exist") as error:
        train_progressive(tiny_config(tmp_path, teacher=str(tmp_path / "absent.safetensors")))
    assert error.value.option == "teacher"
    assert not (tmp_path / "run").exists()


@pytest.fixture
def scratch_registry(monkeypatch):
    """Copies of the model registry that the test may add to."""
    monkeypatch.setattr(registry, "_MODELS", dict(registry._MODELS))
    monkeypatch.setattr(registry, "_TASKS", dict(registry._TASKS))


def two_scores(*, num_classes: int, in_channels: int) -> nn.Module:
    """A classifier of ``[B, in_channels, 28, 28]`` images with two scores per class: ``[B, num_classes, 2]``."""
    return nn.Sequential(nn.Flatten(), nn.Linear(in_channels * 28 * 28, 2 * num_classes), nn.Unflatten(1, (-1, 2)))


@pytest.mark.parametrize(
    "spec, message",
    [
        (ModelSpec("deeplab_vgg9", 10, 1, {"width": 0.25}), r"another task: task 'segmentation' \(trained model: "),
        (ModelSpec("resnet8", 5, 1, {"width": 0.25}), r"another task: classes 5 \(trained model: 10\)"),
        (ModelSpec("resnet8", 10, 1, {"width": 0.25}, bits=4), "is a 4-bit model"),
        (
            ModelSpec("two_scores", 10, 1),
            r"outputs shape \[1, 10, 2\] on a training image, the trained model \[1, 10\]",
        ),
    ],
)
def test_a_teacher_of_another_task_or_output_shape_is_refused_naming_the_file(
    tmp_path, scratch_registry, spec, message
):
    register_model(two_scores)
    path = save_checkpoint(tmp_path / "teacher.safetensors", spec.build(), spec)
    with pytest.raises(CheckpointError, match=message) as error:
        train_progressive(tiny_config(tmp_path, teacher=str(path)))
    assert str(path) in str(error.value)
    assert not list((tmp_path / "run").glob("*.safetensors")), "refused before any training"
