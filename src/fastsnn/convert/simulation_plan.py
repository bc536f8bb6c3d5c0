"""How a spiking network simulates a batch: the stem once, and chunks that fit the caches and free memory.

A :class:`SimulationPlan` is made once per input shape, by one dry run of the body on the ``meta``
device (shapes only: nothing is computed, and hooks on the network are not called), and read by
:class:`~fastsnn.SpikingNetwork` on every call. It knows:

- **the stem**: the layers before any neuron. Under direct coding their input, the image, is the same
  at every step, so they run once on ``[B, ...]`` instead of on ``[T*B, ...]``, and the neurons they
  feed are told so (:attr:`fastsnn.IFNeuron.constant_current`). Not where the body mixes its input
  with spikes (e.g. ``branch(x) + x``), where ``[B, ...]`` and ``[T*B, ...]`` tensors would meet: the
  dry run fails there, and the body runs on the image repeated T times.
- **cache-sized chunks**: without autograd on CPU a batch is simulated in chunks along B whose working
  set (T · chunk images through the largest layer, its input and output) is ``CHUNK_BYTES``. Measured on
  2 cores (benchmarks/simulation_cost.py): folding all of a batch of 100 into one call at T = 15 ran
  ResNet-20 1.9x-2.7x and VGG-11 1.1x-1.2x slower than such chunks, whose tensors stay in the caches and
  are reused by the allocator instead of being mapped afresh.
- **the memory guard**: an SNN holds ``[T*B, ...]`` activations, T times what the QANN needs, so a batch
  that suits the QANN can exhaust memory and get the process killed. The bytes a sample needs are
  compared with the device's free memory (read once, when planning): without autograd a batch that does
  not fit is simulated in chunks that do; with autograd (which keeps every activation for the backward
  pass, so chunks save nothing) it is refused, naming a batch size that fits.

Samples are independent (BatchNorm runs in eval mode), so neither the stem nor the chunks change a spike.
"""

import copy
import dataclasses

import torch
from torch import nn

from ..errors import FastSNNError
from ..neuron import IFNeuron, repeat_over_time
from .free_memory import available_bytes

CHUNK_BYTES = 32 * 2**20  # working set of one chunk on CPU without autograd (see the module docstring)
SAFETY = 2.0  # peak without autograd, in units of the largest layer's input and output (shortcuts, scan buffers)
USABLE_FRACTION = 0.8  # of the free memory; the rest is left to everything else


