"""Layer-wise fine-tuning of a converted SNN against its QANN (DESIGN.md §1).

Spiking layers are tuned one at a time in execution order. For layer l only the parameters that
feed neuron l directly (found by asking autograd which parameters its input current depends on:
neurons cut the graph) are trained, so the same code serves chains, residual blocks and any other
graph ``convert`` accepts. A layer's new weights are kept only if the held-out metric — the mean
squared difference between SNN and QANN outputs — improves; otherwise they are reverted.

Two objectives, both MSE(rate_l, q_l) / θ² against the QANN's activation q_l:
  ``"ste"``  the paper's: the rate's value with the gradient of clip(mean current, 0, θ)
             (straight through the mean current; no back-propagation through time);
  ``"bptt"`` back-propagation through the T steps of the IF dynamics of layer l, with a triangular
             surrogate spike gradient (:func:`fastsnn.neuron.if_scan_surrogate`).
"""

import copy
import dataclasses
from collections.abc import Iterable
from typing import Literal

import torch
from torch import nn
from tqdm import tqdm

from ..analysis import conversion_errors, recorded_outputs
from ..convert import SpikingNetwork
from ..errors import FastSNNError
from ..neuron import IFNeuron, if_scan_surrogate

Objective = Literal["ste", "bptt"]
OBJECTIVES = ("ste", "bptt")


@dataclasses.dataclass
class LayerReport:
    """What fine-tuning did at one spiking layer (errors measured on the held-out data)."""

    layer: str
    parameters: list[str]  # names (in the SNN) of the tuned parameters
    layer_error_before: float  # mean |rate − q| / θ at this layer
    layer_error_after: float
    output_error_before: float  # mean squared difference of SNN and QANN outputs (the keep/revert metric)
    output_error_after: float
    kept: bool


def finetune(
    snn: SpikingNetwork, qann: nn.Module, loader: Iterable, *, held_out: Iterable, **options
) -> SpikingNetwork:
    """The fine-tuned copy of ``snn``; see :func:`finetune_with_report` for the arguments."""
    return finetune_with_report(snn, qann, loader, held_out=held_out, **options)[0]


def finetune_with_report(
    snn: SpikingNetwork,
    qann: nn.Module,
    loader: Iterable,
    *,
    held_out: Iterable,
    objective: Objective = "ste",
    steps_per_layer: int = 100,
    lr: float = 1e-3,
    device: torch.device = torch.device("cpu"),
    progress: bool = True,
) -> tuple[SpikingNetwork, list[LayerReport]]:
    """Tune ``snn`` (left untouched; a tuned copy is returned) layer by layer towards ``qann``.

    Args:
        snn: a network from :func:`fastsnn.convert` of ``qann`` (signed or unsigned).
        qann: the quantized ANN it was converted from; the targets are its activations.
        loader: training batches ``(images [B, C, H, W], labels)``, cycled as needed (labels unused).
        held_out: batches not in ``loader`` that decide whether each layer's new weights are kept.
        objective: ``"ste"`` (the paper's) or ``"bptt"`` (through the T steps, surrogate gradient).
        steps_per_layer: optimizer steps (Adam) per spiking layer.
        lr: Adam learning rate.
    Returns:
        the tuned SNN (on ``device``, eval mode) and one :class:`LayerReport` per tuned layer. The
        first spiking layers, whose input current is the same at every step, are exact and skipped.
    """
    if objective not in OBJECTIVES:
        raise FastSNNError(f"objective must be one of {', '.join(OBJECTIVES)}, got {objective!r}")
    if not isinstance(steps_per_layer, int) or steps_per_layer < 1:
        raise FastSNNError(f"steps_per_layer must be a positive integer, got {steps_per_layer!r}")
    if not lr > 0:
        raise FastSNNError(f"lr must be > 0, got {lr!r}")
    qann = qann.to(device).eval()
    tuned = copy.deepcopy(snn).to(device).eval()
    batches = _cycle(loader)
    requires_grad = {name: p.requires_grad for name, p in tuned.named_parameters()}
    for parameter in tuned.parameters():
        parameter.requires_grad_(False)

    baseline = conversion_errors(qann, {"snn": tuned}, held_out, device=device)
    reports = []
    try:
        for layer in tqdm(baseline.layers, desc=f"fine-tune ({objective})", disable=not progress, leave=False):
            neuron = tuned.body.get_submodule(layer)
            images = next(batches).to(device)
            parameters = _feeding_parameters(tuned, neuron, images)
            if not parameters:  # driven by the analog input: exact, nothing to correct
                continue
            saved = {name: p.detach().clone() for name, p in parameters.items()}
            _train_layer(tuned, qann, layer, neuron, parameters, batches, objective, steps_per_layer, lr, device)
            after = conversion_errors(qann, {"snn": tuned}, held_out, device=device)
            kept = after.output["snn"] < baseline.output["snn"]
            index = baseline.layers.index(layer)
            reports.append(
                LayerReport(
                    layer=layer,
                    parameters=list(parameters),
                    layer_error_before=baseline.accumulating["snn"][index],
                    layer_error_after=after.accumulating["snn"][index],
                    output_error_before=baseline.output["snn"],
                    output_error_after=after.output["snn"],
                    kept=kept,
                )
            )
            if kept:
                baseline = after
            else:
                with torch.no_grad():
                    for name, parameter in parameters.items():
                        parameter.copy_(saved[name])
    finally:
        for name, parameter in tuned.named_parameters():
            parameter.requires_grad_(requires_grad[name])
    return tuned, reports


