"""Picture of :func:`~fastsnn.analysis.activity` reports: firing rate per spiking layer, SOPs per synaptic layer."""

from collections.abc import Mapping
from typing import TYPE_CHECKING

from .activity_report import ActivityReport

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def plot_activity(reports: Mapping[str, ActivityReport], title: str = "") -> "Figure":
    """A figure of two panels, one line per report (named by its key): the firing rate of each IF layer (left;
    reports without spiking layers, such as an ANN's, draw none) and the SOPs (for an ANN: MACs) per image of
    each synaptic layer (right, log scale), in execution order. Save it with ``figure.savefig(path)``; no
    pyplot state or backend is touched (safe in a notebook)."""
    from matplotlib.figure import Figure

    layers = max(len(report.rows) for report in reports.values()) if reports else 1
    figure = Figure(figsize=(max(9.0, 0.5 * layers + 4), 4))
    rates, operations = figure.subplots(1, 2)
    for name, report in reports.items():
        neurons = [row for row in report.rows if row.kind == "neuron"]
        synapses = [row for row in report.rows if row.kind != "neuron"]
        if neurons:
            rates.plot([row.name for row in neurons], [row.firing_rate for row in neurons], marker="o", label=name)
        counts = [row.sops + row.macs for row in synapses]
        operations.plot([row.name for row in synapses], counts, marker="o", label=f"{name} (T={report.T})")
    rates.set_ylabel("firing rate (spikes per neuron per step)")
    operations.set_ylabel("SOPs + MACs per image")
    operations.set_yscale("log")
    for axis in (rates, operations):
        axis.tick_params(axis="x", labelrotation=60, labelsize=7)
        axis.grid(alpha=0.3)
        axis.legend(fontsize=7)
    figure.suptitle(title or "Activity per layer")
    figure.tight_layout()
    return figure
