"""Picture of :func:`~fastsnn.analysis.activity` reports: firing rate per spiking layer, SOPs per synaptic layer."""

from collections.abc import Mapping
from pathlib import Path

from .activity import ActivityReport


def plot_activity(reports: Mapping[str, ActivityReport], path: str | Path, title: str = "") -> Path:
    """Save a PNG of two panels, one line per report (named by its key): the firing rate of each IF layer
    and the SOPs (for an ANN: MACs) per image of each synaptic layer, in execution order, log scale."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    layers = max(len(report.rows) for report in reports.values()) if reports else 1
    figure, (rates, operations) = plt.subplots(1, 2, figsize=(max(9.0, 0.5 * layers + 4), 4))
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
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path
