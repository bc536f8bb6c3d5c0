"""Closed-form bias calibration of one spiking layer: remove the mean of its error (rate − q) per channel.

The sequential error of a spiking layer is largely systematic: spikes that arrive late in the T
steps leave a channel's rate below its QANN activation on most images. Shifting the channel's bias
by the mean error (divided by how strongly the bias moves the mean current) removes that part in
closed form, without gradients through the network. The rate responds to the bias only where the
neuron is neither silent nor saturated, so a few rounds are taken, each measured again.
"""

import torch
from torch import nn

from ..convert import SpikingNetwork
from ..model_context import device_of
from .reach import run_to, trainable


def channel_bias(parameters: dict[str, nn.Parameter], channels: int) -> str | None:
    """The per-channel bias among a layer's feeding ``parameters``: the name of the last one named
    ``*bias`` with ``channels`` entries (a BatchNorm's β or a convolution's bias), or None."""
    found = [name for name, p in parameters.items() if name.endswith("bias") and p.shape == (channels,)]
    return found[-1] if found else None


def channel_means(values: torch.Tensor, channel_dim: int) -> torch.Tensor:
    """``[..., C (at channel_dim), ...]`` -> ``[C]`` mean over every other dimension."""
    return values.transpose(0, channel_dim).reshape(values.shape[channel_dim], -1).mean(1)


@torch.no_grad()
def calibrate_layer(
    snn: SpikingNetwork,
    qann: nn.Module,
    layer: str,
    parameters: dict[str, nn.Parameter],
    images: list[torch.Tensor],
    *,
    rounds: int,
) -> list[str]:
    """Shift the per-channel bias among ``parameters`` (those feeding spiking layer ``layer``) so that
    the layer's mean rate per channel over ``images`` (batches ``[B, ...]``) equals its QANN's mean
    activation; returns the name of the bias shifted (none if the layer has no per-channel bias).

    Each round measures the mean error e_c = mean(rate − q) over the batches and sets
    b_c ← b_c − e_c / g_c, where g_c = ∂ mean(current_c) / ∂ b_c (1 for a BatchNorm's β). A bias
    that reaches other channels than its own is not supported (none of the built-in models has one).
    """
    neuron, target_module = snn.body.get_submodule(layer), qann.get_submodule(layer)
    targets = [run_to(qann, target_module, x.to(device_of(qann)))[1].to(images[0].device) for x in images]
    name = channel_bias(parameters, channels=targets[0].shape[1])
    if name is None:
        return []
    bias = parameters[name]
    with trainable([bias]):
        current, _ = run_to(snn, neuron, images[0])
        (gain,) = torch.autograd.grad(channel_means(current, 2).sum(), bias)
    usable = gain.abs() > 1e-6  # a channel the bias does not reach is left alone
    for _ in range(rounds):
        error = torch.zeros_like(bias)
        for x, target in zip(images, targets, strict=True):
            rate = neuron.average_over_time(run_to(snn, neuron, x)[1])
            error += channel_means(rate - target, 1) / len(images)
        bias -= torch.where(usable, error / gain.where(usable, torch.ones_like(gain)), torch.zeros_like(bias))
    return [name]
