"""Quantized ANN: activation quantizer, optional weight quantizer, and the model swap."""

from .activation import MAX_BITS, MIN_BITS, QuantReLU, check_bits, levels, quantize_activation
from .calibrate import relu_percentiles
from .swap import quantize
from .weight import MAX_WEIGHT_BITS, MIN_WEIGHT_BITS, PerChannelWeightQuantizer, check_weight_bits, quantize_weights_

__all__ = [
    "MAX_BITS",
    "MAX_WEIGHT_BITS",
    "MIN_BITS",
    "MIN_WEIGHT_BITS",
    "PerChannelWeightQuantizer",
    "QuantReLU",
    "check_bits",
    "check_weight_bits",
    "levels",
    "quantize",
    "quantize_activation",
    "quantize_weights_",
    "relu_percentiles",
]
