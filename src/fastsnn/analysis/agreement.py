"""Accuracy of ANNs and SNNs, and the agreement between each model and a reference (the QANN)."""

from collections.abc import Mapping

import torch
from torch import nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from ..convert import convert
from ..convert.memory_guard import runner
from ..errors import FastSNNError
from ..model_context import device_of, eval_mode
from ..table import format_table

RowKey = tuple[str, int | None]  # (model, T); T is None for an ANN


@torch.no_grad()
def predictions(model: nn.Module, loader: DataLoader) -> tuple[torch.Tensor, torch.Tensor]:
    """Predicted and true classes ``([N], [N])`` of ``model`` (in eval mode during the call) over ``loader``."""
    predicted, labels = [], []
    with eval_mode(model):
        for images, targets in loader:
            predicted.append(model(images.to(device_of(model))).argmax(1).cpu())
            labels.append(torch.as_tensor(targets))
    return torch.cat(predicted), torch.cat(labels)


def accuracy(model: nn.Module, loader: DataLoader) -> float:
    """Top-1 accuracy of ``model`` over ``loader``, in [0, 1]."""
    predicted, labels = predictions(model, loader)
    return (predicted == labels).sum().item() / labels.numel()


@torch.no_grad()
def compare_models(
    models: Mapping[RowKey, nn.Module],
    loader: DataLoader,
    *,
    reference: RowKey = ("QANN", None),
    progress: bool = True,
) -> dict:
    """Accuracy of every model, and its agreement with ``models[reference]``, in one pass over ``loader``.

    Returns ``{"samples": N, "rows": [{"model", "T", "accuracy", "agreement"}, ...]}`` in the order of
    ``models``; agreement is the share of inputs on which a model predicts the reference's class (None
    for the reference itself and for ANNs other than it). Accuracies are in [0, 1]. Each model runs
    on its own device, in eval mode during the call; SNN batches too large for free memory run in chunks.
    """
    if reference not in models:
        raise FastSNNError(f"the reference model {reference} is not among the models compared")
    correct, agree = dict.fromkeys(models, 0), dict.fromkeys(models, 0)
    samples, runners = 0, None
    with eval_mode(*models.values()):
        for images, labels in tqdm(loader, desc="evaluate", disable=not progress, leave=False):
            labels = torch.as_tensor(labels)
            runners = runners or {key: runner(model, images.to(device_of(model))) for key, model in models.items()}
            predicted = {
                key: runners[key](images.to(device_of(model))).argmax(1).cpu() for key, model in models.items()
            }
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
    return compare_models(models, loader, progress=progress)


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
        rows.append(
            (
                entry["model"],
                "-" if entry["T"] is None else str(entry["T"]),
                f"{100 * entry['accuracy']:.2f}",
                agreement,
            )
        )
    return format_table(rows) + f"\n({results['samples']} test images)"
