"""End-to-end distillation: the whole SNN trained through all T steps towards its QANN's outputs.

After the layer-wise pass each layer matches its QANN activation on its own; what remains is the
error that layers pass on to each other. Here every spiking layer carries a surrogate gradient
(:attr:`fastsnn.IFNeuron.surrogate`) and the loss is the SNN's output against the QANN's (the
logits, for a classifier), so that a layer can compensate what earlier layers still get wrong.
"""

from collections.abc import Callable, Iterator

import torch
from torch import nn

from ..convert import SpikingNetwork
from ..model_context import device_of
from ..neuron import Surrogate
from .reach import surrogates, trainable


def distill(
    snn: SpikingNetwork,
    qann: nn.Module,
    parameters: dict[str, nn.Parameter],
    batches: Iterator[torch.Tensor],
    *,
    objective: Surrogate,
    steps: int,
    lr: float,
    check_every: int,
    on_check: Callable[[], None],
) -> None:
    """``steps`` Adam steps on ``parameters`` lowering MSE(SNN output, QANN output) / mean(QANN output²).

    ``on_check`` is called every ``check_every`` steps and after the last (to evaluate and keep the
    best weights so far); the network is in eval mode throughout (BatchNorm statistics stay frozen).
    """
    neurons = [neuron for _, neuron in snn.neurons()]
    optimizer = torch.optim.Adam(parameters.values(), lr=lr)
    with surrogates(neurons, objective):
        for step in range(1, steps + 1):
            images = next(batches)
            with torch.no_grad():
                target = qann(images.to(device_of(qann))).to(images.device)
            with trainable(parameters.values()):
                output = snn(images)
                loss = (output - target).pow(2).mean() / target.pow(2).mean().clamp(min=1e-12)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
            if step % check_every == 0 or step == steps:
                with surrogates(neurons, None):  # same values; the plain scan is faster
                    on_check()
