"""Layer-wise fine-tuning of a converted SNN against its QANN (Hu et al., Fast-SNN, TPAMI 2023).

Spiking layers are tuned one at a time in execution order. For layer l only the parameters that
feed neuron l directly (found by asking autograd which parameters its input current depends on:
neurons cut the graph) are trained, so the same code serves chains, residual blocks and any other
graph ``convert`` accepts. A layer's new weights are kept only if the held-out metric — the mean
squared difference between SNN and QANN outputs — improves; otherwise they are reverted.

Two objectives, both MSE(rate_l, q_l) / θ² against the QANN's activation q_l; the neuron under
tuning provides the gradient (:attr:`fastsnn.IFNeuron.surrogate`):
  ``"ste"``  the paper's: the rate's value with the gradient of clip(mean current, 0, θ)
             (straight through the mean current; no back-propagation through time);
  ``"bptt"`` back-propagation through the T steps of the IF dynamics of layer l, with a triangular
             surrogate spike gradient (:func:`fastsnn.neuron.if_scan_surrogate`).
"""

import contextlib
import copy
import dataclasses
from collections.abc import Callable, Iterable, Iterator

import torch
from torch import nn
from tqdm import tqdm

from ..analysis import conversion_errors, recorded_outputs
from ..convert import SpikingNetwork
from ..convert.memory_guard import runner
from ..errors import FastSNNError
from ..model_context import device_of, eval_mode
from ..neuron import SURROGATES, IFNeuron, Surrogate, constant_over_time