@dataclasses.dataclass(frozen=True)
class SimulationPlan:
    """How a spiking network simulates inputs of one shape ``[B, *sample_shape]`` on one device.

    ``stem``: paths (in the body) of the leaf modules that run once per image, on ``[B, ...]``; empty
    where the body runs on the image repeated T times. ``stem_fed``: the IF neurons among them.
    ``image_bytes``: the largest layer's input and output for one image over the T steps;
    ``gradient_bytes``: what one image keeps for the backward pass (its input and every layer's output);
    both None if the dry run failed (then batches run whole). ``free_bytes``: the device's free memory
    when planned, None if unknown (then memory bounds nothing).
    """

    T: int
    sample_shape: tuple[int, ...]
    device: torch.device
    stem: frozenset[str]
    stem_fed: tuple[str, ...]
    image_bytes: int | None
    gradient_bytes: int | None
    free_bytes: int | None

    @classmethod
    def measure(cls, body: nn.Module, T: int, x: torch.Tensor) -> "SimulationPlan":
        """The plan for running ``body`` (IF neurons of T steps) on batches shaped like ``x [B, ...]``.

        One dry run on meta finds the stem and the layer sizes; a second one, on the image repeated T
        times, only if the first fails (the body mixes its input with spikes).
        """
        images = torch.empty(2, *x.shape[1:], dtype=x.dtype, device="meta")  # one image would broadcast
        calls = _dry_run(body, T, images, stem_once=True)
        stem = frozenset(call.path for call in calls or () if call.rows == len(images))
        if calls is None or any(call.path in stem and call.rows != len(images) for call in calls):
            calls, stem = _dry_run(body, T, images, stem_once=False), frozenset()
        stem_fed = tuple(dict.fromkeys(call.path for call in calls or () if call.neuron and call.path in stem))
        image_bytes = gradient_bytes = None
        if calls:
            image_bytes = max(call.input_bytes + call.output_bytes for call in calls) // len(images)
            gradient_bytes = (calls[0].input_bytes + sum(call.output_bytes for call in calls)) // len(images)
        return cls(
            T=T,
            sample_shape=tuple(x.shape[1:]),
            device=x.device,
            stem=stem,
            stem_fed=stem_fed,
            image_bytes=image_bytes,
            gradient_bytes=gradient_bytes,
            free_bytes=available_bytes(x.device),
        )

    @property
    def stem_once(self) -> bool:
        """Whether the body runs on the images ``[B, ...]`` themselves (else on ``[T*B, ...]``)."""
        return bool(self.stem)

    def chunk_size(self, batch: int, *, gradients: bool) -> int:
        """How many samples of a batch of ``batch`` to simulate in one call (``batch``: all at once).

        Without ``gradients``: at most a cache-sized chunk on CPU, and at most what fits in free memory.
        With ``gradients``: the whole batch.

        Raises:
            FastSNNError: one sample does not fit in free memory (lower T or the input size); or, with
                ``gradients``, the batch does not fit: the message names a batch size that does.
        """
        if self.image_bytes is None or batch == 0:
            return batch
        size = batch
        if not gradients and self.device.type == "cpu":
            size = min(size, max(1, CHUNK_BYTES // self.image_bytes))
        if self.free_bytes is None:
            return size
        per_sample = self.gradient_bytes if gradients else SAFETY * self.image_bytes
        budget = self.free_bytes * USABLE_FRACTION
        if per_sample > budget:
            raise FastSNNError(
                f"simulating one sample of shape {self.sample_shape} at T={self.T} needs about {_gib(per_sample)} "
                f"GiB, but only {_gib(self.free_bytes)} GiB of {self.device} memory is free; lower T or the input size"
            )
        fits = int(budget // per_sample)
        if gradients and batch > fits:
            raise FastSNNError(
                f"a batch of {batch} samples at T={self.T} needs about {_gib(per_sample * batch)} GiB with gradients, "
                f"but only {_gib(self.free_bytes)} GiB of {self.device} memory is free; "
                f"use a batch size of at most {fits}"
            )
        return min(size, fits)

    def split(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """``x [B, ...]`` as the chunks along B to simulate one at a time (with autograd as it is now)."""
        size = self.chunk_size(x.shape[0], gradients=torch.is_grad_enabled())
        return x.split(size) if size < x.shape[0] else (x,)


@dataclasses.dataclass(frozen=True)
class _Call:
    """One leaf-module call of a dry run: its path, whether it is an IF neuron, the leading dimension of
    its first tensor input (None without one), and the bytes of its inputs and of its output."""

    path: str
    neuron: bool
    rows: int | None
    input_bytes: int
    output_bytes: int


def _dry_run(body: nn.Module, T: int, images: torch.Tensor, *, stem_once: bool) -> list[_Call] | None:
    """Every leaf-module call of ``body`` on ``images [b, ...]`` (meta), in call order; None if it cannot run.

    ``body`` runs as a copy on the meta device, without hooks, on the images themselves (``stem_once``:
    a neuron whose current has b rows is fed by the stem and reads it as constant) or on the images
    repeated T times. None if the body cannot run so (it mixes ``[b, ...]`` with ``[T*b, ...]``, has an
    operation without a meta kernel, or shapes that do not fit) or has no leaf module.
    """
    shadow = copy.deepcopy(body).to("meta")
    calls = []

    def tell_stem_fed(module, inputs):
        module.constant_current = stem_once and _rows(inputs) == len(images)

    def record(path):
        def hook(module, inputs, output):
            calls.append(_Call(path, isinstance(module, IFNeuron), _rows(inputs), _bytes(inputs), _bytes(output)))

        return hook

    for path, module in shadow.named_modules():
        module._forward_hooks.clear()
        module._forward_pre_hooks.clear()
        if isinstance(module, IFNeuron):
            module.surrogate = None
            module.register_forward_pre_hook(tell_stem_fed)
        if next(module.children(), None) is None:
            module.register_forward_hook(record(path))
    current = images if stem_once else repeat_over_time(images, T).reshape(T * len(images), *images.shape[1:])
    try:
        with torch.no_grad():
            shadow(current)
    except (RuntimeError, NotImplementedError, TypeError, ValueError):
        return None
    return calls or None


def _rows(inputs: tuple) -> int | None:
    first = next((value for value in inputs if isinstance(value, torch.Tensor)), None)
    return first.shape[0] if first is not None and first.dim() > 0 else None


def _bytes(value) -> int:
    if isinstance(value, torch.Tensor):
        return value.numel() * value.element_size()
    if isinstance(value, dict):
        return sum(_bytes(v) for v in value.values())
    if isinstance(value, (tuple, list)):
        return sum(_bytes(v) for v in value)
    return 0


def _gib(size: float) -> str:
    return f"{size / 2**30:.2f}"
