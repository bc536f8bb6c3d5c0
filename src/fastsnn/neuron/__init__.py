"""Spiking neurons: pure multi-step dynamics and the IF neuron module."""

from .dynamics import if_scan
from .if_neuron import IFNeuron

__all__ = ["IFNeuron", "if_scan"]
