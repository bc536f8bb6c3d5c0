"""Measurements of converted networks: per-layer conversion error, as a table, JSON and plot."""

from .activations import recorded_outputs
from .conversion_error import ConversionErrors, conversion_errors, format_conversion_errors, plot_conversion_errors
from .from_checkpoint import analyze_checkpoint

__all__ = [
    "ConversionErrors",
    "analyze_checkpoint",     "conversion_errors",
    "format_conversion_errors",
    "plot_conversion_errors",
    "recorded_outputs",
]
