"""Spiking neurons: pure multi-step dynamics and the IF neuron module."""

from .dynamics import if_scan
from .if_neuron import (
    SETTINGS,
    SURROGATES,
    IFNeuron,
    Surrogate,
    check_time_steps,
    configured,
    constant_over_time,
    over_time,
    repeat_over_time,
)
from .surrogate import if_scan_surrogate

__all__ = [
    "SETTINGS",
    "SURROGATES",
    "IFNeuron",
    "Surrogate",
    "check_time_steps",
    "configured",
    "constant_over_time",
    "if_scan",
    "if_scan_surrogate",
    "over_time",
    "repeat_over_time",
]
