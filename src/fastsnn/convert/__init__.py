"""Conversion of a quantized ANN into a spiking network."""

from .config import SimulationConfig
from .convert import CONVERTERS, convert
from .rate_norm import convert_rate_norm
from .simulation_plan import SimulationPlan
from .spiking_network import SpikingNetwork

__all__ = ["CONVERTERS", "SimulationConfig", "SimulationPlan", "SpikingNetwork", "convert", "convert_rate_norm"]
