"""Per-layer conversion error: where an SNN departs from its QANN, and how much is quantization.

For every spiking layer l (execution order) and every SNN variant, the *accumulating* error is

    e_l = mean over samples and units of |rate_l − q_l| / θ_l

where rate_l is the SNN's mean output θ·s over T and q_l the QANN's quantized activation. Given
the float ANN the QANN was trained from, the *quantization* error mean |relu_l − q_l| / θ_l is
reported beside it. One unit of e is a full threshold; one quantization step at T steps is 1/T.
Beside the layers, the mean squared difference between each SNN's and the QANN's outputs
(logits) summarises what the errors do to the result, and, given the task, so does the agreement
(share of predictions equal to the QANN's).
"""

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING

import torch
from torch import nn

from ..convert import SpikingNetwork
from ..errors import FastSNNError
from ..model_context import device_of, eval_mode
from ..quant import QuantReLU
from ..table import format_table
from ..tasks import Task
from .activations import recorded_outputs

if TYPE_CHECKING:
    from matplotlib.figure import Figure


@dataclasses.dataclass
class ConversionErrors:
    """Mean normalised error per layer. ``accumulating[variant][i]`` belongs to ``layers[i]``;
    ``output[variant]`` is the mean squared difference of the SNN's and the QANN's outputs;
    ``agreement[variant]`` the share of its predictions equal to the QANN's (None without a task)."""

    layers: list[str]
    samples: int
    quantization: list[float] | None
    accumulating: dict[str, list[float]]
    output: dict[str, float]
    agreement: dict[str, float] | None = None

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


@torch.no_grad()
def conversion_errors(
    qann: nn.Module,
    snns: Mapping[str, SpikingNetwork],
    loader: Iterable,
    *,
    float_model: nn.Module | None = None,
    task: Task | None = None,
    on_batch: Callable[[str, torch.Tensor, torch.Tensor, object], None] | None = None,
) -> ConversionErrors:
    """Measure the per-layer error of each SNN in ``snns`` (e.g. ``{"unsigned": ..., "signed": ...}``)
    against ``qann`` over ``loader`` (batches of ``(images [B, C, H, W], labels)``).

    All SNNs must come from ``qann`` (same neuron paths). Each model runs on its own device, in eval
    mode during the call (its flags are restored on exit); SNN batches too large for free memory run
    in chunks. With ``task`` the agreement of each SNN's predictions with the QANN's is measured too.
    ``on_batch(variant, output, reference, targets)`` sees each SNN's outputs, the QANN's and the batch's
    targets (on the CPU), e.g. to score the predictions image by image.
    """
    if not snns:
        raise FastSNNError("conversion_errors needs at least one SNN variant")
    paths = [path for path, _ in next(iter(snns.values())).neurons()]
    for name, snn in snns.items():
        if [path for path, _ in snn.neurons()] != paths:
            raise FastSNNError(
                f"SNN variant {name!r} has other spiking layers than the first variant; convert all from the same QANN"
            )
    qann_modules = {path: _module(qann, path, "QANN") for path in paths}
    for path, module in qann_modules.items():
        if not isinstance(module, QuantReLU):
            raise FastSNNError(
                f"the QANN has a {type(module).__name__} at {path!r}, where the SNN has a spiking layer; "
                "pass the QANN it was converted from"
            )
    float_modules = (
        {path: _module(float_model, path, "float ANN") for path in paths} if float_model is not None else None
    )
    thresholds = {path: module.threshold.cpu() for path, module in next(iter(snns.values())).neurons()}
    totals = {name: torch.zeros(len(paths), dtype=torch.float64) for name in ["quantization", *snns]}
    output_totals, output_elements = dict.fromkeys(snns, 0.0), 0
    agreements = {name: task.agreement_meter() for name in snns} if task is not None else None
    samples, order = 0, None
    with eval_mode(qann, *snns.values(), *([float_model] if float_model is not None else [])):
        for images, *labels in loader:
            with recorded_outputs(qann_modules) as targets:
                reference = qann(images.to(device_of(qann))).cpu()
            if not isinstance(reference, torch.Tensor):
                raise FastSNNError(
                    f"conversion_errors compares tensor outputs; the QANN returns {type(reference).__name__}"
                )
            output_elements += reference.numel()
            order = order or list(targets)
            for name, snn in snns.items():
                with recorded_outputs(dict(snn.neurons())) as rates:
                    output = snn(images.to(device_of(snn))).cpu()
                totals[name] += _summed_errors(rates, targets, thresholds, paths)
                output_totals[name] += (output - reference).pow(2).sum().item()
                if agreements is not None:
                    agreements[name].update(task.decode(output), task.decode(reference))
                if on_batch is not None:
                    on_batch(name, output, reference, labels[0] if labels else None)
            if float_modules is not None:
                with recorded_outputs(float_modules) as activations:
                    float_model(images.to(device_of(float_model)))
                totals["quantization"] += _summed_errors(activations, targets, thresholds, paths)
            samples += images.shape[0]
    if samples == 0:
        raise FastSNNError("conversion_errors got no data")
    units = {path: targets[path][0].numel() for path in paths}
    per_layer = {
        name: {path: total[i].item() / (samples * units[path]) for i, path in enumerate(paths)}
        for name, total in totals.items()
    }
    return ConversionErrors(
        layers=order,
        samples=samples,
        quantization=[per_layer["quantization"][path] for path in order] if float_model is not None else None,
        accumulating={name: [per_layer[name][path] for path in order] for name in snns},
        output={name: total / output_elements for name, total in output_totals.items()},
        agreement={name: meter.compute()["agreement"] for name, meter in agreements.items()} if agreements else None,
    )


