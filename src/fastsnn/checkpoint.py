"""Checkpoints: safetensors files that carry everything needed to rebuild and resume.

Layout of one file (no pickle anywhere):
    tensors   ``model.<state key>``          model parameters and buffers
              ``optimizer.<param index>.<k>`` per-parameter optimizer state (e.g. momentum)
              ``rng.torch``                   CPU random generator state (for exact resume)
    metadata  ``format``      ``fastsnn-checkpoint-v1``
              ``spec``        JSON :class:`ModelSpec` (architecture, bits, weight bits)
              ``training``    JSON: epoch reached, epochs planned, optimizer hyper-parameters,
                              scheduler state, metrics — whatever the trainer records
"""

import dataclasses
import json
import os
import tempfile
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import nn

from .convert import convert
from .errors import CheckpointError
from .models import create_model
from .quant import quantize

FORMAT = "fastsnn-checkpoint-v1"


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """What rebuilds a model: registry name and options, activation / weight bits (None = float),
    and for a spiking network its simulation settings ``snn = {"T": int, "signed": bool}``."""

    name: str
    num_classes: int
    in_channels: int
    options: dict = dataclasses.field(default_factory=dict)
    bits: int | None = None
    weight_bits: int | None = None
    snn: dict | None = None

    def build(self) -> nn.Module:
        """A fresh model of this spec (quantized if ``bits`` is set, converted if ``snn``), untrained."""
        model = create_model(self.name, num_classes=self.num_classes, in_channels=self.in_channels, **self.options)
        if self.bits is not None:
            model = quantize(model, self.bits, weight_bits=self.weight_bits)
        if self.snn is not None:
            model = convert(model, **self.snn)
        return model

    def with_bits(self, bits: int | None) -> "ModelSpec":
        return dataclasses.replace(self, bits=bits)


@dataclasses.dataclass
class Checkpoint:
    """A checkpoint read back: spec, model state, and training state for resuming."""

    spec: ModelSpec
    model_state: dict[str, torch.Tensor]
    training: dict
    optimizer_state: dict[int, dict[str, torch.Tensor]]
    rng_state: torch.Tensor | None

    def build_model(self) -> nn.Module:
        """The model with this checkpoint's weights, validated tensor by tensor."""
        model = self.spec.build()
        load_state_checked(model, self.model_state, self.spec)
        return model


def save_checkpoint(
    path: str | Path,
    model: nn.Module,
    spec: ModelSpec,
    *,
    training: dict | None = None,
    optimizer: torch.optim.Optimizer | None = None,
    save_rng: bool = False,
) -> Path:
    """Write ``model`` (and optionally optimizer and RNG state) to ``path`` atomically.

    The file is written under a temporary name in the same folder, flushed to disk, then renamed
    over ``path``: a crash leaves the previous checkpoint intact, never a half-written one.
    """
    path = Path(path)
    tensors = {f"model.{key}": value.detach().contiguous().clone() for key, value in model.state_dict().items()}
    training = dict(training or {})
    if optimizer is not None:
        for index, parameter in enumerate(_flat_parameters(optimizer)):
            for key, value in optimizer.state.get(parameter, {}).items():
                tensors[f"optimizer.{index}.{key}"] = torch.as_tensor(value).detach().contiguous().clone()
        training["param_groups"] = [{k: v for k, v in g.items() if k != "params"} for g in optimizer.param_groups]
    if save_rng:
        tensors["rng.torch"] = torch.get_rng_state()
    metadata = {"format": FORMAT, "spec": json.dumps(dataclasses.asdict(spec)), "training": json.dumps(training)}
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    try:
        save_file(tensors, temporary, metadata=metadata)
        with open(temporary, "rb") as written:
            os.fsync(written.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Read and validate a checkpoint written by :func:`save_checkpoint`.

    Raises:
        CheckpointError: missing file, pickle-based file, corrupt or truncated file, wrong format.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    if path.suffix in (".pt", ".pth", ".pkl", ".bin"):
        raise CheckpointError(
            f"{path} looks like a pickle-based PyTorch file; fastsnn reads only safetensors checkpoints, "
            "because unpickling can run arbitrary code"
        )
    try:
        with safe_open(path, framework="pt") as reader:
            metadata = reader.metadata() or {}
            tensors = {key: reader.get_tensor(key) for key in reader.keys()}
    except (SafetensorError, OSError, ValueError) as error:
        raise CheckpointError(f"{path} is not a readable safetensors checkpoint (corrupt or truncated?): {error}") from None
    if metadata.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a fastsnn checkpoint (format {metadata.get('format')!r}, expected {FORMAT!r})")
    try:
        spec = ModelSpec(**json.loads(metadata["spec"]))
        training = json.loads(metadata["training"])
    except (KeyError, TypeError, json.JSONDecodeError) as error:
        raise CheckpointError(f"{path} has unreadable metadata ({error})") from None
    optimizer_state: dict[int, dict[str, torch.Tensor]] = {}
    model_state = {}
    for key, value in tensors.items():
        if key.startswith("model."):
            model_state[key.removeprefix("model.")] = value
        elif key.startswith("optimizer."):
            index, name = key.removeprefix("optimizer.").split(".", 1)
            optimizer_state.setdefault(int(index), {})[name] = value
    return Checkpoint(spec, model_state, training, optimizer_state, tensors.get("rng.torch"))


def load_state_checked(model: nn.Module, state: dict[str, torch.Tensor], spec: ModelSpec) -> None:
    """Load ``state`` into ``model`` after checking every tensor's name and shape; errors name the tensor."""
    expected = model.state_dict()
    missing = sorted(expected.keys() - state.keys())
    unexpected = sorted(state.keys() - expected.keys())
    if missing or unexpected:
        raise CheckpointError(
            f"checkpoint does not match model {spec.name} (bits={spec.bits}): "
            f"missing tensors {missing[:5]}, unexpected tensors {unexpected[:5]}"
        )
    for key, tensor in state.items():
        if tensor.shape != expected[key].shape:
            raise CheckpointError(
                f"checkpoint tensor {key!r} has shape {tuple(tensor.shape)} but model {spec.name} "
                f"expects {tuple(expected[key].shape)}"
            )
    model.load_state_dict(state)


def restore_optimizer(optimizer: torch.optim.Optimizer, checkpoint: Checkpoint) -> None:
    """Put a checkpoint's per-parameter state and hyper-parameters back into ``optimizer``."""
    parameters = _flat_parameters(optimizer)
    for index, state in checkpoint.optimizer_state.items():
        optimizer.state[parameters[index]] = {key: value.clone() for key, value in state.items()}
    for group, saved in zip(optimizer.param_groups, checkpoint.training.get("param_groups", [])):
        group.update(saved)


def _flat_parameters(optimizer: torch.optim.Optimizer) -> list[torch.Tensor]:
    """The optimizer's parameters in group order: the index that names their saved state."""
    return [p for group in optimizer.param_groups for p in group["params"]]
