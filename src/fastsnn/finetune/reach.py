"""Running a network only as far as one of its modules, and finding the parameters that feed a spiking layer."""

import contextlib
from collections.abc import Iterable, Iterator

import torch
from torch import nn

from ..convert import SpikingNetwork
from ..errors import FastSNNError
from ..neuron import IFNeuron, Surrogate, configured, constant_over_time


class _Reached(Exception):
    """Raised by a hook to stop the forward pass once the module has run (nothing after it matters)."""

    def __init__(self, inputs: torch.Tensor, output: torch.Tensor):
        super().__init__()
        self.inputs, self.output = inputs, output


def run_to(model: nn.Module, module: nn.Module, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """First input and output of ``module`` in ``model(images)``, running ``model`` only up to it.

    For a spiking layer the input (its current) comes as ``[T, B, ...]``, the output as ``[T*B, ...]``.
    A :class:`SpikingNetwork` runs as one simulation of the whole batch (:meth:`SpikingNetwork.simulate`).
    """

    def stop(_module, inputs, output):
        current = module.current_over_time(inputs[0]) if isinstance(module, IFNeuron) else inputs[0]
        raise _Reached(current, output)

    handle = module.register_forward_hook(stop)
    try:
        (model.simulate if isinstance(model, SpikingNetwork) else model)(images)
    except _Reached as reached:
        return reached.inputs, reached.output
    finally:
        handle.remove()
    raise FastSNNError(f"the module {type(module).__name__} did not run in the forward pass")


def feeding_parameters(
    snn: SpikingNetwork, neuron: IFNeuron, images: torch.Tensor
) -> tuple[dict[str, nn.Parameter], bool]:
    """The body's parameters that ``neuron``'s input current depends on (spikes carry no gradient),
    and whether that current is the same at every time step (driven by the analog input only: then
    the layer's rate is its QANN's activation exactly, and there is nothing to correct)."""
    named = dict(snn.body.named_parameters())
    with trainable(named.values()):
        current, _ = run_to(snn, neuron, images)
        exact = constant_over_time(current.detach())
        if not current.requires_grad:
            return {}, exact
        gradients = torch.autograd.grad(current.sum(), list(named.values()), allow_unused=True)
    used = zip(named.items(), gradients, strict=True)
    return {name: parameter for (name, parameter), gradient in used if gradient is not None}, exact


@contextlib.contextmanager
def trainable(parameters: Iterable[nn.Parameter]) -> Iterator[None]:
    """Within the block ``parameters`` require gradients and autograd is on; afterwards they do not."""
    parameters = list(parameters)
    for parameter in parameters:
        parameter.requires_grad_(True)
    try:
        with torch.enable_grad():
            yield
    finally:
        for parameter in parameters:
            parameter.requires_grad_(False)
            parameter.grad = None


def cycle(loader: Iterable, device: torch.device) -> Iterator[tuple[torch.Tensor, object]]:
    """Endless stream of ``(images, targets)`` batches on ``device`` from ``loader``, epoch after epoch
    (targets that are not tensors, or absent, pass as they are, or as None).

    Not itertools.cycle, which would keep every batch in memory instead of re-iterating the loader.
    """
    while True:
        empty = True
        for images, *targets in loader:
            empty = False
            target = targets[0] if targets else None
            yield images.to(device), target.to(device) if isinstance(target, torch.Tensor) else target
        if empty:
            raise FastSNNError("fine-tuning got an empty loader")


def surrogates(neurons: Iterable[IFNeuron], objective: Surrogate | None) -> contextlib.AbstractContextManager:
    """Within the block ``neurons`` back-propagate through ``objective`` (None: their spikes carry no
    gradient, and the plain scan runs); afterwards they are as they were."""
    return configured(neurons, surrogate=objective)
