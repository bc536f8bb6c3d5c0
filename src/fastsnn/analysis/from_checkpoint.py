"""Per-layer conversion error of a QANN checkpoint's SNNs on real test images."""

from collections.abc import Sequence
from pathlib import Path

import torch

from ..convert import convert
from ..errors import FastSNNError
from ..runs import dataset_of, default_device, load_float, load_qann, load_snn, snn_label, test_loader
from .conversion_error import ConversionErrors, conversion_errors


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
) -> ConversionErrors:
    """:func:`conversion_errors` of the unsigned and signed SNNs of the QANN at ``path`` (and of the
    fine-tuned SNN checkpoints ``finetuned``) over the first ``limit`` test images.

    With ``float_checkpoint`` the quantization error (float ANN vs QANN) is measured too.
    """
    checkpoint, qann = load_qann(path)
    variants = {"unsigned": convert(qann, signed=False, T=T), "signed": convert(qann, signed=True, T=T)}
    for snn_path in finetuned:
        snn_checkpoint, snn = load_snn(snn_path, like=checkpoint)
        if snn.T != variants["signed"].T:
            raise FastSNNError(f"{snn_path} simulates T={snn.T} but the analysis runs at T={variants['signed'].T}; pass -T {snn.T}")
        variants[snn_label(snn_checkpoint).removeprefix("SNN ")] = snn
    return conversion_errors(
        qann,
        variants,
        test_loader(dataset_of(checkpoint, path, dataset), data_root, batch_size=batch_size, limit=limit),
        float_model=load_float(float_checkpoint, like=checkpoint) if float_checkpoint is not None else None,
        device=device or default_device(),
    )
