"""Memory guard: a plan, made once per input shape, that simulates batches in chunks that fit in memory.

An SNN holds ``[T*B, ...]`` activations, T times what the QANN needs, so a batch size that suits the
QANN can exhaust memory and get the process killed by the operating system. :func:`runner` compares
the bytes a batch needs with the free memory of its device, once, and returns the function to call
on every batch of that shape: the network itself when the batch fits, or the network applied to
chunks along B. Samples are independent (BatchNorm runs in eval mode), so chunking changes nothing
in the result. The guard is a separate, explicit step (the evaluation and analysis loops use it)
rather than part of ``SpikingNetwork.forward``: the forward stays the plain data flow, and free
memory is read once per loop instead of on every call.

Bytes per sample are measured by running one sample through a copy of the body on the ``meta``
device (shapes only: no computation, and the user's hooks are not called), with hooks on the leaf
modules: without autograd, the peak is taken as ``SAFETY`` times the largest layer's input plus
output (tensors kept alive across layers, e.g. by shortcuts, and the neuron's scan buffers); with
autograd every output is kept for the backward pass, so it is their sum.
"""

from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from ..errors import FastSNNError
from .layer_sizes import layer_io_bytes
from .spiking_network import SpikingNetwork, join_batches

SAFETY = 2.0
USABLE_FRACTION = 0.8  # of the free memory; the rest is left to everything else


def available_bytes(
    device: torch.device, *, meminfo: Path = Path("/proc/meminfo"), cgroup: Path = Path("/sys/fs/cgroup")
) -> int | None:
    """Free memory of ``device`` in bytes, or None if unknown.

    CUDA: ``mem_get_info``. CPU: ``MemAvailable`` of ``meminfo``, capped by the cgroup (v2) limit
    ``cgroup/memory.max`` minus ``cgroup/memory.current`` when one is set.
    """
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    if device.type != "cpu":
        return None
    found = []
    try:
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                found.append(int(line.split()[1]) * 1024)
    except (OSError, ValueError, IndexError):
        pass
    try:
        limit = (cgroup / "memory.max").read_text().strip()
        if limit != "max":
            found.append(int(limit) - int((cgroup / "memory.current").read_text()))
    except (OSError, ValueError):
        pass
    return min(found) if found else None


def runner(model: nn.Module, batch: torch.Tensor) -> Callable[[torch.Tensor], object]:
    """The function to run ``model`` on batches shaped like ``batch [B, ...]`` (or smaller) within free memory.

    ``model`` itself unless it is a :class:`SpikingNetwork` whose batch does not fit; then a function
    that simulates chunks along B and joins their outputs. Free memory is read here, once.

    Raises:
        FastSNNError: even one sample does not fit; or, with autograd on (where chunking saves
            nothing), the batch does not fit: the message suggests a batch size.
    """
    if not isinstance(model, SpikingNetwork) or batch.shape[0] == 0:
        return model
    available = available_bytes(batch.device)
    if available is None:
        return model
    per_sample = _bytes_per_sample(model, batch[:1])
    budget, size, T = available * USABLE_FRACTION, batch.shape[0], model.T
    if per_sample is None or per_sample * size <= budget:
        return model
    if per_sample > budget:
        raise FastSNNError(
            f"simulating one sample of shape {tuple(batch.shape[1:])} at T={T} needs about {_gib(per_sample)} GiB, "
            f"but only {_gib(available)} GiB of {batch.device} memory is free; lower T or the input size"
        )
    chunk = int(budget // per_sample)
    if torch.is_grad_enabled():
        raise FastSNNError(
            f"a batch of {size} samples at T={T} needs about {_gib(per_sample * size)} GiB with gradients, "
            f"but only {_gib(available)} GiB of {batch.device} memory is free; use a batch size of at most {chunk}"
        )
    return lambda x: join_batches([model(part) for part in x.split(chunk)])


def _bytes_per_sample(snn: SpikingNetwork, sample: torch.Tensor) -> int | None:
    """Bytes one sample ``[1, ...]`` needs, from the tensor sizes of every layer (None if unknown)."""
    sizes = layer_io_bytes(snn, sample)
    if sizes is None:
        return None
    if torch.is_grad_enabled():
        return sizes[0][0] + sum(out for _, out in sizes)
    return int(SAFETY * max(inp + out for inp, out in sizes))


def _gib(size: float) -> str:
    return f"{size / 2**30:.2f}"
