"""Measurements of converted networks: accuracy and agreement, per-layer conversion error (table, JSON, plot),
activity and cost (spikes, SOPs, MACs, energy)."""

from .activations import recorded_outputs
from .activity import activity
from .activity_report import ActivityReport, Energy, LayerActivity, format_activity, format_activity_summary
from .agreement import (
    accuracy,
    compare_models,
    conversion_models,
    evaluate_conversion,
    format_results,
    measure,
    row,
)
from .conversion_error import ConversionErrors, conversion_errors, format_conversion_errors, plot_conversion_errors

__all__ = [
    "ActivityReport",
    "ConversionErrors",
    "Energy",
    "LayerActivity",
    "accuracy",
    "activity",
    "compare_models",
    "conversion_models",
    "conversion_errors",
    "evaluate_conversion",
    "format_activity",
    "format_activity_summary",
    "format_conversion_errors",
    "format_results",
    "plot_conversion_errors",
    "measure",
    "recorded_outputs",
    "row",
]
