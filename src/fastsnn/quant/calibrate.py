"""Initial clip values α from activation statistics of a float network."""

from collections.abc import Iterable

import torch
from torch import nn

from ..model_context import device_of, eval_mode
from .call_sites import separate_call_sites

_MAX_SAMPLES_PER_LAYER = 1_000_000  # torch.quantile's input limit is 16M; a random subsample keeps memory flat


@torch.no_grad()
def relu_percentiles(model: nn.Module, batches: Iterable[torch.Tensor], percentile: float = 99.9) -> dict[str, float]:
    """The ``percentile`` of every ``nn.ReLU`` call site's output over ``batches`` (``[B, C, H, W]`` inputs,
    moved to the model's device).

    Returns ``{module path: value}`` under the paths :func:`~fastsnn.quant.quantize` gives the sites
    (:func:`~fastsnn.quant.call_sites.separate_call_sites`: each call of a shared module and each
    functional ReLU has its own, e.g. ``layer1.0.relu_1``), so it can be passed as ``alpha``. Values are
    floored at 1e-3 so a dead layer still gets a valid clip. Percentiles below 100 come from a random
    subsample of at most 1M values per layer; 100 is the exact maximum.
    """
    if not 0 < percentile <= 100:
        raise ValueError(f"percentile must be in (0, 100], got {percentile!r}")
    samples: dict[str, list[torch.Tensor]] = {}
    maxima: dict[str, float] = {}
    generator = torch.Generator().manual_seed(0)

    def recorder(name):
        def hook(_module, _inputs, output):
            flat = output.detach().flatten().float().cpu()
            maxima[name] = max(maxima.get(name, float("-inf")), flat.max().item())
            keep = torch.randperm(flat.numel(), generator=generator)[:_MAX_SAMPLES_PER_LAYER]
            samples.setdefault(name, []).append(flat[keep])

        return hook

    sites = separate_call_sites(model)  # shares model's modules; new ones only for separated sites
    handles = [m.register_forward_hook(recorder(n)) for n, m in sites.named_modules() if type(m) is nn.ReLU]
    device = device_of(model)
    try:
        with eval_mode(sites):
            for x in batches:
                sites(x.to(device))
    finally:
        for handle in handles:
            handle.remove()
    result = {}
    for name, chunks in samples.items():
        if percentile == 100:
            value = maxima[name]
        else:
            values = torch.cat(chunks)
            values = values[torch.randperm(values.numel(), generator=generator)[:_MAX_SAMPLES_PER_LAYER]]
            value = torch.quantile(values, percentile / 100).item()
        result[name] = max(value, 1e-3)
    return result
