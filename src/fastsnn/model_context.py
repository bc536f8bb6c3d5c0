"""Where a model runs and in which mode, read or set without changing the caller's model for good."""

import contextlib
import itertools
from collections.abc import Iterator

import torch
from torch import nn


def device_of(model: nn.Module) -> torch.device:
    """The device of ``model``'s first parameter or buffer (CPU if it has neither)."""
    first = next(itertools.chain(model.parameters(), model.buffers()), None)  # no tuple of every tensor
    return first.device if first is not None else torch.device("cpu")


@contextlib.contextmanager
def eval_mode(*models: nn.Module) -> Iterator[None]:
    """Within the block every module of ``models`` is in eval mode; each module's own flag is restored on exit."""
    flags = [(module, module.training) for model in models for module in model.modules()]
    for model in models:
        model.eval()
    try:
        yield
    finally:
        for module, training in flags:
            module.training = training
