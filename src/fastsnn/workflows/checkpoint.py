"""Checkpoints: safetensors files that carry everything needed to rebuild and resume.

Layout of one file (no pickle anywhere):
    tensors   ``model.<state key>``          model parameters and buffers
              ``reference.<state key>``      of a spiking network: the QANN it was converted from
                                             (the targets of fine-tuning, the reference of agreement)
              ``optimizer.<param index>.<k>`` per-parameter optimizer state (e.g. momentum)
              ``rng.torch``                   CPU random generator state (for exact resume)
    metadata  ``format``      ``fastsnn-checkpoint-v1``
              ``spec``        JSON :class:`ModelSpec` (architecture, bits, weight bits)
              ``training``    JSON: epoch reached, epochs planned, optimizer hyper-parameters,
                              scheduler state, metrics — whatever the trainer records

Pickle-based ``.pt`` / ``.pth`` files are never read by :func:`load_checkpoint`: unpickling can run
arbitrary code. Bare weights from elsewhere enter through :func:`import_weights`, which reads a
pickle file only on explicit opt-in, and then with ``torch.load(weights_only=True)``.
"""

import dataclasses
import json
import pickle
import zipfile
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import nn

from ..atomic_file import atomic_path
from ..errors import CheckpointError
from ..integer.reference import GRAPH_KEY as INTEGER_GRAPH_KEY
from .model_spec import ModelSpec, spec_from_json

FORMAT = "fastsnn-checkpoint-v1"
PICKLE_SUFFIXES = (".pt", ".pth", ".pkl", ".bin", ".ckpt")
_PICKLE_REFUSAL = (
    "{path} is a pickle-based PyTorch file, which fastsnn does not load by default because unpickling "
    "can run arbitrary code hidden in the file; if you trust it, import its weights once with "
    "`fastsnn import {path} --allow-pickle --model NAME --dataset NAME ...` (API: import_weights(path, spec, "
    "allow_pickle=True)), which reads it with torch.load(weights_only=True) and writes a safetensors checkpoint"
)


@dataclasses.dataclass
class Checkpoint:
    """A checkpoint read back: spec, model state, and training state for resuming."""

    spec: ModelSpec
    model_state: dict[str, torch.Tensor]
    training: dict
    optimizer_state: dict[int, dict[str, torch.Tensor]]
    rng_state: torch.Tensor | None
    reference_state: dict[str, torch.Tensor] = dataclasses.field(default_factory=dict)

    def build_model(self) -> nn.Module:
        """The model with this checkpoint's weights, validated tensor by tensor."""
        model = self.spec.build()
        load_state_checked(model, self.model_state, self.spec)
        return model

    def build_reference(self) -> nn.Module | None:
        """The QANN a spiking network's checkpoint carries (None if it carries none), validated."""
        if not self.reference_state:
            return None
        spec = dataclasses.replace(self.spec, snn=None)
        model = spec.build()
        load_state_checked(model, self.reference_state, spec)
        return model


def save_checkpoint(
    path: str | Path,
    model: nn.Module,
    spec: ModelSpec,
    *,
    training: dict | None = None,
    reference: nn.Module | None = None,
    optimizer: torch.optim.Optimizer | None = None,
    save_rng: bool = False,
) -> Path:
    """Write ``model`` (and optionally the ``reference`` QANN of a spiking network, optimizer and RNG
    state) to ``path`` atomically.

    The file is written under a temporary name in the same folder, flushed to disk, then renamed
    over ``path``: a crash leaves the previous checkpoint intact, never a half-written one.
    """
    path = Path(path)
    tensors = {f"model.{key}": value.detach().contiguous().clone() for key, value in model.state_dict().items()}
    if reference is not None:
        state = reference.state_dict().items()
        tensors |= {f"reference.{key}": value.detach().contiguous().clone() for key, value in state}
    training = dict(training or {})
    if optimizer is not None:
        for index, parameter in enumerate(_flat_parameters(optimizer)):
            for key, value in optimizer.state.get(parameter, {}).items():
                tensors[f"optimizer.{index}.{key}"] = torch.as_tensor(value).detach().contiguous().clone()
        training["param_groups"] = [{k: v for k, v in g.items() if k != "params"} for g in optimizer.param_groups]
    if save_rng:
        tensors["rng.torch"] = torch.get_rng_state()
    metadata = {"format": FORMAT, "spec": json.dumps(dataclasses.asdict(spec)), "training": json.dumps(training)}
    with atomic_path(path) as temporary:
        save_file(tensors, temporary, metadata=metadata)
    return path


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Read and validate a checkpoint written by :func:`save_checkpoint`.

    Raises:
        CheckpointError: missing file, pickle-based file, corrupt or truncated file, wrong format or
            metadata — always one line naming the file.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    if path.suffix.lower() in PICKLE_SUFFIXES or _is_pickle_archive(path):
        raise CheckpointError(_PICKLE_REFUSAL.format(path=path))
    metadata, tensors = _read_safetensors(path)
    if INTEGER_GRAPH_KEY in metadata:
        raise CheckpointError(
            f"{path} is an exported integer network (fastsnn export): it is evaluated, not trained, converted or "
            "fine-tuned; pass the checkpoint it was exported from"
        )
    if metadata.get("format") != FORMAT:
        raise CheckpointError(
            f"{path} is not a fastsnn checkpoint (format {metadata.get('format')!r}, expected {FORMAT!r})"
        )
    try:
        spec = spec_from_json(json.loads(metadata["spec"]))
        training = json.loads(metadata["training"])
        if not isinstance(training, dict):
            raise ValueError("training state is not a JSON object")
        optimizer_state: dict[int, dict[str, torch.Tensor]] = {}
        model_state, reference_state = {}, {}
        for key, value in tensors.items():
            if key.startswith("model."):
                model_state[key.removeprefix("model.")] = value
            elif key.startswith("reference.") and spec.snn is not None:
                reference_state[key.removeprefix("reference.")] = value
            elif key.startswith("optimizer."):
                index, name = key.removeprefix("optimizer.").split(".", 1)
                optimizer_state.setdefault(int(index), {})[name] = value
            elif key != "rng.torch":
                raise ValueError(f"unexpected tensor {key!r}")
        rng_state = tensors.get("rng.torch")
        if rng_state is not None and (rng_state.dtype != torch.uint8 or rng_state.dim() != 1):
            raise ValueError("tensor 'rng.torch' is not a 1-D uint8 generator state")
    except (KeyError, TypeError, ValueError) as error:  # json.JSONDecodeError is a ValueError
        raise CheckpointError(f"{path} has invalid metadata or tensor names ({error})") from None
    return Checkpoint(spec, model_state, training, optimizer_state, rng_state, reference_state)


