"""Spiking neurons: pure multi-step dynamics and the IF neuron module."""

from .dynamics import if_scan
from .if_neuron import IFNeuron
from .surrogate import if_scan_surrogate

__all__ = ["IFNeuron", "if_scan", "if_scan_surrogate"]
