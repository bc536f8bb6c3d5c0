"""What :func:`~fastsnn.analysis.activity` measures, per layer and in total, and its energy estimate and tables.

Energy after Horowitz, ISSCC 2014 (45 nm): 4.6 pJ per 32-bit float MAC, 0.9 pJ per 32-bit float addition.
"""

import dataclasses
import math
import numbers

from ..table import format_table

PJ_MAC = 4.6  # pJ per 32-bit float multiply-accumulate, 45 nm (Horowitz, ISSCC 2014)
PJ_AC = 0.9  # pJ per 32-bit float addition, 45 nm (Horowitz, ISSCC 2014)


@dataclasses.dataclass(frozen=True)
class LayerActivity:
    """One layer's counts per image (mean over the images measured).

    ``name``: module path (inside ``SpikingNetwork.body`` for an SNN, so SNN and QANN rows share names);
    ``kind``: "neuron", "conv", "linear" or "avgpool"; ``fed_by``: "spikes", "analog" or "mixed" for a
    synaptic layer, None for a neuron. Neuron rows fill ``neurons``, ``spikes_pos``, ``spikes_neg`` and
    ``firing_rate`` (in [0, 1]); synaptic rows fill ``sops``, ``macs`` and ``ann_macs`` (0 / None elsewhere).
    """

    name: str
    kind: str
    fed_by: str | None
    neurons: int
    spikes_pos: float
    spikes_neg: float
    firing_rate: float | None
    sops: float
    macs: float
    ann_macs: float


@dataclasses.dataclass(frozen=True)
class Energy:
    """Energy per image in picojoules: the SNN's (MACs·pj_mac + SOPs·pj_ac), the ANN's (ANN MACs·pj_mac),
    and ``ratio`` = snn_pj / ann_pj (nan without synaptic layers)."""

    snn_pj: float
    ann_pj: float
    ratio: float


@dataclasses.dataclass(frozen=True)
class ActivityReport:
    """Rows in execution order (first call), per image over ``images`` images; ``T`` = 1 for an ANN."""

    rows: list[LayerActivity]
    images: int
    T: int

    @property
    def total(self) -> LayerActivity:
        """The sums over all rows (named "total"); its firing rate is all spikes / (all neurons · T)."""
        neurons = sum(row.neurons for row in self.rows)
        pos, neg = sum(row.spikes_pos for row in self.rows), sum(row.spikes_neg for row in self.rows)
        return LayerActivity(
            name="total",
            kind="",
            fed_by=None,
            neurons=neurons,
            spikes_pos=pos,
            spikes_neg=neg,
            firing_rate=(pos + neg) / (neurons * self.T) if neurons else None,
            sops=sum(row.sops for row in self.rows),
            macs=sum(row.macs for row in self.rows),
            ann_macs=sum(row.ann_macs for row in self.rows),
        )

    def energy(self, pj_mac: float = PJ_MAC, pj_ac: float = PJ_AC) -> Energy:
        """Energy per image: SNN = MACs·pj_mac + SOPs·pj_ac, ANN = ANN MACs·pj_mac (defaults: 45 nm, 32-bit float).

        Raises:
            ValueError: ``pj_mac`` or ``pj_ac`` is not a positive finite number (the message names it).
        """
        pj_mac, pj_ac = _picojoules("pj_mac", pj_mac), _picojoules("pj_ac", pj_ac)
        total = self.total
        snn, ann = total.macs * pj_mac + total.sops * pj_ac, total.ann_macs * pj_mac
        return Energy(snn_pj=snn, ann_pj=ann, ratio=snn / ann if ann else math.nan)

    def to_dict(self, pj_mac: float = PJ_MAC, pj_ac: float = PJ_AC) -> dict:
        """JSON-ready: ``images``, ``T``, ``rows``, ``total``, and ``energy`` with the constants it used."""
        return {
            "images": self.images,
            "T": self.T,
            "rows": [dataclasses.asdict(row) for row in self.rows],
            "total": dataclasses.asdict(self.total),
            "energy": {"pj_mac": pj_mac, "pj_ac": pj_ac, **dataclasses.asdict(self.energy(pj_mac, pj_ac))},
        }


def format_activity(report: ActivityReport, pj_mac: float = PJ_MAC, pj_ac: float = PJ_AC) -> str:
    """A plain-text table: one line per layer and a total, then the energy per image."""
    header = ("#", "layer", "kind", "input", "neurons", "spikes+", "spikes-", "rate", "SOPs", "MACs", "ANN MACs")
    lines = [(str(i + 1), *_cells(row)) for i, row in enumerate(report.rows)]
    energy = report.energy(pj_mac, pj_ac)
    return (
        format_table([header, *lines, ("", *_cells(report.total))])
        + f"\nenergy per image: SNN {energy.snn_pj / 1e6:.4g} µJ, ANN {energy.ann_pj / 1e6:.4g} µJ, "
        f"SNN/ANN {energy.ratio:.4g} ({pj_mac:g} pJ per MAC, {pj_ac:g} pJ per SOP)"
        f"\n(per image, mean over {report.images} images, T={report.T}; residual additions not counted)"
    )


def format_activity_summary(entries: list[dict]) -> str:
    """One line per model of ``[{"model", "T", **ActivityReport.to_dict()}, ...]``: firing rate, SOPs and MACs
    per image, energy per image and its ratio to the ANN's."""
    header = ("model", "T", "firing rate %", "SOPs / image", "MACs / image", "energy µJ", "ANN energy µJ", "SNN / ANN")
    lines = [header]
    for entry in entries:
        total, energy = entry["total"], entry["energy"]
        rate = "-" if total["firing_rate"] is None else f"{100 * total['firing_rate']:.2f}"
        lines.append((
            entry["model"], "-" if entry["T"] is None else str(entry["T"]), rate, f"{total['sops']:,.0f}",
            f"{total['macs']:,.0f}", f"{energy['snn_pj'] / 1e6:.4g}", f"{energy['ann_pj'] / 1e6:.4g}",
            f"{energy['ratio']:.3f}",
        ))  # fmt: skip
    constants = entries[0]["energy"] if entries else {"pj_mac": PJ_MAC, "pj_ac": PJ_AC}
    return format_table(lines) + (
        f"\n(per image; {constants['pj_mac']:g} pJ per MAC, {constants['pj_ac']:g} pJ per SOP, 45 nm after "
        "Horowitz, ISSCC 2014; an ANN's energy is its MACs; residual additions not counted)"
    )


def _cells(row: LayerActivity) -> tuple[str, ...]:
    neuron = row.kind in ("neuron", "")
    return (
        row.name,
        row.kind,
        row.fed_by or "",
        str(row.neurons) if neuron else "",
        f"{row.spikes_pos:,.1f}" if neuron else "",
        f"{row.spikes_neg:,.1f}" if neuron else "",
        f"{row.firing_rate:.4f}" if row.firing_rate is not None else "",
        *(f"{value:,.1f}" if row.kind != "neuron" else "" for value in (row.sops, row.macs, row.ann_macs)),
    )


def _picojoules(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive finite number of picojoules, got {name}={value!r}")
    return float(value)
