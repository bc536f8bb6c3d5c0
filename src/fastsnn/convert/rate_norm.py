"""Baseline: classic rate-norm conversion of a *float* ANN (Diehl et al. 2015; Rueckauer et al. 2017).

Every ReLU becomes an IF neuron with soft reset (reset by subtraction), membrane starting at 0,
and threshold λ_l = the maximum (or a high percentile) of that ReLU's output over calibration data;
a max-pool of a ReLU's output becomes a :class:`~fastsnn.neuron.SpikingMaxPool`, as in :func:`~fastsnn.convert`.
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
from ..neuron import MAX_POOLS, IFNeuron, SpikingMaxPool
from ..quant import relu_percentiles
from ..quant.call_sites import separate_call_sites
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
        ConversionError: another nonlinearity or a max-pool of no ReLU (by path), or no ReLU at all.
    """
    culprits = find_unsupported(float_model, extra_types=(nn.ReLU6,))
    if culprits:
        raise ConversionError("cannot rate-norm convert, these cannot run on spikes: " + "; ".join(culprits))
    thresholds = relu_percentiles(float_model, calibration, percentile)
    if not thresholds:
        raise ConversionError("cannot rate-norm convert: the model has no nn.ReLU module")
    body = separate_call_sites(copy.deepcopy(float_model))  # the paths relu_percentiles names
    swap_modules_(body, lambda path, module: _spiking(path, module, thresholds, T))
    return SpikingNetwork(body).eval()


def _spiking(path: str, module: nn.Module, thresholds: dict[str, float], T: int) -> nn.Module | None:
    """The classic IF neuron of a ReLU (by path), the spiking max-pool of a max-pool, else None."""
    if path in thresholds:
        return IFNeuron(thresholds[path], T, signed=False, initial_membrane=0.0)
    return SpikingMaxPool.from_pool(module, T=T, signed=False) if isinstance(module, MAX_POOLS) else None