class _ReachedLayer(Exception):
    """Raised by a hook to stop the forward pass once the tuned layer has run (nothing after it matters)."""

    def __init__(self, current: torch.Tensor, output: torch.Tensor):
        super().__init__()
        self.current, self.output = current, output


def _run_to(snn: SpikingNetwork, neuron: IFNeuron, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Input current and output of ``neuron``, both ``[T*B, ...]``, running ``snn`` only up to it."""

    def stop(_module, inputs, output):
        raise _ReachedLayer(inputs[0], output)

    handle = neuron.register_forward_hook(stop)
    try:
        snn(images)
    except _ReachedLayer as reached:
        return reached.current, reached.output
    finally:
        handle.remove()
    raise FastSNNError("the tuned spiking layer did not run in the forward pass")


def _feeding_parameters(snn: SpikingNetwork, neuron: IFNeuron, images: torch.Tensor) -> dict[str, nn.Parameter]:
    """The parameters neuron's input current depends on (a spiking layer's output carries no gradient).

    Empty when the current is the same at every time step: the layer sees the analog input only.
    """
    named = dict(snn.named_parameters())
    for parameter in named.values():
        parameter.requires_grad_(True)
    try:
        with torch.enable_grad():
            current, _ = _run_to(snn, neuron, images)
            by_time = current.detach().reshape(neuron.T, -1, *current.shape[1:])
            if (by_time == by_time[:1]).all() or not current.requires_grad:
                return {}
            gradients = torch.autograd.grad(current.sum(), list(named.values()), allow_unused=True)
    finally:
        for parameter in named.values():
            parameter.requires_grad_(False)
    return {name: parameter for (name, parameter), gradient in zip(named.items(), gradients) if gradient is not None}


def _train_layer(snn, qann, layer, neuron, parameters, batches, objective, steps, lr, device) -> None:
    """``steps`` Adam steps on ``parameters`` lowering MSE(rate, q) / θ² at ``layer``."""
    target_module = qann.get_submodule(layer)
    for parameter in parameters.values():
        parameter.requires_grad_(True)
    optimizer = torch.optim.Adam(parameters.values(), lr=lr)
    threshold = neuron.threshold
    try:
        for _ in range(steps):
            images = next(batches).to(device)
            with torch.no_grad():
                target = _output_of(qann, target_module, images)
            with torch.enable_grad():
                current, output = _run_to(snn, neuron, images)
                current = current.reshape(neuron.T, -1, *current.shape[1:])
                if objective == "ste":
                    rate = output.reshape(current.shape).mean(0)
                    # the value is replaced by the rate; only the gradient of q (1 on [0, θ], else 0) is used
                    surrogate = current.mean(0).clamp(min=torch.zeros_like(threshold), max=threshold)
                    estimate = surrogate + (rate - surrogate).detach()
                else:
                    spikes = if_scan_surrogate(current, threshold, signed=neuron.signed, initial_membrane=neuron.initial_membrane)
                    estimate = threshold * spikes.mean(0)
                loss = ((estimate - target) / threshold).pow(2).mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    finally:
        for parameter in parameters.values():
            parameter.requires_grad_(False)
            parameter.grad = None


def _output_of(model: nn.Module, module: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """``module``'s output ``[B, ...]`` when ``model`` runs on ``images``."""
    with recorded_outputs({"target": module}) as outputs:
        model(images)
    return outputs["target"]


def _cycle(loader: Iterable):
    """Endless stream of image batches from ``loader`` (batches of ``(images, labels)``), epoch after epoch.

    Not itertools.cycle, which would keep every batch in memory instead of re-iterating the loader.
    """
    while True:
        empty = True
        for images, *_ in loader:
            empty = False
            yield images
        if empty:
            raise FastSNNError("fine-tuning got an empty loader")
