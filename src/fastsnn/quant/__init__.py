"""Quantized ANN: activation quantizer, optional weight quantizer, and the model swap."""

from .activation import QuantReLU, levels, quantize_activation
from .calibrate import relu_percentiles
from .swap import quantize
from .weight import PerChannelWeightQuantizer, quantize_weights

__all__ = [
    "PerChannelWeightQuantizer",
    "QuantReLU",
    "levels",
    "quantize",
    "quantize_activation",
    "quantize_weights",
    "relu_percentiles",
]
