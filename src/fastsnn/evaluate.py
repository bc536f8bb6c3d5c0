"""Accuracy of ANNs and SNNs, and the agreement between an SNN and its QANN."""

from collections.abc import Mapping, Sequence

import torch
from torch import nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from .checkpoint import load_checkpoint
from .convert import convert, convert_rate_norm
from .data import load_dataset
from .errors import FastSNNError
from .table import format_table
from .runs import calibration_batches, dataset_of, default_device, load_float, load_qann, load_snn, snn_label, test_loader


@torch.no_grad()
def predictions(model: nn.Module, loader: DataLoader, device: torch.device = torch.device("cpu")) -> tuple[torch.Tensor, torch.Tensor]:
    """Predicted and true classes ``([N], [N])`` of ``model`` (set to eval mode) over ``loader``."""
    was_training = model.training
    model.eval()
    predicted, labels = [], []
    try:
        for images, targets in loader:
            predicted.append(model(images.to(device)).argmax(1).cpu())
            labels.append(torch.as_tensor(targets))
    finally:
        model.train(was_training)
    return torch.cat(predicted), torch.cat(labels)


def accuracy(model: nn.Module, loader: DataLoader, device: torch.device = torch.device("cpu")) -> float:
    """Top-1 accuracy of ``model`` over ``loader``, in [0, 1]."""
    predicted, labels = predictions(model, loader, device)
    return (predicted == labels).sum().item() / labels.numel()


RowKey = tuple[str, int | None]  # (model, T); T is None for an ANN


@torch.no_grad()
def compare_models(
    models: Mapping[RowKey, nn.Module],
    loader: DataLoader,
    *,
    reference: RowKey = ("QANN", None),
    device: torch.device = torch.device("cpu"),
    progress: bool = True,
) -> dict:
    """Accuracy of every model, and its agreement with ``models[reference]``, in one pass over ``loader``.

    Returns ``{"samples": N, "rows": [{"model", "T", "accuracy", "agreement"}, ...]}`` in the order of
    ``models``; agreement is the share of inputs on which a model predicts the reference's class (None
    for the reference itself and for ANNs other than it). Accuracies are in [0, 1].
    """
    if reference not in models:
        raise FastSNNError(f"the reference model {reference} is not among the models compared")
    models = {key: model.to(device).eval() for key, model in models.items()}
    correct, agree = dict.fromkeys(models, 0), dict.fromkeys(models, 0)
    samples = 0
    for images, labels in tqdm(loader, desc="evaluate", disable=not progress, leave=False):
        images, labels = images.to(device), torch.as_tensor(labels).to(device)
        predicted = {key: model(images).argmax(1) for key, model in models.items()}
        for key in models:
            correct[key] += (predicted[key] == labels).sum().item()
            agree[key] += (predicted[key] == predicted[reference]).sum().item()
        samples += labels.numel()
    if samples == 0:
        raise FastSNNError("no test images to evaluate on")
    return {
        "samples": samples,
        "rows": [
            {
                "model": name,
                "T": T,
                "accuracy": correct[(name, T)] / samples,
                "agreement": agree[(name, T)] / samples if T is not None else None,
            }
            for name, T in models
        ],
    }


def evaluate_conversion(
    qann: nn.Module,
    loader: DataLoader,
    time_steps: list[int],
    *,
    float_model: nn.Module | None = None,
    extra: Mapping[RowKey, nn.Module] | None = None,
    device: torch.device = torch.device("cpu"),
    progress: bool = True,
) -> dict:
    """:func:`compare_models` for the float ANN (if given), the QANN, its unsigned and signed SNNs at
    each T, and ``extra`` models (fine-tuned SNNs, baselines), all against the QANN."""
    models: dict[RowKey, nn.Module] = {}
    if float_model is not None:
        models[("float ANN", None)] = float_model
    models[("QANN", None)] = qann
    for T in time_steps:
        for signed in (False, True):
            models[("SNN signed" if signed else "SNN unsigned", T)] = convert(qann, signed=signed, T=T)
    models.update(extra or {})
    return compare_models(models, loader, device=device, progress=progress)


def row(results: dict, model: str, T: int | None = None) -> dict:
    """The row of ``model`` at ``T`` in results of :func:`compare_models`."""
    for entry in results["rows"]:
        if entry["model"] == model and entry["T"] == T:
            return entry
    raise KeyError(f"no row for {model} at T={T}")


def format_results(results: dict) -> str:
    """The results of :func:`compare_models` as a plain-text table (percentages)."""
    rows = [("model", "T", "accuracy %", "agreement with QANN %")]
    for entry in results["rows"]:
        agreement = "-" if entry["agreement"] is None else f"{100 * entry['agreement']:.2f}"
        rows.append((entry["model"], "-" if entry["T"] is None else str(entry["T"]), f"{100 * entry['accuracy']:.2f}", agreement))
    return format_table(rows) + f"\n({results['samples']} test images)"


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
) -> dict:
    """:func:`evaluate_conversion` for a QANN checkpoint on its data set's test split.

    Args:
        finetuned: SNN checkpoints (from ``fastsnn finetune``) evaluated in the same pass.
        rate_norm: percentiles (100 = max) of rate-norm baselines built from the float checkpoint,
            thresholds from 1024 training images, simulated at ``rate_norm_time_steps`` (default
            ``time_steps``).
        time_steps: default ``[2^bits − 1]``; ``dataset``: default the one recorded at training;
            ``device``: default CUDA when available.
    The result also records the checkpoint paths and the data set.
    """
    checkpoint, qann = load_qann(path)
    dataset = dataset_of(checkpoint, path, dataset)
    time_steps = time_steps or [2**checkpoint.spec.bits - 1]
    float_model = load_float(float_checkpoint, like=checkpoint) if float_checkpoint is not None else None
    extra = {}
    for snn_path in finetuned:
        snn_checkpoint, snn = load_snn(snn_path, like=checkpoint)
        extra[(snn_label(snn_checkpoint), snn.T)] = snn
    if rate_norm:
        if float_model is None:
            raise FastSNNError("rate-norm baselines convert the float ANN: pass --float-checkpoint")
        calibration = calibration_batches(load_dataset(dataset, train=True, root=data_root))
        for percentile in rate_norm:
            for T in rate_norm_time_steps or time_steps:
                extra[(rate_norm_label(percentile), T)] = convert_rate_norm(float_model, calibration, T=T, percentile=percentile)
    results = evaluate_conversion(
        qann,
        test_loader(dataset, data_root, batch_size=batch_size, limit=limit),
        time_steps,
        float_model=float_model,
        extra=extra,
        device=device or default_device(),
        progress=progress,
    )
    return {
        "checkpoint": str(path),
        "float_checkpoint": str(float_checkpoint) if float_checkpoint else None,
        "finetuned": [str(p) for p in finetuned],
        "dataset": dataset,
        **results,
    }
