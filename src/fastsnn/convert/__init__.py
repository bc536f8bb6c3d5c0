"""Conversion of a quantized ANN into a spiking network."""

from .convert import CONVERTERS, convert
from .rate_norm import convert_rate_norm
from .spiking_network import SpikingNetwork

__all__ = ["CONVERTERS", "SpikingNetwork", "convert", "convert_rate_norm"]
