"""Fine-tuning a converted SNN towards its QANN: layer by layer, then end to end, keeping only what helps.

Spiking layers are corrected one at a time in execution order. At each layer whose input current
varies over time (the first layers, driven by the analog image, are exact and skipped):

  1. **layer-wise training** (Hu et al., Fast-SNN, TPAMI 2023) of the parameters feeding the layer
     (:func:`~fastsnn.finetune.layerwise.train_layer`);
  2. optionally, **bias calibration**, the closed-form shift of the layer's per-channel bias that
     removes the mean of its error (:func:`~fastsnn.finetune.calibration.calibrate_layer`).

Then an optional **end-to-end** phase trains every parameter except those feeding exact layers
through all T steps towards the QANN's outputs (:func:`~fastsnn.finetune.end_to_end.distill`).

Each correction is kept only if the held-out criterion improves, and reverted otherwise. The
criterion is the agreement with the QANN's predictions on the held-out images, ties broken by the
mean squared difference of the outputs (``criterion="agreement"``), or that difference alone
(``criterion="mse"``, for outputs whose agreement is coarse, e.g. detection).
"""

import copy
import dataclasses
import functools
from collections.abc import Callable, Iterable, Iterator
from typing import Literal

import torch
from torch import nn
from tqdm import tqdm

from ..analysis import ConversionErrors, conversion_errors
from ..convert import SpikingNetwork
from ..convert.memory_guard import runner
from ..errors import FastSNNError
from ..model_context import device_of, eval_mode
from ..neuron import SURROGATES, Surrogate
from ..tasks import Classification, Task
from .calibration import calibrate_layer
from .end_to_end import distill
from .layerwise import train_layer
from .reach import cycle, feeding_parameters

Criterion = Literal["agreement", "mse"]
CRITERIA: tuple[Criterion, ...] = ("agreement", "mse")
END_TO_END = "(end to end)"  # the ``layer`` of the end-to-end phase's report
CALIBRATION_BATCHES = 4  # training batches on which calibration measures each layer's mean error
CHECKS = 5  # held-out evaluations during the end-to-end phase (the best weights are kept)


@dataclasses.dataclass
class LayerReport:
    """What one correction did (errors measured on the held-out data).

    ``layer`` and ``parameters`` are paths inside the network's body, as in ``snn.neurons()``;
    ``correction`` is ``"layer-wise"``, ``"calibration"`` or ``"end-to-end"`` (layer :data:`END_TO_END`).
    """

    layer: str
    correction: str
    parameters: list[str]  # the parameters it changed
    layer_error_before: float | None  # mean |rate − q| / θ at this layer (None for end-to-end)
    layer_error_after: float | None
    output_error_before: float  # mean squared difference of SNN and QANN outputs
    output_error_after: float
    agreement_before: float | None  # share of held-out predictions equal to the QANN's (criterion "agreement")
    agreement_after: float | None
    kept: bool


def finetune(
    snn: SpikingNetwork,
    qann: nn.Module,
    loader: Iterable,
    *,
    held_out: Iterable,
    objective: Surrogate = "ste",
    steps_per_layer: int = 100,
    lr: float = 1e-3,
    calibrate: bool = False,
    calibration_rounds: int = 3,
    end_to_end_steps: int = 0,
    end_to_end_lr: float = 1e-4,
    end_to_end_objective: Surrogate = "bptt",
    criterion: Criterion = "agreement",
    task: Task | None = None,
    progress: bool = True,
    on_layer: Callable[[LayerReport], None] | None = None,
) -> SpikingNetwork:
    """A copy of ``snn`` corrected towards ``qann`` (both are left untouched).

    Args:
        snn: a network from :func:`fastsnn.convert` of ``qann`` (signed or unsigned); the tuned
            copy runs on its device.
        qann: the quantized ANN it was converted from; the targets are its activations and outputs.
        loader: training batches ``(images [B, C, H, W], labels)``, cycled as needed (labels unused).
        held_out: batches not in ``loader`` that decide whether each correction is kept.
        objective: surrogate gradient, ``"ste"`` (the paper's) or ``"bptt"`` (through the T steps).
        steps_per_layer: layer-wise optimizer steps (Adam) per spiking layer; 0 skips layer-wise training.
        lr: layer-wise Adam learning rate.
        calibrate: after each layer's training, shift its per-channel bias by its mean error,
            measured on the first :data:`CALIBRATION_BATCHES` batches of ``loader``. Off by default:
            kept on held-out data, it lowered test agreement by 0.09–0.22 pp in benchmarks/fidelity.py.
        calibration_rounds: measure-and-shift rounds per layer.
        end_to_end_steps: steps of the end-to-end phase (0, the default: none; in benchmarks/fidelity.py
            120 steps raised accuracy but not agreement).
        end_to_end_lr: its Adam learning rate.
        end_to_end_objective: its surrogate gradient (``"bptt"``: measured better than ``"ste"`` there).
        criterion: ``"agreement"`` (with the QANN's predictions, ties broken by output MSE) or ``"mse"``.
        task: decodes outputs into predictions for the agreement (default: classification).
        on_layer: called with the :class:`LayerReport` of each correction (e.g. ``reports.append``).
    Returns:
        the tuned SNN in eval mode.
    """
    _check_options(
        {"objective": objective, "end_to_end_objective": end_to_end_objective},
        {
            "steps_per_layer": steps_per_layer,
            "calibration_rounds": calibration_rounds,
            "end_to_end_steps": end_to_end_steps,
        },
        {"lr": lr, "end_to_end_lr": end_to_end_lr},
        criterion,
    )
    tuned = copy.deepcopy(snn).eval().requires_grad_(False)
    batches = cycle(loader, device_of(tuned))
    probe = next(batches)
    calibration_images = [probe, *(next(batches) for _ in range(CALIBRATION_BATCHES - 1 if calibrate else 0))]
    with torch.enable_grad():
        runner(tuned, probe)  # refuses up front, suggesting a batch size, if a batch cannot fit with gradients
    with eval_mode(qann):
        judge = _Judge(
            tuned, qann, held_out, (task or Classification()) if criterion == "agreement" else None, on_layer
        )
        feeding_exact: set[str] = set()
        for layer, neuron in tqdm(tuned.neurons(), desc=f"fine-tune ({objective})", disable=not progress, leave=False):
            parameters, exact = feeding_parameters(tuned, neuron, probe)
            if exact:  # driven by the analog input: nothing to correct
                feeding_exact |= set(parameters)
                continue
            if steps_per_layer:
                judge.attempt(
                    layer,
                    "layer-wise",
                    parameters,
                    functools.partial(
                        _trained_layer, tuned, qann, layer, parameters, batches, objective, steps_per_layer, lr
                    ),
                )
            if calibrate:
                judge.attempt(
                    layer,
                    "calibration",
                    parameters,
                    functools.partial(
                        calibrate_layer, tuned, qann, layer, parameters, calibration_images, rounds=calibration_rounds
                    ),
                )
        if end_to_end_steps:
            trained = {name: p for name, p in tuned.body.named_parameters() if name not in feeding_exact}
            judge.attempt(
                END_TO_END,
                "end-to-end",
                trained,
                lambda: _distilled(
                    judge, qann, trained, batches, end_to_end_objective, end_to_end_steps, end_to_end_lr
                ),
            )
    for parameter, original in zip(tuned.parameters(), snn.parameters(), strict=True):
        parameter.requires_grad_(original.requires_grad)
    return tuned


