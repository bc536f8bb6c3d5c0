"""Saving and loading an integer network: safetensors with the graph in its metadata (:mod:`.reference`'s format)."""

import json
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.numpy import save_file

from ..atomic_file import atomic_path
from ..errors import CheckpointError
from . import reference
from .network import IntegerNetwork

SUFFIX = ".isnn.safetensors"  # what `fastsnn export` names its files, and how `fastsnn evaluate` recognises them


def save(net: IntegerNetwork, path: str | Path) -> Path:
    """Write ``net`` to ``path`` (atomically: a failed write leaves what was there) and return the path.

    The graph is validated first (:func:`reference.check`); a network that breaks the format is never written.
    """
    arrays = {name: tensor.detach().cpu().numpy() for name, tensor in net.tensors().items()}
    text = json.dumps(net.graph, sort_keys=True)
    reference.check(json.loads(text), arrays)
    metadata = {reference.GRAPH_KEY: text, reference.DIGEST_KEY: reference.digest(text, arrays)}
    with atomic_path(path) as temporary:
        save_file(arrays, str(temporary), metadata=metadata)
    return Path(path)


def load(path: str | Path) -> IntegerNetwork:
    """The integer network in ``path``, validated as it is read.

    Raises:
        CheckpointError: the file is missing, damaged, edited or of another format version (one line naming it).
    """
    try:
        model = reference.read(path)
    except reference.IntegerFileError as error:
        raise CheckpointError(str(error)) from None
    return IntegerNetwork(model.graph, {name: torch.from_numpy(array.copy()) for name, array in model.tensors.items()})


def is_integer_file(path: str | Path) -> bool:
    """Whether ``path`` is named as an exported integer network or its header says it is one."""
    if str(path).endswith(SUFFIX):
        return True
    try:
        with safe_open(str(path), "np") as file:
            return reference.GRAPH_KEY in (file.metadata() or {})
    except (OSError, SafetensorError):
        return False
