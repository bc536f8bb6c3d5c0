"""Record the outputs of chosen modules during a forward pass, averaged over time for IF neurons."""

import contextlib
from collections.abc import Iterator, Mapping

import torch
from torch import nn

from ..neuron import IFNeuron


@contextlib.contextmanager
def recorded_outputs(modules: Mapping[str, nn.Module]) -> Iterator[dict[str, torch.Tensor]]:
    """Within the block, every forward of ``modules[path]`` stores its output ``[B, ...]`` under ``path``.

    An :class:`IFNeuron`'s output ``[T*B, ...]`` is stored as its rate ``[B, ...]`` (mean of θ·s
    over T); any other module's output as it is. Every call in the block adds its rows: the outputs of
    consecutive batches (a loop over a loader, or a network that simulates its batch in parts) are
    joined along the batch. The dict is filled in call order (Python dicts keep insertion order), so
    ``list(outputs)`` is the execution order of the modules. Hooks are removed on exit; nothing is
    written onto the modules.
    """
    outputs: dict[str, torch.Tensor] = {}

    def recorder(path: str, module: nn.Module):
        def hook(_module, _inputs, output):
            output = output.detach()
            if isinstance(module, IFNeuron):
                output = module.average_over_time(output)
            outputs[path] = torch.cat([outputs[path], output]) if path in outputs else output

        return hook

    handles = [module.register_forward_hook(recorder(path, module)) for path, module in modules.items()]
    try:
        yield outputs
    finally:
        for handle in handles:
            handle.remove()
