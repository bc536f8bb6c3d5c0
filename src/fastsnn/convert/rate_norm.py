"""Baseline: classic rate-norm conversion of a *float* ANN (Diehl et al. 2015; Rueckauer et al. 2017).

Every ReLU becomes an IF neuron with soft reset (reset by subtraction), membrane starting at 0,
and threshold λ_l = the maximum (or a high percentile) of that ReLU's output over calibration data.
A neuron whose output spikes are scaled by λ_l is the same network as the textbook form with
weights scaled by λ_{l−1}/λ_l and unit thresholds, so this is data-based normalisation as published.
It is here to compare against at the same T, not as a method of this library.
"""

import copy
from collections.abc import Iterable

import torch
from torch import nn

from ..errors import ConversionError
from ..graph_checks import find_unsupported
from ..module_swap import swap_modules_
from ..neuron import IFNeuron
from ..quant import relu_percentiles
from .spiking_network import SpikingNetwork


def convert_rate_norm(
    float_model: nn.Module, calibration: Iterable[torch.Tensor], *, T: int, percentile: float = 100.0
) -> SpikingNetwork:
    """A new :class:`SpikingNetwork` from ``float_model`` (left untouched) by rate-norm conversion.

    Args:
        float_model: a float ANN whose activations are ``nn.ReLU`` modules.
        calibration: input batches ``[B, C, H, W]`` (training images) that set the thresholds.
        T: time steps to simulate.
        percentile: 100 for max-norm; 99.9 for the robust variant of Rueckauer et al.

    Raises:
        ConversionError: another nonlinearity or max-pooling (by path), or no ReLU at all.
    """
    culprits = find_unsupported(float_model, extra_types=(nn.ReLU6,))
    if culprits:
        raise ConversionError("cannot rate-norm convert: " + "; ".join(culprits) + " cannot run on spikes")
    thresholds = relu_percentiles(float_model, calibration, percentile)
    if not thresholds:
        raise ConversionError("cannot rate-norm convert: the model has no nn.ReLU module")
    body = copy.deepcopy(float_model)
    swap_modules_(
        body,
        lambda path, module: (
            IFNeuron(thresholds[path], T, signed=False, initial_membrane=0.0) if path in thresholds else None
        ),
    )
    return SpikingNetwork(body).eval()
