"""Fine-tuning a converted SNN: layer by layer towards its QANN, then end to end on the task, keeping only what helps.

Spiking layers are corrected one at a time in execution order. At each layer whose input current
varies over time (the first layers, driven by the analog image, are exact and skipped):

  1. **layer-wise training** (Hu et al., Fast-SNN, TPAMI 2023) of the parameters feeding the layer
     towards the QANN's activation (:func:`~fastsnn.finetune.layerwise.train_layer`);
  2. optionally, **bias calibration**, the closed-form shift of the layer's per-channel bias that
     removes the mean of its error (:func:`~fastsnn.finetune.calibration.calibrate_layer`).

Then an **end-to-end** phase trains every parameter except those feeding exact layers through all T
steps, on the task's own loss and/or towards the QANN's outputs (:func:`~fastsnn.finetune.end_to_end.train_end_to_end`).

Each correction is kept only if the held-out criterion improves beyond noise (:mod:`.keep_rule`): by
default the task's metric on the held-out labels (accuracy, mIoU, mAP), else the agreement with the
QANN's predictions or the outputs' squared difference to the QANN's.
"""

import copy
import dataclasses
import functools
from collections.abc import Callable, Iterable, Iterator

import torch
from torch import nn

from ..convert import SpikingNetwork
from ..errors import OptionError
from ..model_context import device_of, eval_mode
from ..progress import tqdm
from ..tasks import Classification, Task
from .calibration import calibrate_layer
from .config import FinetuneConfig
from .end_to_end import train_end_to_end
from .judge import Judge, LayerReport
from .layerwise import train_layer
from .reach import cycle, feeding_parameters

END_TO_END = "(end to end)"  # the ``layer`` of the end-to-end phase's report
CHECKS = 5  # held-out evaluations during the end-to-end phase (the best weights are kept)


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
    """A copy of ``snn`` corrected (``snn`` and ``qann`` are left untouched).

    Args:
        snn: a network from :func:`fastsnn.convert` of ``qann`` (signed or unsigned); the tuned
            copy runs on its device.
        qann: the quantized ANN it was converted from; the layer-wise targets are its activations.
        loader: training batches ``(images [B, C, H, W], targets)``, cycled as needed (the targets are
            the end-to-end phase's labels when its loss includes the task's).
        held_out: batches ``(images, targets)`` not in ``loader`` that decide whether each correction is kept.
        config: the corrections and their budgets (:class:`FinetuneConfig`); ``options`` override its
            fields by name, e.g. ``finetune(..., steps_per_layer=30, criterion="mse")``.
        task: the model's task (loss, decoding, metric); may be omitted for classifiers (outputs
            ``[B, classes]``) and when neither the criterion nor the end-to-end loss needs one.
        on_layer: called with the :class:`LayerReport` of each correction (e.g. ``reports.append``).
    Returns:
        the tuned SNN in eval mode.
    Raises:
        OptionError: an option outside what it accepts, or ``task`` omitted where one is needed for
            outputs that are not ``[B, classes]``.
    """
    config = dataclasses.replace(config or FinetuneConfig(), **options)
    tuned = copy.deepcopy(snn).eval().requires_grad_(False)
    batches = cycle(loader, device_of(tuned))
    probe, _ = next(batches)
    extra = config.calibration_batches - 1 if config.calibrate else 0
    calibration_images = [probe, *(next(batches)[0] for _ in range(extra))]
    tuned.plan(probe).chunk_size(len(probe), gradients=True)  # refuses a batch that cannot fit with gradients
    with eval_mode(qann):
        needs_task = config.criterion != "mse" or (config.end_to_end_steps and "task" in config.end_to_end_loss)
        task = task or _classification_of(qann, probe, required=bool(needs_task))
        judge = Judge(
            tuned,
            qann,
            held_out,
            criterion=config.criterion,
            task=task,
            significance=config.significance,
            on_report=on_layer,
        )
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
            train = functools.partial(_trained_end_to_end, judge, trained, batches, config)
            judge.attempt(END_TO_END, "end-to-end", trained, train)
    for parameter, original in zip(tuned.parameters(), snn.parameters(), strict=True):
        parameter.requires_grad_(original.requires_grad)
    return tuned


def _trained_layer(snn, qann, layer, parameters, batches, config: FinetuneConfig) -> list[str]:
    train_layer(
        snn, qann, layer, parameters, batches, objective=config.objective, steps=config.steps_per_layer, lr=config.lr
    )
    return list(parameters)


def _classification_of(qann: nn.Module, images: torch.Tensor, *, required: bool) -> Task | None:
    """The classification task of ``qann``'s outputs ``[B, classes]``. For any other output, whose
    predictions only the model's own task can decode: None, or a refusal if a task is ``required``."""
    with torch.no_grad():
        output = qann(images[:1])
    if isinstance(output, torch.Tensor) and output.dim() == 2:
        return Classification(output.shape[1])
    if not required:
        return None
    shape = tuple(output.shape) if isinstance(output, torch.Tensor) else type(output).__name__
    raise OptionError(
        "task",
        f"is needed to decode outputs shaped {shape} (not [B, classes]); pass the model's task, e.g. "
        "fastsnn.tasks.create_task('segmentation', num_classes=...), or use criterion='mse' and "
        "end_to_end_loss='qann'",
    )


def _trained_end_to_end(judge: Judge, parameters, batches: Iterator, config: FinetuneConfig) -> list[str]:
    """Run the end-to-end phase, then load the weights whose held-out figure was highest at its checks
    (the starting weights if none beat them); the judge then decides whether that beats noise."""
    best = {"figure": judge.current.score.figure, "weights": {n: p.detach().clone() for n, p in parameters.items()}}

    def check() -> None:
        figure = judge.measure().score.figure
        if figure > best["figure"]:
            best["figure"], best["weights"] = figure, {n: p.detach().clone() for n, p in parameters.items()}

    train_end_to_end(
        judge.snn,
        judge.qann,
        parameters,
        batches,
        task=judge.task,
        loss=config.end_to_end_loss,
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
