"""``fastsnn finetune``: fine-tune an SNN checkpoint (or the SNN of a QANN checkpoint) on its training data."""

import dataclasses
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from ..convert import SimulationConfig
from ..finetune import FinetuneConfig, LayerReport, finetune
from ..table import format_table
from .data_config import DataConfig, TuningSplit
from .sources import dataset_of, default_device, save_spiking, spiking_pair, tuning_split

FINETUNE_DATA = DataConfig(batch_size=64)


def finetune_checkpoint(
    path: str | Path,
    out: str | Path,
    *,
    config: FinetuneConfig = FinetuneConfig(),
    simulation: SimulationConfig = SimulationConfig(),
    data: DataConfig = FINETUNE_DATA,
    split: TuningSplit = TuningSplit(),
    device: torch.device | None = None,
    progress: bool = True,
) -> list[LayerReport]:
    """Fine-tune the SNN at ``path`` (:func:`fastsnn.finetune`), or the SNN of the QANN at ``path``
    (converted with ``simulation``), and write it with its QANN to the SNN checkpoint ``out``.

    Tuning batches come from the training split of ``data`` as ``split`` divides it; ``data.limit``
    caps the tuning images. The checkpoint records the options and the reports of every correction,
    which are also returned.
    """
    device = device or default_device()
    checkpoint, snn, qann = spiking_pair(path, simulation)
    dataset = dataset_of(checkpoint, path, data.dataset)
    tuning, held = tuning_split(dataset, data.data_root, held_out=split.held_out, limit=data.limit)
    generator = torch.Generator().manual_seed(split.seed)
    reports: list[LayerReport] = []
    tuned = finetune(
        snn.to(device),
        qann.to(device),
        DataLoader(tuning, batch_size=data.batch_size, shuffle=True, generator=generator),
        held_out=DataLoader(held, batch_size=250),
        config=config,
        task=checkpoint.spec.task,
        progress=progress,
        on_layer=reports.append,
    )
    record = dataclasses.asdict(config) | {
        "data": dataclasses.asdict(data) | {"dataset": dataset},
        "split": dataclasses.asdict(split),
        "layers": [dataclasses.asdict(r) for r in reports],
    }
    save_spiking(out, tuned, qann, checkpoint, path, finetune=record)
    return reports


def format_reports(reports: list[LayerReport]) -> str:
    """One line per correction: held-out figure judged, the images it improved / worsened and their sign
    test, layer error, output error and agreement before → after, kept or reverted."""
    rows = [
        (
            "layer",
            "correction",
            "params",
            "criterion",
            "images +/−",
            "p",
            "layer |Δ|/θ",
            "output MSE",
            "agreement %",
            "",
        )
    ]
    for r in reports:
        rows.append(
            (
                r.layer,
                r.correction,
                str(len(r.parameters)),
                f"{r.criterion_before:.4g} → {r.criterion_after:.4g}",
                f"+{r.wins}/−{r.losses}",
                f"{r.p_value:.3g}",
                _change(r.layer_error_before, r.layer_error_after, "{:.4f}"),
                _change(r.output_error_before, r.output_error_after, "{:.4g}"),
                _change(r.agreement_before, r.agreement_after, "{:.2%}"),
                "kept" if r.kept else "reverted",
            )
        )
    return format_table(rows)


def _change(before: float | None, after: float | None, style: str) -> str:
    return "–" if before is None else f"{style.format(before)} → {style.format(after)}".replace("%", "")
