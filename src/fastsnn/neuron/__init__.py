"""Spiking neurons: pure multi-step dynamics, the IF neuron module, and the max-pool of spikes."""

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
from .max_pool import MAX_POOLS, SpikingMaxPool
from .surrogate import if_scan_surrogate

__all__ = [
    "MAX_POOLS",
    "SETTINGS",
    "SURROGATES",
    "IFNeuron",
    "SpikingMaxPool",
    "Surrogate",
    "check_time_steps",
    "configured",
    "constant_over_time",
    "if_scan",
    "if_scan_surrogate",
    "over_time",
    "repeat_over_time",
]
