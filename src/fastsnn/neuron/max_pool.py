"""Max-pooling of spikes, exact in rate: pool the cumulative spike counts and emit their step difference.

With ``in(t)`` the input spikes of step t (amplitude a: values a·s, s in {−1, 0, 1}), the output is

    C(t) = Σ_{s ≤ t} in(s),  C(0) = 0;    out(t) = maxpool(C(t)) − maxpool(C(t−1))

Why it is exact: the sum telescopes, Σ_t out(t) = maxpool(C(T)), the max-pool of the input's spike counts,
so the output rate is the max-pool of the input rates, which is what the QANN computes on its quantized
activations. Why each out(t) is a spike again: a max moves by no more than its arguments do,
|maxpool(C(t)) − maxpool(C(t−1))| ≤ max |in(t)| = a, and all counts are multiples of a, so out(t) is
in {−a, 0, a}; for unsigned input the counts never fall, and out(t) is in {0, a}. (The amplitude must be
the same within a window, as it is for an IF neuron's θ, a scalar or one per channel.)

Why the cumulative form: max-pooling each step's spikes alone is not max-pooling rates. Two inputs spiking at
alternating steps, 1 0 1 0 and 0 1 0 1, have rate 1/2 each, the max of their rates is 1/2, but the max of
each step is 1 1 1 1: rate 1. Pooling the counts picks, at every step, the input with the most spikes so far.
"""

import copy

import torch
from torch import nn

from .if_neuron import check_time_steps, over_time

MAX_POOLS = (nn.MaxPool2d, nn.AdaptiveMaxPool2d)  # the pools a SpikingMaxPool replaces


class SpikingMaxPool(nn.Module):
    """The spiking replacement of a max-pool whose input is spikes (see the module docstring).

    Time is folded into the batch: input ``[T*B, C, H, W]``, output ``[T*B, C, H', W']`` with the
    shape the pool gives. Differentiable (cumulative sum, pool and difference are torch ops).

    Args:
        pool: the ``nn.MaxPool2d`` / ``nn.AdaptiveMaxPool2d`` applied to the counts, with all its options
            (kernel size, stride, padding, dilation, ceil mode / output size); not ``return_indices``.
        T: number of time steps.

    Raises:
        TypeError: ``pool`` is no max-pool of :data:`MAX_POOLS`.
        ValueError: ``pool`` returns indices.
    """

    def __init__(self, pool: nn.MaxPool2d | nn.AdaptiveMaxPool2d, T: int):
        super().__init__()
        if not isinstance(pool, MAX_POOLS):
            raise TypeError(f"SpikingMaxPool needs an nn.MaxPool2d or nn.AdaptiveMaxPool2d, got {type(pool).__name__}")
        if pool.return_indices:
            raise ValueError(
                f"{type(pool).__name__} with return_indices=True has no spiking equivalent; use return_indices=False"
            )
        self._T = check_time_steps(T)
        self.pool = pool

    @property
    def T(self) -> int:
        """Number of time steps (fixed at construction)."""
        return self._T

    @classmethod
    def from_pool(cls, pool: nn.MaxPool2d | nn.AdaptiveMaxPool2d, *, T: int, signed: bool = True) -> "SpikingMaxPool":
        """The spiking max-pool of a copy of ``pool``. ``signed`` is the converters' common argument: the
        cumulative form pools signed and unsigned spikes alike."""
        return cls(copy.deepcopy(pool), T)

    def forward(self, spikes: torch.Tensor) -> torch.Tensor:
        """Spikes ``[T*B, C, H, W]`` -> spikes ``[T*B, C, H', W']``: out(t) = pool(C(t)) − pool(C(t−1))."""
        counts = over_time(spikes, self.T).cumsum(0)  # C(1..T): [T, B, C, H, W]
        pooled = self.pool(counts.flatten(0, 1))  # [T*B, C, H', W']
        pooled = pooled.reshape(self.T, -1, *pooled.shape[1:])
        steps = torch.diff(pooled, dim=0, prepend=torch.zeros_like(pooled[:1]))  # pool(C(0)) = pool(0) = 0
        return steps.reshape(-1, *steps.shape[2:])

    def extra_repr(self) -> str:
        return f"T={self.T}"