def _trained_layer(snn, qann, layer, parameters, batches, objective, steps, lr) -> list[str]:
    train_layer(snn, qann, layer, parameters, batches, objective=objective, steps=steps, lr=lr)
    return list(parameters)


def _distilled(judge: "_Judge", qann, parameters, batches: Iterator, objective, steps: int, lr: float) -> list[str]:
    """Run the end-to-end phase, then load the weights that scored best on the held-out criterion
    at its checks (the starting weights if none beat them)."""
    best = {"errors": judge.current, "weights": {n: p.detach().clone() for n, p in parameters.items()}}

    def check() -> None:
        errors = judge.measure()
        if judge.better(errors, best["errors"]):
            best["errors"], best["weights"] = errors, {n: p.detach().clone() for n, p in parameters.items()}

    distill(
        judge.snn,
        qann,
        parameters,
        batches,
        objective=objective,
        steps=steps,
        lr=lr,
        check_every=max(1, steps // CHECKS),
        on_check=check,
    )
    with torch.no_grad():
        for name, parameter in parameters.items():
            parameter.copy_(best["weights"][name])
    return list(parameters)


class _Judge:
    """Applies a correction, keeps it if the held-out criterion improves (else restores the
    parameters it may change), and reports it."""

    def __init__(
        self,
        snn: SpikingNetwork,
        qann: nn.Module,
        held_out: Iterable,
        task: Task | None,
        on_report: Callable[[LayerReport], None] | None,
    ):
        self.snn, self.qann, self.held_out, self.task, self.on_report = snn, qann, held_out, task, on_report
        self.current = self.measure()

    def measure(self) -> ConversionErrors:
        return conversion_errors(self.qann, {"snn": self.snn}, self.held_out, task=self.task)

    def better(self, errors: ConversionErrors, than: ConversionErrors) -> bool:
        """Higher agreement, or equal agreement (or criterion "mse") and lower output MSE."""
        if self.task is not None and errors.agreement["snn"] != than.agreement["snn"]:
            return errors.agreement["snn"] > than.agreement["snn"]
        return errors.output["snn"] < than.output["snn"]

    def attempt(
        self, layer: str, correction: str, parameters: dict[str, nn.Parameter], apply: Callable[[], list[str]]
    ) -> None:
        """``apply()`` changes some of ``parameters`` and returns the names of those it changed."""
        saved = {name: p.detach().clone() for name, p in parameters.items()}
        changed = apply()
        if not changed:
            return
        after = self.measure()
        kept = self.better(after, self.current)
        if self.on_report is not None:
            index = self.current.layers.index(layer) if layer in self.current.layers else None
            self.on_report(
                LayerReport(
                    layer=layer,
                    correction=correction,
                    parameters=changed,
                    layer_error_before=None if index is None else self.current.accumulating["snn"][index],
                    layer_error_after=None if index is None else after.accumulating["snn"][index],
                    output_error_before=self.current.output["snn"],
                    output_error_after=after.output["snn"],
                    agreement_before=None if self.task is None else self.current.agreement["snn"],
                    agreement_after=None if self.task is None else after.agreement["snn"],
                    kept=kept,
                )
            )
        if kept:
            self.current = after
        else:
            with torch.no_grad():
                for name, parameter in parameters.items():
                    parameter.copy_(saved[name])


def _check_options(surrogates: dict, counts: dict, rates: dict, criterion) -> None:
    """Refuse a bad option by name before anything runs."""
    for name, value in surrogates.items():
        if value not in SURROGATES:
            raise FastSNNError(f"{name} must be one of {', '.join(SURROGATES)}, got {value!r}")
    for name, value in counts.items():
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise FastSNNError(f"{name} must be a non-negative integer, got {value!r}")
    for name, value in rates.items():
        if not value > 0:
            raise FastSNNError(f"{name} must be > 0, got {value!r}")
    if criterion not in CRITERIA:
        raise FastSNNError(f"criterion must be one of {', '.join(CRITERIA)}, got {criterion!r}")
