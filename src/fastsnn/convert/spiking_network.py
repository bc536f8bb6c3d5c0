"""SpikingNetwork: runs a converted body on T time steps folded into the batch."""

import dataclasses

import torch
from torch import nn

from ..errors import ConversionError
from ..neuron import IFNeuron, constant_current
from .layer_sizes import layer_io_bytes

# Working set of one simulated chunk on CPU: T · chunk images through the largest layer (its input and
# output). Measured on 2 cores (benchmarks/simulation_cost.py): folding all of a batch of 100 into one
# call at T = 15 ran ResNet-20 2.7x and VGG-11 1.2x slower than chunks of this size, whose tensors stay
# in the caches and are reused by the allocator instead of being mapped afresh.
CHUNK_BYTES = 32 * 2**20


class SpikingNetwork(nn.Module):
    """A QANN body whose quantized activations are IF neurons, simulated for T steps.

    Direct coding: the image is the input current at every step. Time is folded into the batch,
    so every stateless layer runs once on all steps, and only the neurons know T::

        x [B, ...] -> body -> [T*B, ...] -> mean over T -> [B, ...]

    The layers before the first neurons (the stem) see the same input at every step, so they run
    once on ``[B, ...]``; each neuron they feed reads that current as T identical steps
    (:func:`~fastsnn.neuron.constant_current`) and emits ``[T*B, ...]``, from where every layer runs
    on all steps at once. The last step is the readout: whatever follows the last neuron is averaged
    over T, so outputs are on the QANN's scale. Outputs may be a tensor or a (nested) tuple / list /
    dict of tensors with batch dimension first.

    Without autograd on CPU, a batch is simulated in chunks along B whose working set fits the
    caches (``CHUNK_BYTES``): samples are independent, so the result is the same. The layer sizes
    (and whether the stem can run once) are found at the first call for each input shape, by running
    the body on the meta device (shapes only). With autograd the batch runs whole (a
    gradient keeps every activation anyway). To simulate a batch too large for free memory with
    gradients, see :func:`fastsnn.convert.memory_guard.runner`.

    T is the neurons' (all must agree); BatchNorm always runs in eval mode (running statistics),
    also after ``.train()``, because batch statistics over ``T*B`` would mix time steps.

    Raises:
        ConversionError: the body has no IF neuron, or its neurons disagree on T.
    """

    def __init__(self, body: nn.Module):
        super().__init__()
        self.body = body
        _shared_time_steps(self.neurons())
        self._plans: dict[tuple, _Plan] = {}  # (image shape, dtype) -> how to simulate it

    @property
    def T(self) -> int:
        """Number of simulated time steps: that of every IF neuron in the body."""
        return _shared_time_steps(self.neurons())

    def neurons(self) -> list[tuple[str, IFNeuron]]:
        """``(path, neuron)`` for every IF neuron, in module-definition order."""
        return [(name, m) for name, m in self.body.named_modules() if isinstance(m, IFNeuron)]

    def train(self, mode: bool = True) -> "SpikingNetwork":
        super().train(mode)
        for module in self.body.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.eval()
        return self

    def forward(self, x: torch.Tensor):
        """``x [B, ...]`` -> body output averaged over T (same structure as the QANN's output)."""
        T, plan = self.T, self._plan(x)
        chunk = x.shape[0]
        if plan.largest_layer_bytes and not torch.is_grad_enabled() and x.device.type == "cpu":
            chunk = max(1, CHUNK_BYTES // plan.largest_layer_bytes)
        if chunk >= x.shape[0]:
            return self._simulate(x, T, plan.constant_prefix)
        return join_batches([self._simulate(part, T, plan.constant_prefix) for part in x.split(chunk)])

    def _simulate(self, x: torch.Tensor, T: int, constant_prefix: bool):
        """``x [b, ...]`` -> body output averaged over the T steps, all b images in one call."""
        batch = x.shape[0]
        if not constant_prefix:  # the image repeated at every step, [T*b, ...]
            x = x.unsqueeze(0).expand(T, *x.shape).reshape(T * batch, *x.shape[1:])
        with constant_current(batch):
            return mean_over_time(self.body(x), T, batch)

    def _plan(self, x: torch.Tensor) -> "_Plan":
        """How to simulate inputs shaped like ``x [B, ...]``, found once per shape by running the body on meta.

        The constant prefix is used unless the body mixes a prefix tensor with spikes (e.g. adds its
        own input to a spiking branch), where ``[B, ...]`` and ``[T*B, ...]`` tensors would meet.
        """
        key = (tuple(x.shape[1:]), x.dtype)
        if key not in self._plans:
            pair = torch.empty(2, *x.shape[1:], dtype=x.dtype, device="meta")  # one image would broadcast
            with constant_current(2):
                sizes = layer_io_bytes(self.body, pair)
            constant_prefix = sizes is not None
            if not constant_prefix:
                sizes = layer_io_bytes(self.body, pair.repeat(self.T, *[1] * (x.dim() - 1)))
                constant_prefix = sizes is None  # neither ran on meta: keep the fast path
            largest = max(inp + out for inp, out in sizes) // 2 if sizes else None
            self._plans[key] = _Plan(constant_prefix, largest)
        return self._plans[key]

    def extra_repr(self) -> str:
        return f"T={self.T}"


@dataclasses.dataclass(frozen=True)
class _Plan:
    """How a SpikingNetwork simulates one input shape: whether the stem runs once on ``[B, ...]``, and the
    bytes of its largest layer (input and output, all T steps) per image, or None if unknown."""

    constant_prefix: bool
    largest_layer_bytes: int | None


def _shared_time_steps(neurons: list[tuple[str, IFNeuron]]) -> int:
    """The T all ``neurons`` share; ConversionError naming each neuron's T if there is no single one."""
    steps = {neuron.T for _, neuron in neurons}
    if len(steps) != 1:
        found = ", ".join(f"{path}: T={neuron.T}" for path, neuron in neurons) or "no IF neuron"
        raise ConversionError(f"a SpikingNetwork needs IF neurons that all share one T; found {found}")
    return steps.pop()


def mean_over_time(output, T: int, batch: int):
    """The readout: ``[T*B, ...]`` tensors averaged over T to ``[B, ...]``, through tuples, lists and dicts.

    A ``[B, ...]`` tensor (reached by no neuron, so the same at every step) is its own mean.
    """
    if isinstance(output, torch.Tensor):
        if output.dim() > 0 and output.shape[0] == batch:
            return output
        if output.dim() == 0 or output.shape[0] != T * batch:
            raise ValueError(
                f"SpikingNetwork expects outputs with T*B = {T * batch} (or B = {batch}) rows, "
                f"got shape {tuple(output.shape)}"
            )
        return output.reshape(T, batch, *output.shape[1:]).mean(0)
    if isinstance(output, dict):
        return {key: mean_over_time(value, T, batch) for key, value in output.items()}
    if isinstance(output, (tuple, list)):
        return type(output)(mean_over_time(value, T, batch) for value in output)
    raise TypeError(f"SpikingNetwork cannot average an output of type {type(output).__name__} over time")


def join_batches(outputs: list):
    """Join per-chunk outputs along the batch dimension, through tuples, lists and dicts."""
    first = outputs[0]
    if isinstance(first, torch.Tensor):
        return torch.cat(outputs)
    if isinstance(first, dict):
        return {key: join_batches([o[key] for o in outputs]) for key in first}
    return type(first)(join_batches(list(parts)) for parts in zip(*outputs, strict=True))
