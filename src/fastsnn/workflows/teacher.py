"""The teacher the quantized training stages distill from: a frozen float network, this run's float stage or
the model of a float checkpoint checked against the network it teaches."""

from pathlib import Path

import torch
from torch import nn
from torch.utils.data import Dataset

from ..errors import CheckpointError
from .checkpoint import load_checkpoint
from .model_spec import ModelSpec


def frozen(model: nn.Module) -> nn.Module:
    """``model`` itself, in eval mode and with no parameter requiring gradients: a distillation teacher."""
    return model.eval().requires_grad_(False)


def load_teacher(path: str | Path, spec: ModelSpec, train_set: Dataset) -> nn.Module:
    """The frozen model of float checkpoint ``path``, to teach a model of ``spec`` trained on ``train_set``.

    Draws no random numbers (the global generator's state is kept).

    Raises:
        CheckpointError: naming the file, unless it holds a float model of ``spec``'s task (same classes and
            task options) whose output on one image ``[1, C, H, W]`` of ``train_set`` has the shape of ``spec``'s.
    """
    checkpoint = load_checkpoint(path)
    if checkpoint.spec.bits is not None:
        raise CheckpointError(f"teacher {path} is a {checkpoint.spec.bits}-bit model; distill from a float checkpoint")
    ours, theirs = _task_identity(spec), _task_identity(checkpoint.spec)
    if ours != theirs:
        differences = [
            f"{key} {theirs.get(key)!r} (trained model: {ours.get(key)!r})"
            for key in ours | theirs
            if ours.get(key) != theirs.get(key)
        ]
        raise CheckpointError(f"teacher {path} is a model of another task: {', '.join(differences)}")
    with torch.random.fork_rng(devices=[]), torch.no_grad():  # building and augmenting draw random numbers
        teacher, image = frozen(checkpoint.build_model()), train_set[0][0].unsqueeze(0)
        shapes = list(teacher(image).shape), list(spec.with_bits(None).build().eval()(image).shape)
    if shapes[0] != shapes[1]:
        raise CheckpointError(
            f"teacher {path} outputs shape {shapes[0]} on a training image, the trained model {shapes[1]}"
        )
    return teacher


def _task_identity(spec: ModelSpec) -> dict:
    """What a teacher shares with the model it teaches: task, classes and the task's model options (anchors)."""
    task = spec.task
    return {"task": task.name, "classes": spec.num_classes} | {key: spec.options.get(key) for key in task.model_options}
