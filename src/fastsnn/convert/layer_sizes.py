"""Tensor sizes of every layer call, measured on the ``meta`` device (shapes only, no computation)."""

import copy

import torch
from torch import nn


def layer_io_bytes(model: nn.Module, sample: torch.Tensor) -> list[tuple[int, int]] | None:
    """``(input bytes, output bytes)`` of every leaf-module call when ``model`` runs on ``sample``, in call order.

    ``model`` runs as a copy on the meta device, on a meta tensor shaped like ``sample``: nothing is
    computed, and hooks on the original (the user's, or a measurement's) are not called. None if the
    model cannot run there (an operation without a meta kernel, or shapes that do not fit) or has no
    leaf module.
    """
    shadow = copy.deepcopy(model).to("meta")
    sizes = []

    def record(_module, inputs, output):
        sizes.append((_bytes(inputs), _bytes(output)))

    for module in shadow.modules():
        module._forward_hooks.clear()
        module._forward_pre_hooks.clear()
        if next(module.children(), None) is None:
            module.register_forward_hook(record)
    try:
        shadow(torch.empty_like(sample, device="meta"))
    except (RuntimeError, NotImplementedError, TypeError, ValueError):  # an operation without a meta kernel
        return None
    return sizes or None


def _bytes(value) -> int:
    if isinstance(value, torch.Tensor):
        return value.numel() * value.element_size()
    if isinstance(value, dict):
        return sum(_bytes(v) for v in value.values())
    if isinstance(value, (tuple, list)):
        return sum(_bytes(v) for v in value)
    return 0
