"""Layer-wise training of one spiking layer towards its QANN activation (Hu et al., Fast-SNN, TPAMI 2023).

Only the parameters that feed the layer's neurons directly are trained (see
:func:`fastsnn.finetune.reach.feeding_parameters`). Two objectives, both MSE(rate_l, q_l) / θ² against
the QANN's activation q_l; the neuron under tuning provides the gradient
(:attr:`fastsnn.IFNeuron.surrogate`):
  ``"ste"``  the paper's: the rate's value with the gradient of clip(mean current, 0, θ)
             (straight through the mean current; no back-propagation through time);
  ``"bptt"`` back-propagation through the T steps of the IF dynamics of layer l, with a triangular
             surrogate spike gradient (:func:`fastsnn.neuron.if_scan_surrogate`).
"""

from collections.abc import Iterator

import torch
from torch import nn

from ..convert import SpikingNetwork
from ..model_context import device_of
from ..neuron import Surrogate
from .reach import run_to, surrogates, trainable


def train_layer(
    snn: SpikingNetwork,
    qann: nn.Module,
    layer: str,
    parameters: dict[str, nn.Parameter],
    batches: Iterator[tuple[torch.Tensor, object]],
    *,
    objective: Surrogate,
    steps: int,
    lr: float,
) -> None:
    """``steps`` Adam steps on ``parameters`` lowering MSE(rate, q) / θ² at spiking layer ``layer``.

    Both networks run only up to the layer: the QANN (no gradient) for the target q ``[B, ...]``,
    the SNN for the rate ``[B, ...]``.
    """
    neuron, target_module = snn.body.get_submodule(layer), qann.get_submodule(layer)
    optimizer = torch.optim.Adam(parameters.values(), lr=lr)
    with surrogates([neuron], objective), trainable(parameters.values()):
        for _ in range(steps):
            images, _ = next(batches)
            with torch.no_grad():
                _, target = run_to(qann, target_module, images.to(device_of(qann)))
            _, output = run_to(snn, neuron, images)
            rate = neuron.average_over_time(output)
            loss = ((rate - target.to(rate.device)) / neuron.threshold).pow(2).mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
