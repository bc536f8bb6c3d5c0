"""Activation quantizer: the b-bit, learnably clipped ReLU of the QANN.

    q(x) = (α / L) · clip(floor(L·x/α + 1/2), 0, L),   L = 2^b − 1

Rounding is half *up* (``floor(y + 0.5)``), not ``torch.round`` (half to even),
because the IF neuron that replaces this layer rounds half up: the two must
agree bit for bit.
"""

import math

import torch
from torch import nn

from ..errors import OptionError

MIN_BITS, MAX_BITS = 1, 8  # activation bits: T = 2^b − 1 from 1 to 255 steps


def check_bits(bits) -> int:
    """``bits`` if it is an integer in MIN_BITS..MAX_BITS, else OptionError: the one check of bits in the library."""
    if not isinstance(bits, int) or isinstance(bits, bool) or not MIN_BITS <= bits <= MAX_BITS:
        raise OptionError("bits", f"must be an integer in {MIN_BITS}..{MAX_BITS}, got {bits!r}")
    return bits


def levels(bits: int) -> int:
    """Number of non-zero quantization levels L = 2^b − 1 for ``bits`` bits (= the SNN's T)."""
    return 2**bits - 1


class _QuantizeActivation(torch.autograd.Function):
    """q(x) with straight-through gradients (PACT/LSQ style).

    ∂q/∂x = 1 on 0 < x < α, else 0;  ∂q/∂α = 1 for x ≥ α, q/α − x/α inside, 0 for x ≤ 0.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, alpha: torch.Tensor, num_levels: int) -> torch.Tensor:
        # floor(L·x/α + 1/2), clipped to [0, L], times α/L; in place after the first product
        q = (x * num_levels).div_(alpha).add_(0.5).floor_().clamp_(0, num_levels).mul_(alpha / num_levels)
        ctx.save_for_backward(x, alpha, q)
        return q

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        x, alpha, q = ctx.saved_tensors
        above = x >= alpha
        grad_x = grad_out * ((x > 0) & ~above)
        # Σ grad·1[x ≥ α] + Σ grad·1[0 < x < α]·(q − x)/α, the second through grad_x (already masked)
        grad_alpha = (grad_out * above).sum() + (grad_x * (q - x)).sum() / alpha
        return grad_x, grad_alpha.reshape(alpha.shape), None


def quantize_activation(x: torch.Tensor, alpha: torch.Tensor, bits: int) -> torch.Tensor:
    """Quantized ReLU of ``x`` (any shape) with clip ``alpha`` (scalar tensor) and ``bits`` bits."""
    return _QuantizeActivation.apply(x, alpha, levels(bits))


class QuantReLU(nn.Module):
    """ReLU replaced by a b-bit uniform quantizer with one learnable clip α.

    Args:
        bits: activation bits b (1..8); the matching SNN needs T = 2^b − 1 steps.
        alpha: initial clip value α > 0.
    Shape: any; output has the input's shape.
    """

    def __init__(self, bits: int, alpha: float = 1.0):
        super().__init__()
        check_bits(bits)
        try:
            start = float(alpha)
        except (TypeError, ValueError):
            raise TypeError(f"alpha must be a number, got {alpha!r}") from None
        if not (math.isfinite(start) and start > 0):
            raise ValueError(f"alpha must be a finite number > 0, got {alpha!r}")
        self.bits = bits
        self.alpha = nn.Parameter(torch.tensor(start))

    @property
    def levels(self) -> int:
        """L = 2^b − 1."""
        return levels(self.bits)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return quantize_activation(x, self.alpha, self.bits)

    def extra_repr(self) -> str:
        return f"bits={self.bits}, alpha={self.alpha.item():.4g}"
