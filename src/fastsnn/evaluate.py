"""Accuracy of ANNs and SNNs, and the agreement between an SNN and its QANN."""

import torch
from torch import nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from .checkpoint import load_checkpoint
from .convert import convert
from .data import load_dataset
from .errors import FastSNNError


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


@torch.no_grad()
def evaluate_conversion(
    qann: nn.Module,
    loader: DataLoader,
    time_steps: list[int],
    *,
    float_model: nn.Module | None = None,
    device: torch.device = torch.device("cpu"),
    progress: bool = True,
) -> dict:
    """Accuracy of the float ANN, the QANN and its unsigned / signed SNNs at each T, in one pass.

    Returns ``{"samples": N, "float": acc | None, "qann": acc, "snn": [{"T", "signed", "accuracy",
    "agreement"}, ...]}`` where agreement is the share of inputs on which SNN and QANN predict the
    same class. Accuracies are in [0, 1].
    """
    qann = qann.to(device).eval()
    snns = {(T, signed): convert(qann, signed=signed, T=T) for T in time_steps for signed in (False, True)}
    models = {"qann": qann, **({"float": float_model.to(device).eval()} if float_model is not None else {}), **snns}
    correct = dict.fromkeys(models, 0)
    agree = dict.fromkeys(snns, 0)
    samples = 0
    for images, labels in tqdm(loader, desc="evaluate", disable=not progress, leave=False):
        images, labels = images.to(device), torch.as_tensor(labels).to(device)
        predicted = {key: model(images).argmax(1) for key, model in models.items()}
        for key in models:
            correct[key] += (predicted[key] == labels).sum().item()
        for key in snns:
            agree[key] += (predicted[key] == predicted["qann"]).sum().item()
        samples += labels.numel()
    return {
        "samples": samples,
        "float": correct["float"] / samples if float_model is not None else None,
        "qann": correct["qann"] / samples,
        "snn": [
            {"T": T, "signed": signed, "accuracy": correct[(T, signed)] / samples, "agreement": agree[(T, signed)] / samples}
            for (T, signed) in snns
        ],
    }


def format_results(results: dict) -> str:
    """The results of :func:`evaluate_conversion` as a plain-text table (percentages)."""
    rows = [("model", "T", "accuracy %", "agreement with QANN %")]
    if results["float"] is not None:
        rows.append(("float ANN", "-", f"{100 * results['float']:.2f}", "-"))
    rows.append(("QANN", "-", f"{100 * results['qann']:.2f}", "-"))
    for row in results["snn"]:
        name = "SNN signed" if row["signed"] else "SNN unsigned"
        rows.append((name, str(row["T"]), f"{100 * row['accuracy']:.2f}", f"{100 * row['agreement']:.2f}"))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines) + f"\n({results['samples']} test images)"


def evaluate_checkpoint(
    path,
    *,
    float_checkpoint=None,
    time_steps: list[int] | None = None,
    dataset: str | None = None,
    data_root=None,
    batch_size: int = 500,
    limit: int | None = None,
    progress: bool = True,
    device: torch.device | None = None,
) -> dict:
    """:func:`evaluate_conversion` for a QANN checkpoint on its data set's test split.

    ``time_steps`` defaults to ``[2^bits − 1]``; ``dataset`` to the one recorded at training;
    ``device`` to CUDA when available. The result also records the checkpoint paths and the data set.
    """
    checkpoint = load_checkpoint(path)
    if checkpoint.spec.bits is None or checkpoint.spec.snn is not None:
        raise FastSNNError(f"{path} is not a quantized ANN checkpoint (bits={checkpoint.spec.bits}); evaluate takes a QANN")
    dataset = dataset or checkpoint.training.get("dataset")
    if dataset is None:
        raise FastSNNError(f"{path} does not record its data set; pass --dataset")
    checkpoint.spec.check_dataset(dataset)
    float_model = None
    if float_checkpoint is not None:
        float_state = load_checkpoint(float_checkpoint)
        checkpoint.spec.check_same_network(float_state.spec, f"float checkpoint {float_checkpoint}")
        float_model = float_state.build_model()
    test_set = load_dataset(dataset, train=False, root=data_root)
    if limit is not None:
        test_set = torch.utils.data.Subset(test_set, range(min(limit, len(test_set))))
    results = evaluate_conversion(
        checkpoint.build_model(),
        DataLoader(test_set, batch_size=batch_size),
        time_steps or [2**checkpoint.spec.bits - 1],
        float_model=float_model,
        device=device or torch.device("cuda" if torch.cuda.is_available() else "cpu"),
        progress=progress,
    )
    return {"checkpoint": str(path), "float_checkpoint": str(float_checkpoint) if float_checkpoint else None, "dataset": dataset, **results}
