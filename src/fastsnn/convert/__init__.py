"""Conversion of a quantized ANN into a spiking network."""

from .convert import CONVERTERS, convert
from .spiking_network import SpikingNetwork

__all__ = ["CONVERTERS", "SpikingNetwork", "convert"]