def _module(model: nn.Module, path: str, role: str) -> nn.Module:
    try:
        return model.get_submodule(path)
    except AttributeError:
        raise FastSNNError(
            f"the {role} has no module at {path!r}, where the SNN has a spiking layer; "
            "pass the model it was converted from"
        ) from None


def _summed_errors(outputs, targets, thresholds, paths) -> torch.Tensor:
    """``[len(paths)]`` sums over the batch and units of |output − target| / θ (computed on the CPU)."""
    return torch.tensor(
        [((outputs[p].cpu() - targets[p].cpu()).abs() / thresholds[p]).sum().item() for p in paths], dtype=torch.float64
    )


def format_conversion_errors(errors: ConversionErrors) -> str:
    """A plain-text table: one row per spiking layer, one column per error kind (mean |Δ| / θ)."""
    columns = ({"quantization": errors.quantization} if errors.quantization is not None else {}) | errors.accumulating
    rows = [("#", "layer", *columns)]
    for i, layer in enumerate(errors.layers):
        rows.append((str(i + 1), layer, *(f"{values[i]:.4f}" for values in columns.values())))
    output = "output MSE vs QANN: " + ", ".join(f"{name} {value:.4g}" for name, value in errors.output.items())
    return (
        format_table(rows)
        + "\n"
        + output
        + f"\n(mean |Δ| / θ over {errors.samples} images; quantization = float ANN vs QANN, others = SNN vs QANN)"
    )


def plot_conversion_errors(errors: ConversionErrors, title: str = "") -> "Figure":
    """A figure of the error per layer (x: spiking layer in execution order): one line per SNN variant, after
    a dashed one for the quantization error when measured. Save it with ``figure.savefig(path)``; no pyplot
    state or backend is touched (safe in a notebook)."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(max(6.0, 0.45 * len(errors.layers) + 3), 4))
    axes = figure.subplots()
    x = range(1, len(errors.layers) + 1)
    if errors.quantization is not None:
        axes.plot(x, errors.quantization, "k--", marker="s", label="quantization (float ANN vs QANN)")
    for name, values in errors.accumulating.items():
        axes.plot(x, values, marker="o", label=f"SNN {name} vs QANN")
    axes.set_xticks(list(x), errors.layers, rotation=60, ha="right", fontsize=7)
    axes.set_xlabel("spiking layer")
    axes.set_ylabel("mean |Δ| / θ")
    axes.set_title(title or f"Conversion error per layer ({errors.samples} images)")
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    return figure
