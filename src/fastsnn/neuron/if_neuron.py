"""The IF neuron module: the spiking replacement of a quantized activation."""

import torch
from torch import nn

from ..quant.activation import QuantReLU
from .dynamics import if_scan


class IFNeuron(nn.Module):
    """Integrate-and-fire neurons with soft reset over T steps folded into the batch.

    The only module of a spiking network that knows T: it views its input ``[T*B, ...]`` as
    ``[T, B, ...]``, runs :func:`if_scan`, and returns ``θ · spikes`` as ``[T*B, ...]``.

    Args:
        threshold: θ (the QANN layer's clip α).
        T: number of time steps.
        signed: use the signed neuron that can take back spikes (corrects the sequential error).
        initial_membrane: v0 as a fraction of θ: 0.5 (Fast-SNN's equivalence) or 0 (classic rate-norm).
    """

    def __init__(self, threshold: float | torch.Tensor, T: int, *, signed: bool = True, initial_membrane: float = 0.5):
        super().__init__()
        if not isinstance(T, int) or isinstance(T, bool) or T < 1:
            raise ValueError(f"T must be a positive integer, got {T!r}")
        threshold = torch.as_tensor(threshold, dtype=torch.float32).detach().clone()
        if not bool((threshold > 0).all()):
            raise ValueError(f"threshold must be > 0, got {threshold}")
        self.register_buffer("threshold", threshold)
        if not 0 <= initial_membrane < 1:
            raise ValueError(f"initial_membrane must be in [0, 1) (a fraction of the threshold), got {initial_membrane!r}")
        self.T = T
        self.signed = signed
        self.initial_membrane = initial_membrane

    @classmethod
    def from_quant(cls, quant: QuantReLU, *, T: int | None = None, signed: bool = True) -> "IFNeuron":
        """The neuron equivalent to ``quant``: θ = α, and T = 2^b − 1 unless given."""
        return cls(quant.alpha.detach(), quant.levels if T is None else T, signed=signed)

    def forward(self, current: torch.Tensor) -> torch.Tensor:
        """``[T*B, ...]`` input current -> ``[T*B, ...]`` output ``θ · s``."""
        if current.shape[0] % self.T:
            raise ValueError(f"IFNeuron expects a leading dimension T*B with T={self.T}, got shape {tuple(current.shape)}")
        by_time = current.reshape(self.T, -1, *current.shape[1:])
        spikes = if_scan(by_time, self.threshold, signed=self.signed, initial_membrane=self.initial_membrane)
        return spikes.mul_(self.threshold).reshape(current.shape)

    def extra_repr(self) -> str:
        threshold = f"{self.threshold.item():.4g}" if self.threshold.numel() == 1 else f"<{tuple(self.threshold.shape)}>"
        membrane = "" if self.initial_membrane == 0.5 else f", initial_membrane={self.initial_membrane:g}"
        return f"threshold={threshold}, T={self.T}, signed={self.signed}{membrane}"
