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

import torch
from torch import nn

from ..analysis import ConversionErrors, conversion_errors
from ..convert import SpikingNetwork
from ..errors import OptionError
from ..model_context import device_of, eval_mode
from ..progress import tqdm
from ..tasks import Classification, Task
from .calibration import calibrate_layer
from .config import FinetuneConfig
from .end_to_end import distill
from .layerwise import train_layer
from .reach import cycle, feeding_parameters

END_TO_END = "(end to end)"  # the ``layer`` of the end-to-end phase's report
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
    config: FinetuneConfig | None = None,
    task: Task | None = None,
    progress: bool = True,
    on_layer: Callable[[LayerReport], None] | None = None,
    **options,
) -> SpikingNetwork:
    """A copy of ``snn`` corrected towards ``qann`` (both are left untouched).

    Args:
        snn: a network from :func:`fastsnn.convert` of ``qann`` (signed or unsigned); the tuned
            copy runs on its device.
        qann: the quantized ANN it was converted from; the targets are its activations and outputs.
        loader: training batches ``(images [B, C, H, W], labels)``, cycled as needed (labels unused).
        held_out: batches not in ``loader`` that decide whether each correction is kept.
        config: the corrections and their budgets (:class:`FinetuneConfig`); ``options`` override its
            fields by name, e.g. ``finetune(..., steps_per_layer=30, criterion="mse")``.
        task: decodes outputs into predictions for the agreement criterion; may be omitted only for
            classifiers (outputs ``[B, classes]``).
        on_layer: called with the :class:`LayerReport` of each correction (e.g. ``reports.append``).
    Returns:
        the tuned SNN in eval mode.
    Raises:
        OptionError: an option outside what it accepts, or ``task`` omitted for outputs that are not
            ``[B, classes]``.
    """
    config = dataclasses.replace(config or FinetuneConfig(), **options)
    tuned = copy.deepcopy(snn).eval().requires_grad_(False)
    batches = cycle(loader, device_of(tuned))
    probe = next(batches)
    extra = config.calibration_batches - 1 if config.calibrate else 0
    calibration_images = [probe, *(next(batches) for _ in range(extra))]
    tuned.plan(probe).chunk_size(len(probe), gradients=True)  # refuses a batch that cannot fit with gradients
    with eval_mode(qann):
        if task is None and config.criterion == "agreement":
            task = _classification_of(qann, probe)
        judge = _Judge(tuned, qann, held_out, task if config.criterion == "agreement" else None, on_layer)
        feeding_exact: set[str] = set()
        for layer, neuron in tqdm(
            tuned.neurons(), desc=f"fine-tune ({config.objective})", disable=not progress, leave=False
        ):
            parameters, exact = feeding_parameters(tuned, neuron, probe)
            if exact:  # driven by the analog input: nothing to correct
                feeding_exact |= set(parameters)
                continue
            if config.steps_per_layer:
                train = functools.partial(_trained_layer, tuned, qann, layer, parameters, batches, config)
                judge.attempt(layer, "layer-wise", parameters, train)
            if config.calibrate:
                shift = functools.partial(
                    calibrate_layer,
                    tuned,
                    qann,
                    layer,
                    parameters,
                    calibration_images,
                    rounds=config.calibration_rounds,
                )
                judge.attempt(layer, "calibration", parameters, shift)
        if config.end_to_end_steps:
            trained = {name: p for name, p in tuned.body.named_parameters() if name not in feeding_exact}
            judge.attempt(END_TO_END, "end-to-end", trained, lambda: _distilled(judge, qann, trained, batches, config))
    for parameter, original in zip(tuned.parameters(), snn.parameters(), strict=True):
        parameter.requires_grad_(original.requires_grad)
    return tuned


def _trained_layer(snn, qann, layer, parameters, batches, config: FinetuneConfig) -> list[str]:
    train_layer(
        snn, qann, layer, parameters, batches, objective=config.objective, steps=config.steps_per_layer, lr=config.lr
    )
    return list(parameters)


def _classification_of(qann: nn.Module, images: torch.Tensor) -> Task:
    """The classification task of ``qann``'s outputs ``[B, classes]``; refuses any other output, whose
    predictions only the model's own task can decode."""
    with torch.no_grad():
        output = qann(images[:1])
    if not isinstance(output, torch.Tensor) or output.dim() != 2:
        shape = tuple(output.shape) if isinstance(output, torch.Tensor) else type(output).__name__
        raise OptionError(
            "task",
            f"is needed to compare predictions of outputs shaped {shape} (not [B, classes]); pass the "
            "model's task, e.g. fastsnn.tasks.create_task('segmentation', num_classes=...), or criterion='mse'",
        )
    return Classification(output.shape[1])


def _distilled(judge: "_Judge", qann, parameters, batches: Iterator, config: FinetuneConfig) -> list[str]:
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
        objective=config.end_to_end_objective,
        steps=config.end_to_end_steps,
        lr=config.end_to_end_lr,
        check_every=max(1, config.end_to_end_steps // CHECKS),
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
