"""Task metrics of ANNs and SNNs, and the agreement between each model and a reference (the QANN)."""

from collections.abc import Iterable, Mapping

import torch
from torch import nn

from ..convert import convert
from ..errors import FastSNNError
from ..model_context import device_of, eval_mode
from ..progress import tqdm
from ..table import format_table
from ..tasks import Classification, Task

RowKey = tuple[str, int | None]  # (model, T); T is None for an ANN


@torch.no_grad()
def measure(model: nn.Module, loader: Iterable, task: Task | None = None) -> dict[str, float]:
    """The task's metrics of ``model`` (in eval mode during the call) over ``loader`` (default: accuracy)."""
    results = compare_models({("model", None): model}, loader, task=task, reference=("model", None), progress=False)
    return {metric: results["rows"][0][metric] for metric in results["metrics"]}


def accuracy(model: nn.Module, loader: Iterable) -> float:
    """Top-1 accuracy of a classifier over ``loader``, in [0, 1]."""
    return measure(model, loader)["accuracy"]


@torch.no_grad()
def compare_models(
    models: Mapping[RowKey, nn.Module],
    loader: Iterable,
    *,
    task: Task | None = None,
    reference: RowKey = ("QANN", None),
    progress: bool = True,
) -> dict:
    """The task's metrics of every model, and its agreement with ``models[reference]``, in one pass.

    ``loader`` yields ``(images, targets)``; ``task`` defaults to classification. Returns
    ``{"task", "metrics", "agreement_unit", "samples", "rows": [{"model", "T", <metric>..., "agreement"}, ...]}``
    with rows in the order of ``models``; agreement is the share of predictions (images, or pixels for
    segmentation) equal to the reference's, None for the reference itself and for ANNs other than it.
    Each model runs on its own device, in eval mode during the call; SNN batches too large for free
    memory run in chunks.
    """
    task = task or Classification()
    if reference not in models:
        raise FastSNNError(f"the reference model {reference} is not among the models compared")
    meters = {key: task.meter() for key in models}
    agreements = {key: task.agreement_meter() for key in models}
    samples = 0
    with eval_mode(*models.values()):
        for images, targets in tqdm(loader, desc="evaluate", disable=not progress, leave=False):
            predicted = {key: task.decode(m(images.to(device_of(m)))).cpu() for key, m in models.items()}
            for key in models:
                meters[key].update(predicted[key], targets)
                agreements[key].update(predicted[key], predicted[reference])
            samples += images.shape[0]
    if samples == 0:
        raise FastSNNError("no test images to evaluate on")
    rows = []
    for name, T in models:
        agreement = agreements[(name, T)].compute()["agreement"] if T is not None else None
        rows.append({"model": name, "T": T, **meters[(name, T)].compute(), "agreement": agreement})
    return {
        "task": task.name,
        "metrics": list(task.metrics),
        "agreement_unit": task.agreement_unit,
        "samples": samples,
        "rows": rows,
    }


def conversion_models(
    qann: nn.Module,
    time_steps: list[int],
    *,
    float_model: nn.Module | None = None,
    extra: Mapping[RowKey, nn.Module] | None = None,
) -> dict[RowKey, nn.Module]:
    """The models :func:`evaluate_conversion` compares: the float ANN (if given), the QANN, its unsigned and
    signed SNNs at each T, and ``extra`` models (fine-tuned SNNs, baselines), keyed by (row name, T)."""
    models: dict[RowKey, nn.Module] = {}
    if float_model is not None:
        models[("float ANN", None)] = float_model
    models[("QANN", None)] = qann
    for T in time_steps:
        for signed in (False, True):
            models[("SNN signed" if signed else "SNN unsigned", T)] = convert(qann, signed=signed, T=T)
    models.update(extra or {})
    return models


def evaluate_conversion(
    qann: nn.Module,
    loader: Iterable,
    time_steps: list[int],
    *,
    task: Task | None = None,
    float_model: nn.Module | None = None,
    extra: Mapping[RowKey, nn.Module] | None = None,
    progress: bool = True,
) -> dict:
    """:func:`compare_models` for the :func:`conversion_models` of ``qann``, all against the QANN."""
    models = conversion_models(qann, time_steps, float_model=float_model, extra=extra)
    return compare_models(models, loader, task=task, progress=progress)


def row(results: dict, model: str, T: int | None = None) -> dict:
    """The row of ``model`` at ``T`` in results of :func:`compare_models`."""
    for entry in results["rows"]:
        if entry["model"] == model and entry["T"] == T:
            return entry
    raise KeyError(f"no row for {model} at T={T}")


def format_results(results: dict) -> str:
    """The results of :func:`compare_models` as a plain-text table (percentages)."""
    metrics = results.get("metrics", ["accuracy"])
    unit = results.get("agreement_unit", "images")
    rows = [("model", "T", *(f"{metric} %" for metric in metrics), "agreement with QANN %")]
    for entry in results["rows"]:
        agreement = "-" if entry["agreement"] is None else f"{100 * entry['agreement']:.2f}"
        T = "-" if entry["T"] is None else str(entry["T"])
        rows.append((entry["model"], T, *(f"{100 * entry[metric]:.2f}" for metric in metrics), agreement))
    return format_table(rows) + f"\n({results['samples']} test images; agreement over {unit})"
