"""SpikingNetwork: runs a converted body on T time steps folded into the batch."""

import torch
from torch import nn

from ..neuron import IFNeuron
from .memory_guard import run_in_chunks


class SpikingNetwork(nn.Module):
    """A QANN body whose quantized activations are IF neurons, simulated for T steps.

    The input is direct-coded (the image is the input current at every step): ``x [B, ...]`` is
    repeated to ``[T*B, ...]``, every stateless layer runs on all steps at once, and the readout
    (whatever follows the last neuron) is averaged over T, so outputs are on the QANN's scale.
    Outputs may be a tensor or a (nested) tuple / list / dict of tensors with batch dimension first.

    BatchNorm always runs in eval mode (running statistics), also after ``.train()``, because
    batch statistics over ``T*B`` would mix time steps.
    """

    def __init__(self, body: nn.Module, T: int):
        super().__init__()
        self.body = body
        self._T = T
        self._bytes_per_sample: dict = {}  # measured by the memory guard, per input signature

    @property
    def T(self) -> int:
        """Number of simulated time steps."""
        return self._T

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
        """``x [B, ...]`` -> body output averaged over T (same structure as the QANN's output).

        A batch too large for free memory at T steps is simulated in chunks along B (same result);
        see :mod:`fastsnn.convert.memory_guard`.
        """
        return run_in_chunks(self._simulate, self.body, x, self.T, self._bytes_per_sample)

    def _simulate(self, x: torch.Tensor):
        repeated = x.unsqueeze(0).expand(self.T, *x.shape).reshape(self.T * x.shape[0], *x.shape[1:])
        return _mean_over_time(self.body(repeated), self.T)

    def extra_repr(self) -> str:
        return f"T={self.T}"


def _mean_over_time(output, T: int):
    """Average ``[T*B, ...]`` tensors over T, through tuples, lists and dicts."""
    if isinstance(output, torch.Tensor):
        return output.reshape(T, -1, *output.shape[1:]).mean(0)
    if isinstance(output, dict):
        return {key: _mean_over_time(value, T) for key, value in output.items()}
    if isinstance(output, (tuple, list)):
        return type(output)(_mean_over_time(value, T) for value in output)
    raise TypeError(f"SpikingNetwork cannot average an output of type {type(output).__name__} over time")
