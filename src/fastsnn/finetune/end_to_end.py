"""End-to-end training: the whole SNN trained through all T steps on the task, towards its QANN, or both.

After the layer-wise pass each layer matches its QANN activation on its own; what remains is the
error that layers pass on to each other, and what the QANN itself gets wrong. Here every spiking
layer carries a surrogate gradient (:attr:`fastsnn.IFNeuron.surrogate`) and the loss is the task's own
(cross-entropy, the segmentation or YOLO loss) on the labels, the SNN's outputs against the QANN's, or
their sum, so that a layer can compensate what earlier layers still get wrong.
"""

from collections.abc import Callable, Iterator

import torch
from torch import nn

from ..convert import SpikingNetwork
from ..model_context import device_of
from ..neuron import Surrogate
from ..tasks import Task
from .config import EndToEndLoss
from .reach import surrogates, trainable


def end_to_end_loss(
    loss: EndToEndLoss, output: torch.Tensor, targets, reference: torch.Tensor | None, task: Task | None
) -> torch.Tensor:
    """The phase's loss of SNN outputs against the labels ``targets`` (``task.loss``) and/or the QANN's outputs
    ``reference`` (squared difference divided by the reference's mean square, so scale-free)."""
    total = torch.zeros((), device=output.device)
    if "task" in loss:
        total = total + task.loss(output, targets)
    if "qann" in loss:
        total = total + (output - reference).pow(2).mean() / reference.pow(2).mean().clamp(min=1e-12)
    return total


def train_end_to_end(
    snn: SpikingNetwork,
    qann: nn.Module,
    parameters: dict[str, nn.Parameter],
    batches: Iterator[tuple[torch.Tensor, object]],
    *,
    task: Task | None,
    loss: EndToEndLoss,
    objective: Surrogate,
    steps: int,
    lr: float,
    check_every: int,
    on_check: Callable[[], None],
) -> None:
    """``steps`` Adam steps on ``parameters`` lowering :func:`end_to_end_loss` over ``batches`` of
    ``(images, targets)``.

    ``on_check`` is called every ``check_every`` steps and after the last (to evaluate and keep the
    best weights so far); the network is in eval mode throughout (BatchNorm statistics stay frozen).
    """
    neurons = [neuron for _, neuron in snn.neurons()]
    optimizer = torch.optim.Adam(parameters.values(), lr=lr)
    with surrogates(neurons, objective):
        for step in range(1, steps + 1):
            images, targets = next(batches)
            reference = None
            if "qann" in loss:
                with torch.no_grad():
                    reference = qann(images.to(device_of(qann))).to(images.device)
            with trainable(parameters.values()):
                value = end_to_end_loss(loss, snn(images), targets, reference, task)
                optimizer.zero_grad(set_to_none=True)
                value.backward()
                optimizer.step()
            if step % check_every == 0 or step == steps:
                with surrogates(neurons, None):  # same values; the plain scan is faster
                    on_check()
