"""``fastsnn evaluate``: task metrics and agreement of a QANN checkpoint's SNNs, fine-tuned SNNs and baselines."""

from collections.abc import Sequence
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from ..analysis import activity, compare_models, conversion_models
from ..convert import convert, convert_rate_norm
from ..data import dataset_info, load_dataset
from ..errors import FastSNNError
from ..quant import levels
from .predictions import save_predictions as save_predictions_as_png
from .sources import (
    calibration_batches,
    dataset_of,
    default_device,
    first,
    load_float,
    load_qann,
    load_snn,
    snn_label,
    test_loader,
)


def rate_norm_label(percentile: float) -> str:
    """``"rate-norm max"`` for 100, else ``"rate-norm <p>%"``."""
    return "rate-norm max" if percentile == 100 else f"rate-norm {percentile:g}%"


def evaluate_checkpoint(
    path,
    *,
    float_checkpoint=None,
    finetuned: Sequence = (),
    rate_norm: Sequence[float] = (),
    rate_norm_time_steps: list[int] | None = None,
    time_steps: list[int] | None = None,
    dataset: str | None = None,
    data_root=None,
    batch_size: int = 500,
    limit: int | None = None,
    progress: bool = True,
    device: torch.device | None = None,
    save_predictions: str | Path | None = None,
    prediction_count: int = 8,
    activity_images: int | None = None,
) -> dict:
    """:func:`~fastsnn.analysis.evaluate_conversion` for a QANN checkpoint on its data set's test split.

    Args:
        finetuned: SNN checkpoints (from ``fastsnn finetune``) evaluated in the same pass.
        rate_norm: percentiles (100 = max) of rate-norm baselines built from the float checkpoint,
            thresholds from 1024 training images, simulated at ``rate_norm_time_steps`` (default
            ``time_steps``).
        time_steps: default ``[2^bits − 1]``; ``dataset``: default the one recorded at training;
            ``device``: default CUDA when available.
        save_predictions: a folder for pictures of the first ``prediction_count`` test images with
            their targets and the predictions of the QANN, the signed SNN at the first T and the
            fine-tuned SNNs (segmentation and detection).
        activity_images: if given, also measure spikes, SOPs, MACs and energy per image of every model but
            the float ANN on the first ``activity_images`` test images (:func:`fastsnn.analysis.activity`):
            ``results["activity"]``, one entry per model.
    The result also records the checkpoint paths, the data set and, for a detector, its anchors.
    """
    device = device or default_device()
    checkpoint, qann = load_qann(path)
    dataset = dataset_of(checkpoint, path, dataset)
    task = checkpoint.spec.task
    if save_predictions is not None and task.name == "classification":
        raise FastSNNError(
            f"--save-predictions draws segmentation masks or detection boxes; {checkpoint.spec.name} is a "
            "classification model"
        )
    time_steps = time_steps or [levels(checkpoint.spec.bits)]
    float_model = load_float(float_checkpoint, like=checkpoint).to(device) if float_checkpoint is not None else None
    extra = {}
    for snn_path in finetuned:
        snn_checkpoint, snn = load_snn(snn_path, like=checkpoint)
        extra[(snn_label(snn_checkpoint), snn.T)] = snn.to(device)
    if rate_norm:
        if float_model is None:
            raise FastSNNError("rate-norm baselines convert the float ANN: pass --float-checkpoint")
        calibration = calibration_batches(load_dataset(dataset, train=True, root=data_root))
        for percentile in rate_norm:
            for T in rate_norm_time_steps or time_steps:
                extra[(rate_norm_label(percentile), T)] = convert_rate_norm(
                    float_model, calibration, T=T, percentile=percentile
                )
    loader = test_loader(dataset, data_root, batch_size=batch_size, limit=limit)
    models = conversion_models(qann.to(device), time_steps, float_model=float_model, extra=extra)
    results = compare_models(models, loader, task=task, progress=progress)
    if activity_images is not None:
        measured = DataLoader(first(loader.dataset, activity_images), batch_size=batch_size)
        results["activity"] = [
            {**activity(model, measured).to_dict(), "model": name, "T": T}  # T None for an ANN, as in the rows
            for (name, T), model in models.items()
            if name != "float ANN"
        ]
    if save_predictions is not None:
        images, targets = next(iter(DataLoader(loader.dataset, batch_size=prediction_count)))
        shown = {"QANN": qann, f"SNN signed T={time_steps[0]}": convert(qann, T=time_steps[0])}
        shown |= {f"{label} T={T}": snn for (label, T), snn in extra.items() if label.startswith("SNN")}
        info = dataset_info(dataset)
        save_predictions_as_png(shown, images, targets, task, save_predictions, mean=info.mean, std=info.std)
    return {
        "checkpoint": str(path),
        "float_checkpoint": str(float_checkpoint) if float_checkpoint else None,
        "finetuned": [str(p) for p in finetuned],
        "dataset": dataset,
        **({"anchors": checkpoint.spec.options["anchors"]} if "anchors" in checkpoint.spec.options else {}),
        **results,
    }
