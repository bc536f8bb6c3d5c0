"""Optional per-channel symmetric weight quantization (independent of activations).

Applied as a ``torch.nn.utils.parametrize`` parametrization, so the float
weight stays the trained parameter and every forward sees its quantized value:

    scale_c = max|W_c| / (2^(b−1) − 1),   Ŵ_c = scale_c · round(W_c / scale_c)

with a straight-through gradient (∂Ŵ/∂W = 1).
"""

import torch
from torch import nn
from torch.nn.utils import parametrize

from ..errors import OptionError

MIN_WEIGHT_BITS, MAX_WEIGHT_BITS = 2, 16


def check_weight_bits(bits) -> int:
    """``bits`` if it is an integer in MIN_WEIGHT_BITS..MAX_WEIGHT_BITS, else OptionError: the one check of
    weight bits in the library."""
    if not isinstance(bits, int) or isinstance(bits, bool) or not MIN_WEIGHT_BITS <= bits <= MAX_WEIGHT_BITS:
        raise OptionError("weight_bits", f"must be an integer in {MIN_WEIGHT_BITS}..{MAX_WEIGHT_BITS}, got {bits!r}")
    return bits


class PerChannelWeightQuantizer(nn.Module):
    """Parametrization: quantize a weight ``[C_out, ...]`` per output channel to ``bits`` bits."""

    def __init__(self, bits: int):
        super().__init__()
        self.bits = check_weight_bits(bits)

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        max_level = 2 ** (self.bits - 1) - 1
        reduce_dims = tuple(range(1, weight.dim()))
        scale = weight.detach().abs().amax(dim=reduce_dims, keepdim=True).clamp_min(1e-12) / max_level
        quantized = torch.clamp(torch.round(weight / scale), -max_level, max_level) * scale
        return weight + (quantized - weight).detach()


def quantize_weights_(model: nn.Module, bits: int) -> None:
    """Register a per-channel weight quantizer on every conv and linear layer of ``model`` (in place)."""
    for module in model.modules():
        if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)) and not parametrize.is_parametrized(
            module, "weight"
        ):
            parametrize.register_parametrization(module, "weight", PerChannelWeightQuantizer(bits))
