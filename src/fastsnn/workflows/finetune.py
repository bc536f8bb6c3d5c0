"""``fastsnn finetune``: fine-tune the SNN of a QANN checkpoint on its training data, save it as an SNN checkpoint."""

import dataclasses
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from ..convert import convert
from ..finetune import Criterion, LayerReport, finetune
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
    calibrate: bool = False,
    end_to_end_steps: int = 0,
    criterion: Criterion = "agreement",
    batch_size: int = 64,
    held_out: int = 1000,
    limit: int | None = None,
    dataset: str | None = None,
    data_root=None,
    seed: int = 0,
    device: torch.device | None = None,
    progress: bool = True,
) -> list[LayerReport]:
    """Convert the QANN at ``path``, fine-tune it (:func:`fastsnn.finetune`), write the SNN checkpoint to ``out``.

    Tuning batches (shuffled with ``seed``) come from the training split minus its last ``held_out``
    images, which decide keep/revert by ``criterion`` (agreement as the checkpoint's task defines it);
    ``limit`` caps the tuning images. The checkpoint records the settings and the reports of every
    correction, which are also returned.
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
        calibrate=calibrate,
        end_to_end_steps=end_to_end_steps,
        criterion=criterion,
        task=checkpoint.spec.task,
        progress=progress,
        on_layer=reports.append,
    )
    settings = {
        "objective": objective,
        "steps_per_layer": steps_per_layer,
        "lr": lr,
        "calibrate": calibrate,
        "end_to_end_steps": end_to_end_steps,
        "criterion": criterion,
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
    """One line per correction: layer error, output error and agreement before → after, kept or reverted."""
    rows = [("layer", "correction", "params", "layer |Δ|/θ", "output MSE", "agreement %", "")]
    for r in reports:
        layer = "–" if r.layer_error_before is None else f"{r.layer_error_before:.4f} → {r.layer_error_after:.4f}"
        agreement = (
            "–" if r.agreement_before is None else f"{100 * r.agreement_before:.2f} → {100 * r.agreement_after:.2f}"
        )
        rows.append(
            (
                r.layer,
                r.correction,
                str(len(r.parameters)),
                layer,
                f"{r.output_error_before:.4g} → {r.output_error_after:.4g}",
                agreement,
                "kept" if r.kept else "reverted",
            )
        )
    return format_table(rows)
