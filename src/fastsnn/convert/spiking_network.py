"""SpikingNetwork: runs a converted body on T time steps folded into the batch."""

import torch
from torch import nn

from ..errors import ConversionError
from ..neuron import IFNeuron


class SpikingNetwork(nn.Module):
    """A QANN body whose quantized activations are IF neurons, simulated for T steps.

    Direct coding: the image is the input current at every step. Time is folded into the batch,
    so every stateless layer runs once on all steps, and only the neurons know T::

        x [B, ...] -> repeat T times -> [T*B, ...] -> body -> [T*B, ...] -> mean over T -> [B, ...]

    The last step is the readout: whatever follows the last neuron is averaged over T, so outputs
    are on the QANN's scale. Outputs may be a tensor or a (nested) tuple / list / dict of tensors
    with batch dimension first.

    T is the neurons' (all must agree); BatchNorm always runs in eval mode (running statistics),
    also after ``.train()``, because batch statistics over ``T*B`` would mix time steps. To simulate
    a batch too large for free memory, see :func:`fastsnn.convert.memory_guard.runner`.

    Raises:
        ConversionError: the body has no IF neuron, or its neurons disagree on T.
    """

    def __init__(self, body: nn.Module):
        super().__init__()
        self.body = body
        _shared_time_steps(self.neurons())

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
        T, batch = self.T, x.shape[0]
        steps = x.unsqueeze(0).expand(T, *x.shape).reshape(T * batch, *x.shape[1:])  # [T*B, ...]
        return mean_over_time(self.body(steps), T)  # [B, ...]

    def extra_repr(self) -> str:
        return f"T={self.T}"


def _shared_time_steps(neurons: list[tuple[str, IFNeuron]]) -> int:
    """The T all ``neurons`` share; ConversionError naming each neuron's T if there is no single one."""
    steps = {neuron.T for _, neuron in neurons}
    if len(steps) != 1:
        found = ", ".join(f"{path}: T={neuron.T}" for path, neuron in neurons) or "no IF neuron"
        raise ConversionError(f"a SpikingNetwork needs IF neurons that all share one T; found {found}")
    return steps.pop()


def mean_over_time(output, T: int):
    """The readout: ``[T*B, ...]`` tensors averaged over T to ``[B, ...]``, through tuples, lists and dicts."""
    if isinstance(output, torch.Tensor):
        return output.reshape(T, -1, *output.shape[1:]).mean(0)
    if isinstance(output, dict):
        return {key: mean_over_time(value, T) for key, value in output.items()}
    if isinstance(output, (tuple, list)):
        return type(output)(mean_over_time(value, T) for value in output)
    raise TypeError(f"SpikingNetwork cannot average an output of type {type(output).__name__} over time")
