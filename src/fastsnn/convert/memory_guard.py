"""Memory guard for simulation: a batch that would not fit at T steps is run in chunks, or refused clearly.

An SNN holds ``[T*B, ...]`` activations, T times what the QANN needs, so a batch size that suits the
QANN can exhaust memory and get the process killed by the operating system. Before simulating, the
guard compares the bytes a batch needs with the free memory of its device and splits the batch
along B when needed. Samples are independent (BatchNorm runs in eval mode), so chunking changes
nothing in the result.

Bytes per sample are measured once per input shape by running one sample through a copy of the body
on the ``meta`` device (shapes only: no computation, and the user's hooks are not called), with
hooks on the leaf modules: without autograd, the peak is taken as ``SAFETY`` times the largest layer's input plus
output (tensors kept alive across layers, e.g. by shortcuts, and the neuron's scan buffers); with
autograd every output is kept for the backward pass, so it is their sum.
"""

import copy
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from ..errors import FastSNNError

SAFETY = 2.0
USABLE_FRACTION = 0.8  # of the free memory; the rest is left to everything else


def available_bytes(device: torch.device) -> int | None:
    """Free memory of ``device`` in bytes (CUDA: ``mem_get_info``; CPU: MemAvailable, capped by a cgroup limit), or None if unknown."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    if device.type != "cpu":
        return None
    found = []
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                found.append(int(line.split()[1]) * 1024)
    except (OSError, ValueError, IndexError):
        pass
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if limit != "max":
            found.append(int(limit) - int(Path("/sys/fs/cgroup/memory.current").read_text()))
    except (OSError, ValueError):
        pass
    return min(found) if found else None


def run_in_chunks(simulate: Callable, body: nn.Module, x: torch.Tensor, T: int, cache: dict):
    """``simulate(x)`` for ``x [B, ...]``, split along B into chunks that fit in free memory.

    ``simulate`` runs the network on a batch; ``cache`` maps an input signature to its measured
    bytes per sample (kept by the caller, so each shape is measured once).

    Raises:
        FastSNNError: even one sample does not fit; or, with autograd on (where chunking saves
            nothing), the batch does not fit: the message suggests a batch size.
    """
    available = available_bytes(x.device)
    if available is None or x.shape[0] == 0:
        return simulate(x)
    key = (tuple(x.shape[1:]), x.dtype, str(x.device), torch.is_grad_enabled())
    if key not in cache:
        cache[key] = _bytes_per_sample(body, x[:1], T)
    per_sample, budget, batch = cache[key], available * USABLE_FRACTION, x.shape[0]
    if per_sample is None or per_sample * batch <= budget:
        return simulate(x)
    if per_sample > budget:
        raise FastSNNError(
            f"simulating one sample of shape {tuple(x.shape[1:])} at T={T} needs about {_gib(per_sample)} GiB, "
            f"but only {_gib(available)} GiB of {x.device} memory is free; lower T or the input size"
        )
    chunk = int(budget // per_sample)
    if torch.is_grad_enabled():
        raise FastSNNError(
            f"a batch of {batch} samples at T={T} needs about {_gib(per_sample * batch)} GiB with gradients, "
            f"but only {_gib(available)} GiB of {x.device} memory is free; use a batch size of at most {chunk}"
        )
    return _concat([simulate(part) for part in x.split(chunk)])


def _bytes_per_sample(body: nn.Module, sample: torch.Tensor, T: int) -> int | None:
    """Bytes one sample needs, from the tensor sizes of every leaf module on the meta device (None if it cannot run there)."""
    shadow = copy.deepcopy(body).to("meta")
    sizes = []

    def record(_module, inputs, output):
        sizes.append((_bytes(inputs), _bytes(output)))

    for module in shadow.modules():
        module._forward_hooks.clear()
        module._forward_pre_hooks.clear()
        if next(module.children(), None) is None:
            module.register_forward_hook(record)
    repeated = torch.empty((T, *sample.shape[1:]), dtype=sample.dtype, device="meta")
    try:
        shadow(repeated)
    except (RuntimeError, NotImplementedError, TypeError, ValueError):  # an operation without a meta kernel
        return None
    if not sizes:
        return None
    if torch.is_grad_enabled():
        return sizes[0][0] + sum(out for _, out in sizes)
    return int(SAFETY * max(inp + out for inp, out in sizes))


def _bytes(value) -> int:
    if isinstance(value, torch.Tensor):
        return value.numel() * value.element_size()
    if isinstance(value, dict):
        return sum(_bytes(v) for v in value.values())
    if isinstance(value, (tuple, list)):
        return sum(_bytes(v) for v in value)
    return 0


def _concat(outputs: list):
    """Join per-chunk outputs along the batch dimension, through tuples, lists and dicts."""
    first = outputs[0]
    if isinstance(first, torch.Tensor):
        return torch.cat(outputs)
    if isinstance(first, dict):
        return {key: _concat([o[key] for o in outputs]) for key in first}
    return type(first)(_concat(list(parts)) for parts in zip(*outputs))


def _gib(size: float) -> str:
    return f"{size / 2**30:.2f}"