def import_weights(path: str | Path, spec: ModelSpec, *, allow_pickle: bool = False) -> Checkpoint:
    """A checkpoint of ``spec`` holding the bare weights in ``path``, checked tensor by tensor.

    ``path`` is a safetensors file of a plain state dict, a fastsnn checkpoint (its model's tensors), or —
    only with ``allow_pickle=True`` — a ``torch.save``'d state dict (or ``{"model" | "state_dict": state dict,
    ...}``), read with ``torch.load(weights_only=True)``, which refuses any pickled object other than tensors
    and plain containers.

    Raises:
        CheckpointError: refused pickle, unreadable file, not a state dict, or tensors that do not
            match the model of ``spec`` (naming the file, the tensor and both shapes).
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"weights file {path} does not exist")
    if path.suffix.lower() in PICKLE_SUFFIXES or _is_pickle_archive(path):
        if not allow_pickle:
            raise CheckpointError(_PICKLE_REFUSAL.format(path=path))
        state = _read_pickled_state(path)
    else:
        metadata, state = _read_safetensors(path)
        if metadata.get("format") == FORMAT:
            state = load_checkpoint(path).model_state
    checkpoint = Checkpoint(spec_from_json(dataclasses.asdict(spec)), state, {}, {}, None)
    try:
        checkpoint.build_model()  # validates every name, shape and dtype
    except CheckpointError as error:
        raise CheckpointError(f"{path}: {error}") from None
    return checkpoint


def _read_safetensors(path: Path) -> tuple[dict[str, str], dict[str, torch.Tensor]]:
    """Metadata and tensors of a safetensors file; any defect is one CheckpointError naming it."""
    try:
        with safe_open(path, framework="pt") as reader:
            metadata = reader.metadata() or {}
            tensors = {key: reader.get_tensor(key) for key in reader.keys()}
    except (SafetensorError, OSError, ValueError, RuntimeError) as error:
        detail = " ".join(str(error).split())[:200]
        raise CheckpointError(f"{path} is not a readable safetensors file (corrupt or truncated?): {detail}") from None
    return metadata, tensors


def _read_pickled_state(path: Path) -> dict[str, torch.Tensor]:
    """A state dict from a ``torch.save`` file, loaded with ``weights_only=True`` onto the CPU."""
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, OSError, EOFError, ValueError, zipfile.BadZipFile) as error:
        detail = " ".join(str(error).split())[:200]
        raise CheckpointError(
            f"{path} cannot be read as weights only (corrupt, or holds more than tensors?): {detail}"
        ) from None
    for key in ("model", "state_dict"):
        if isinstance(loaded, dict) and isinstance(loaded.get(key), dict):
            loaded = loaded[key]
            break
    if not (
        isinstance(loaded, dict)
        and loaded
        and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in loaded.items())
    ):
        raise CheckpointError(f"{path} does not hold a state dict (a mapping of names to tensors)")
    return dict(loaded)


def _is_pickle_archive(path: Path) -> bool:
    """Whether ``path`` is a ``torch.save`` zip archive (holding a pickle), whatever its suffix."""
    try:
        return zipfile.is_zipfile(path) and any(name.endswith("data.pkl") for name in zipfile.ZipFile(path).namelist())
    except (OSError, zipfile.BadZipFile):
        return False


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
        if tensor.dtype.is_floating_point != expected[key].dtype.is_floating_point:
            raise CheckpointError(
                f"checkpoint tensor {key!r} has dtype {tensor.dtype} "
                f"but model {spec.name} expects {expected[key].dtype}"
            )
    model.load_state_dict(state)


def restore_optimizer(optimizer: torch.optim.Optimizer, checkpoint: Checkpoint) -> None:
    """Put a checkpoint's per-parameter state and hyper-parameters back into ``optimizer``."""
    parameters = _flat_parameters(optimizer)
    for index, state in checkpoint.optimizer_state.items():
        optimizer.state[parameters[index]] = {key: value.clone() for key, value in state.items()}
    for group, saved in zip(optimizer.param_groups, checkpoint.training.get("param_groups", []), strict=False):
        group.update(saved)


def _flat_parameters(optimizer: torch.optim.Optimizer) -> list[torch.Tensor]:
    """The optimizer's parameters in group order: the index that names their saved state."""
    return [p for group in optimizer.param_groups for p in group["params"]]