@dataclasses.dataclass
class LayerReport:
    """What fine-tuning did at one spiking layer (errors measured on the held-out data).

    ``layer`` and ``parameters`` are paths inside the network's body, as in ``snn.neurons()``.
    """

    layer: str
    parameters: list[str]  # the tuned parameters
    layer_error_before: float  # mean |rate − q| / θ at this layer
    layer_error_after: float
    output_error_before: float  # mean squared difference of SNN and QANN outputs (the keep/revert metric)
    output_error_after: float
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
    progress: bool = True,
    on_layer: Callable[[LayerReport], None] | None = None,
) -> SpikingNetwork:
    """A copy of ``snn`` tuned layer by layer towards ``qann`` (both are left untouched).

    Args:
        snn: a network from :func:`fastsnn.convert` of ``qann`` (signed or unsigned); the tuned
            copy runs on its device.
        qann: the quantized ANN it was converted from; the targets are its activations.
        loader: training batches ``(images [B, C, H, W], labels)``, cycled as needed (labels unused).
        held_out: batches not in ``loader`` that decide whether each layer's new weights are kept.
        objective: ``"ste"`` (the paper's) or ``"bptt"`` (through the T steps, surrogate gradient).
        steps_per_layer: optimizer steps (Adam) per spiking layer.
        lr: Adam learning rate.
        on_layer: called with the :class:`LayerReport` of each tuned layer (e.g. ``reports.append``).
    Returns:
        the tuned SNN in eval mode. The first spiking layers, whose input current is the same at
        every step, are exact and skipped.
    """
    if objective not in SURROGATES:
        raise FastSNNError(f"objective must be one of {', '.join(SURROGATES)}, got {objective!r}")
    if not isinstance(steps_per_layer, int) or steps_per_layer < 1:
        raise FastSNNError(f"steps_per_layer must be a positive integer, got {steps_per_layer!r}")
    if not lr > 0:
        raise FastSNNError(f"lr must be > 0, got {lr!r}")
    tuned = copy.deepcopy(snn).eval().requires_grad_(False)
    batches = _cycle(loader, device_of(tuned))
    with torch.enable_grad():
        runner(tuned, next(batches))  # refuses up front, suggesting a batch size, if a batch cannot fit with gradients
    with eval_mode(qann):
        baseline = conversion_errors(qann, {"snn": tuned}, held_out)
        for layer in tqdm(baseline.layers, desc=f"fine-tune ({objective})", disable=not progress, leave=False):
            neuron = tuned.body.get_submodule(layer)
            parameters = _feeding_parameters(tuned, neuron, next(batches))
            if not parameters:  # driven by the analog input: exact, nothing to correct
                continue
            saved = {name: p.detach().clone() for name, p in parameters.items()}
            _train_layer(tuned, qann, layer, parameters, batches, objective, steps_per_layer, lr)
            after = conversion_errors(qann, {"snn": tuned}, held_out)
            kept = after.output["snn"] < baseline.output["snn"]
            index = baseline.layers.index(layer)
            if on_layer is not None:
                on_layer(
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
    for parameter, original in zip(tuned.parameters(), snn.parameters(), strict=True):
        parameter.requires_grad_(original.requires_grad)
    return tuned


class _ReachedLayer(Exception):
    """Raised by a hook to stop the forward pass once the tuned layer has run (nothing after it matters)."""

    def __init__(self, current: torch.Tensor, output: torch.Tensor):
        super().__init__()
        self.current, self.output = current, output


def _run_to(snn: SpikingNetwork, neuron: IFNeuron, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Input current ``[T, B, ...]`` and output ``[T*B, ...]`` of ``neuron``, running ``snn`` only up to it."""

    def stop(_module, inputs, output):
        raise _ReachedLayer(neuron.over_time(inputs[0]), output)

    handle = neuron.register_forward_hook(stop)
    try:
        snn(images)
    except _ReachedLayer as reached:
        return reached.current, reached.output
    finally:
        handle.remove()
    raise FastSNNError("the tuned spiking layer did not run in the forward pass")


def _feeding_parameters(snn: SpikingNetwork, neuron: IFNeuron, images: torch.Tensor) -> dict[str, nn.Parameter]:
    """The body's parameters that neuron's input current depends on (a spiking layer's output carries no gradient).

    Empty when the current is the same at every time step: the layer sees the analog input only.
    """
    named = dict(snn.body.named_parameters())
    with _trainable(named.values()), torch.enable_grad():
        current, _ = _run_to(snn, neuron, images)
        if not current.requires_grad or constant_over_time(current.detach()):
            return {}
        gradients = torch.autograd.grad(current.sum(), list(named.values()), allow_unused=True)
    used = zip(named.items(), gradients, strict=True)
    return {name: parameter for (name, parameter), gradient in used if gradient is not None}


def _train_layer(snn, qann, layer, parameters, batches, objective, steps, lr) -> None:
    """``steps`` Adam steps on ``parameters`` lowering MSE(rate, q) / θ² at ``layer``."""
    neuron, target_module = snn.body.get_submodule(layer), qann.get_submodule(layer)
    optimizer = torch.optim.Adam(parameters.values(), lr=lr)
    neuron.surrogate = objective
    try:
        with _trainable(parameters.values()), torch.enable_grad():
            for _ in range(steps):
                images = next(batches)
                with torch.no_grad(), recorded_outputs({"target": target_module}) as targets:
                    qann(images.to(device_of(qann)))
                _, output = _run_to(snn, neuron, images)
                rate = neuron.average_over_time(output)
                loss = ((rate - targets["target"].to(rate.device)) / neuron.threshold).pow(2).mean()
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
    finally:
        neuron.surrogate = None
        for parameter in parameters.values():
            parameter.grad = None


@contextlib.contextmanager
def _trainable(parameters: Iterable[nn.Parameter]) -> Iterator[None]:
    """Within the block ``parameters`` require gradients; afterwards they do not."""
    parameters = list(parameters)
    for parameter in parameters:
        parameter.requires_grad_(True)
    try:
        yield
    finally:
        for parameter in parameters:
            parameter.requires_grad_(False)


def _cycle(loader: Iterable, device: torch.device) -> Iterator[torch.Tensor]:
    """Endless stream of image batches on ``device`` from ``loader`` (``(images, labels)``), epoch after epoch.

    Not itertools.cycle, which would keep every batch in memory instead of re-iterating the loader.
    """
    while True:
        empty = True
        for images, *_ in loader:
            empty = False
            yield images.to(device)
        if empty:
            raise FastSNNError("fine-tuning got an empty loader")
