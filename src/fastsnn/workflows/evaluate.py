"""``fastsnn evaluate``: task metrics of any checkpoints (float ANN, QANN, SNNs) and their agreement with the QANN."""

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from ..analysis import activity, compare_models, conversion_models
from ..convert import convert_rate_norm
from ..data import dataset_info, load_dataset
from ..errors import OptionError
from ..integer import IntegerNetwork
from ..integer.activity import integer_activity
from ..options import Options, option
from .data_config import DataConfig
from .predictions import save_predictions as save_predictions_as_png
from .sources import calibration_batches, dataset_of, default_device, first, read_compared, test_loader


def percentile(text: str) -> float:
    """A rate-norm threshold as typed: ``max`` (= 100) or a percentile."""
    return 100.0 if text == "max" else float(text)


@dataclasses.dataclass(frozen=True)
class EvaluateConfig(Options):
    """What ``evaluate`` measures besides the checkpoints' own metrics and agreement."""

    time_steps: tuple[int, ...] | None = option(
        None, "time steps of a QANN's SNNs (default 2^bits - 1)", low=1, flags=("-T", "--time-steps")
    )
    rate_norm: tuple[float, ...] | None = option(
        None,
        "baselines: rate-norm conversion of the float ANN, thresholds at the max or a percentile (e.g. max 99.9)",
        low=0,
        high=100,
        low_open=True,
        parse=percentile,
        metavar="NORM",
    )
    rate_norm_time_steps: tuple[int, ...] | None = option(
        None, "time steps of the baselines (default: time_steps)", low=1, flags=("--rate-norm-T",)
    )
    activity: int | None = option(
        None,
        "also measure firing rates, synaptic operations, MACs and energy per image of each model but the float "
        "ANN on the first N test images",
        low=1,
        metavar="N",
    )


EVALUATION_DATA = DataConfig(batch_size=500)


def rate_norm_label(percentile: float) -> str:
    """``"rate-norm max"`` for 100, else ``"rate-norm <p>%"``."""
    return "rate-norm max" if percentile == 100 else f"rate-norm {percentile:g}%"


def evaluate_checkpoints(
    paths: Sequence[str | Path],
    *,
    config: EvaluateConfig = EvaluateConfig(),
    data: DataConfig = EVALUATION_DATA,
    progress: bool = True,
    device: torch.device | None = None,
    save_predictions: str | Path | None = None,
    prediction_count: int = 8,
) -> dict:
    """Metrics of every checkpoint at ``paths`` on the test split, and each model's agreement with the QANN.

    The checkpoints may be of any kind, of one network: a float ANN (row "float ANN"; with
    ``config.rate_norm``, its rate-norm baselines, thresholds from 1024 training images), a QANN (row
    "QANN", and its unsigned and signed SNNs at each of ``config.time_steps``), SNN checkpoints from
    ``fastsnn convert`` / ``finetune`` (one row each). Agreement is measured against the QANN given,
    else the QANN an SNN checkpoint carries (then also a row). ``data.dataset`` defaults to the one
    the first checkpoint was trained on; ``device`` to CUDA when available.

    ``save_predictions``: a folder for pictures of the first ``prediction_count`` test images with
    their targets and the predictions of the QANN and the SNNs (segmentation and detection).
    ``config.activity``: also ``results["activity"]``, spikes, SOPs, MACs and energy per image of
    every model but the float ANN (:func:`fastsnn.analysis.activity`).
    """
    device = device or default_device()
    compared = read_compared(paths)
    checkpoint = compared.first.checkpoint
    dataset = dataset_of(checkpoint, compared.first.path, data.dataset)
    task = checkpoint.spec.task
    if save_predictions is not None and task.name == "classification":
        raise OptionError(
            "save_predictions", f"draws segmentation masks or detection boxes; {checkpoint.spec.name} is a classifier"
        )
    if config.time_steps is not None and not compared.qann_given:
        raise OptionError("time_steps", "applies to the SNNs of a QANN checkpoint; none was named")
    if config.rate_norm is not None and compared.float_model is None:
        raise OptionError("rate_norm", "baselines convert the float ANN: name its checkpoint too")
    models = _models(compared, config, dataset, data.data_root, device)
    loader = test_loader(dataset, data.data_root, batch_size=data.batch_size, limit=data.limit)
    reference = ("QANN", None) if compared.qann is not None else next(iter(models))
    results = compare_models(models, loader, task=task, reference=reference, progress=progress)
    if config.activity is not None:
        measured = DataLoader(first(loader.dataset, config.activity), batch_size=data.batch_size)
        results["activity"] = [
            {**_activity(model, measured).to_dict(), "model": name, "T": T}  # T None for an ANN, as in the rows
            for (name, T), model in models.items()
            if name != "float ANN"
        ]
    if save_predictions is not None:
        _draw(models, loader.dataset, task, dataset_info(dataset), save_predictions, prediction_count)
    anchors = checkpoint.spec.options.get("anchors")
    return {
        "checkpoints": [str(path) for path in paths],
        "dataset": dataset,
        **({"anchors": anchors} if anchors is not None else {}),
        **results,
    }


def _activity(model, batches):
    """:func:`fastsnn.analysis.activity`, or its integer network twin for an exported file: the same rows."""
    return integer_activity(model, batches) if isinstance(model, IntegerNetwork) else activity(model, batches)


def _draw(models: dict, test_set, task, info, folder, count: int) -> None:
    """Pictures of the first ``count`` test images: targets, and the QANN's and signed SNNs' predictions."""
    images, targets = next(iter(DataLoader(test_set, batch_size=count)))
    shown = {name if T is None else f"{name} T={T}": model for (name, T), model in models.items()}
    shown = {name: model for name, model in shown.items() if name.startswith(("QANN", "SNN signed"))}
    save_predictions_as_png(shown, images, targets, task, folder, mean=info.mean, std=info.std)


def _models(compared, config: EvaluateConfig, dataset: str, data_root, device) -> dict:
    """The models compared, keyed by (row name, T): float ANN, QANN and its SNNs, SNN checkpoints, baselines."""
    qann = compared.qann.to(device) if compared.qann is not None else None
    float_model = compared.float_model.to(device) if compared.float_model is not None else None
    if qann is None:
        models = {("float ANN", None): float_model}
    else:
        time_steps = (config.time_steps or compared.default_time_steps) if compared.qann_given else []
        models = conversion_models(qann, time_steps, float_model=float_model)
    models |= {(label, snn.T): snn.to(device) for label, snn in compared.snns.items()}
    if config.rate_norm is not None:
        calibration = calibration_batches(load_dataset(dataset, train=True, root=data_root))
        time_steps = config.rate_norm_time_steps or config.time_steps or compared.default_time_steps
        for percentile_ in config.rate_norm:
            for T in time_steps:
                models[(rate_norm_label(percentile_), T)] = convert_rate_norm(
                    float_model, calibration, T=T, percentile=percentile_
                )
    return models
