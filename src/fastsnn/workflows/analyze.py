"""``fastsnn analyze``: per-layer conversion error and activity of a QANN checkpoint's SNNs on real test images."""

from collections.abc import Sequence
from pathlib import Path

import torch

from ..analysis import ActivityReport, ConversionErrors, activity, conversion_errors, plot_conversion_errors
from ..analysis.activity_plot import plot_activity
from ..convert import convert
from ..errors import FastSNNError
from .atomic import write_json
from .sources import dataset_of, default_device, load_float, load_qann, load_snn, snn_label, test_loader


def analyze_checkpoint(
    path: str | Path,
    *,
    float_checkpoint: str | Path | None = None,
    finetuned: Sequence[str | Path] = (),
    T: int | None = None,
    dataset: str | None = None,
    data_root=None,
    limit: int | None = 1000,
    batch_size: int = 250,
    device: torch.device | None = None,
) -> tuple[ConversionErrors, dict[str, ActivityReport]]:
    """Over the first ``limit`` test images: :func:`~fastsnn.analysis.conversion_errors` of the unsigned and
    signed SNNs of the QANN at ``path`` (and of the fine-tuned SNN checkpoints ``finetuned``), and the
    :func:`~fastsnn.analysis.activity` of the QANN and of each SNN, keyed ``"QANN"``, ``"unsigned"``, ...

    With ``float_checkpoint`` the quantization error (float ANN vs QANN) is measured too.
    """
    device = device or default_device()
    checkpoint, qann = load_qann(path)
    qann = qann.to(device)
    variants = {"unsigned": convert(qann, signed=False, T=T), "signed": convert(qann, signed=True, T=T)}
    for snn_path in finetuned:
        snn_checkpoint, snn = load_snn(snn_path, like=checkpoint)
        if snn.T != variants["signed"].T:
            raise FastSNNError(
                f"{snn_path} simulates T={snn.T} but the analysis runs at T={variants['signed'].T}; pass -T {snn.T}"
            )
        variants[snn_label(snn_checkpoint).removeprefix("SNN ")] = snn.to(device)
    loader = test_loader(dataset_of(checkpoint, path, dataset), data_root, batch_size=batch_size, limit=limit)
    float_model = load_float(float_checkpoint, like=checkpoint).to(device) if float_checkpoint is not None else None
    errors = conversion_errors(qann, variants, loader, float_model=float_model)
    return errors, {name: activity(model, loader) for name, model in {"QANN": qann, **variants}.items()}


def save_analysis(
    errors: ConversionErrors, out: str | Path, *, reports: dict[str, ActivityReport] | None = None, title: str = ""
) -> list[Path]:
    """Write ``conversion_errors.json`` / ``.png`` and, given activity ``reports``, ``activity.json`` / ``.png``
    into folder ``out``; returns the paths written."""
    out = Path(out)
    written = [
        write_json(out / "conversion_errors.json", errors.as_dict()),
        plot_conversion_errors(errors, out / "conversion_errors.png", title=title),
    ]
    if reports is not None:
        written.append(write_json(out / "activity.json", {name: r.to_dict() for name, r in reports.items()}))
        written.append(plot_activity(reports, out / "activity.png", title=title))
    return written
