"""``fastsnn finetune``: fine-tune the SNN of a QANN checkpoint on its training data, save it as an SNN checkpoint."""

import dataclasses
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from ..convert import convert
from ..finetune import LayerReport, finetune
from ..neuron import Surrogate
from ..table import format_table
from .checkpoint import save_checkpoint
from .sources import dataset_of, default_device, load_qann, tuning_split


def finetune_checkpoint(
    path: str | Path,
    out: str | Path,
    *,
    T: int | None = None,
    signed: bool = True,
    objective: Surrogate = "ste",
    steps_per_layer: int = 100,
    lr: float = 1e-3,
    batch_size: int = 64,
    held_out: int = 1000,
    limit: int | None = None,
    dataset: str | None = None,
    data_root=None,
    seed: int = 0,
    device: torch.device | None = None,
    progress: bool = True,
) -> list[LayerReport]:
    """Convert the QANN at ``path``, fine-tune it layer by layer, write the SNN checkpoint to ``out``.

    Tuning batches (shuffled with ``seed``) come from the training split minus its last ``held_out``
    images, which decide keep/revert; ``limit`` caps the tuning images. The checkpoint records the
    settings and the per-layer reports, which are also returned.
    """
    device = device or default_device()
    checkpoint, qann = load_qann(path)
    dataset = dataset_of(checkpoint, path, dataset)
    tuning, held = tuning_split(dataset, data_root, held_out=held_out, limit=limit)
    generator = torch.Generator().manual_seed(seed)
    qann = qann.to(device)
    reports: list[LayerReport] = []
    snn = finetune(
        convert(qann, signed=signed, T=T),
        qann,
        DataLoader(tuning, batch_size=batch_size, shuffle=True, generator=generator),
        held_out=DataLoader(held, batch_size=250),
        objective=objective,
        steps_per_layer=steps_per_layer,
        lr=lr,
        progress=progress,
        on_layer=reports.append,
    )
    settings = {
        "objective": objective,
        "steps_per_layer": steps_per_layer,
        "lr": lr,
        "batch_size": batch_size,
        "held_out": held_out,
        "limit": limit,
        "seed": seed,
        "layers": [dataclasses.asdict(r) for r in reports],
    }
    spec = dataclasses.replace(checkpoint.spec, snn={"T": snn.T, "signed": signed})
    save_checkpoint(
        out, snn.cpu(), spec, training={"dataset": dataset, "converted_from": str(path), "finetune": settings}
    )
    return reports


def format_reports(reports: list[LayerReport]) -> str:
    """One line per tuned layer: layer error and output error before → after, kept or reverted."""
    rows = [("layer", "params", "layer |Δ|/θ before → after", "output MSE before → after", "")]
    for r in reports:
        rows.append(
            (
                r.layer,
                str(len(r.parameters)),
                f"{r.layer_error_before:.4f} → {r.layer_error_after:.4f}",
                f"{r.output_error_before:.4g} → {r.output_error_after:.4g}",
                "kept" if r.kept else "reverted",
            )
        )
    return format_table(rows)
