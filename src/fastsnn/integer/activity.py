"""Activity of an integer network, by the rules of :func:`fastsnn.analysis.activity`: the same rows, so the
integer SNN and the float SNN compare layer by layer.

- Neuron rows: elements per image, positive and negative spikes summed over the T steps, firing rate.
- Synaptic rows (``conv2d``, ``linear``, ``sum_pool``): fed by spikes (a neuron's or a spiking max-pool's output,
  a sum-pool of spikes, or a flatten, pixel unshuffle or concatenation of spikes only), one accumulation per input
  event per output it reaches (the op with all-ones weights applied to the event counts ``|s|``; a sum-pool hands
  on its windows' event counts); fed by anything else, MACs in closed form, once per image for a value the same at
  every step, T times otherwise. ``ann_macs``: the layer's MACs once per image.
- Not counted: shortcut factors and additions, max-pooling, upsampling, the neurons' updates, the output scale.
Every count is per image (the mean over the images measured).
"""

import math
from collections.abc import Iterable

import torch
import torch.nn.functional as F

from ..analysis.activity_report import ActivityReport, LayerActivity
from ..errors import FastSNNError
from .network import IntegerNetwork

SYNAPTIC = {"conv2d": "conv", "linear": "linear", "sum_pool": "avgpool"}  # op kind -> activity's row kind


@torch.no_grad()
def integer_activity(net: IntegerNetwork, batches: Iterable) -> ActivityReport:
    """Spikes, SOPs and MACs of ``net`` per layer over ``batches`` (images ``[B, ...]`` or ``(images, target)``)."""
    totals: dict[str, dict] = {}
    images = 0
    for batch in batches:
        x = batch[0] if isinstance(batch, (tuple, list)) else batch
        _, values = net.run(x.to(next(iter(net.tensors().values())).device))
        for name, counts in _counts(net, values).items():
            row = totals.setdefault(name, dict.fromkeys(counts, 0.0))
            for key, value in counts.items():
                row[key] += value
        images += x.shape[0]
    if not images:
        raise FastSNNError("activity got no images")
    rows = []
    for op in net.graph["ops"]:
        if op["name"] in totals:
            counts = totals[op["name"]]
            rows.append(_row(op, {key: value / images for key, value in counts.items()}, net.T))
    return ActivityReport(rows=rows, images=images, T=net.T)


def _counts(net: IntegerNetwork, values: dict[str, torch.Tensor]) -> dict[str, dict]:
    """Sums over the batch: per neuron op its spikes, per synaptic op its SOPs or MACs and ANN MACs."""
    events: dict[str, torch.Tensor] = {}  # op name -> event counts [S, B, ...] of a value made of spikes
    counts: dict[str, dict] = {}
    kernels = {name.removesuffix(".weight"): t.shape for name, t in net.tensors().items() if name.endswith(".weight")}
    for op in net.graph["ops"]:
        kind, attrs, name, value = op["op"], op["attrs"], op["name"], values[op["name"]]
        if kind == "neuron":
            counts[name] = {"pos": float((value > 0).sum()), "neg": float((value < 0).sum())}
        if kind in ("neuron", "max_pool"):
            events[name] = value.abs()
        inputs = [events.get(source) for source in op["inputs"]]
        fed_by_spikes = bool(inputs) and all(counted is not None for counted in inputs)
        source = values[op["inputs"][0]] if op["inputs"] else None
        if kind in SYNAPTIC:
            dense = _dense_macs(op, kernels.get(name), source)
            counts[name] = {"sops": 0.0, "macs": 0.0, "ann_macs": dense * source.shape[1]}
            if not fed_by_spikes:
                counts[name]["macs"] = dense * source.shape[1] * source.shape[0]
        if not fed_by_spikes:
            continue
        spikes = inputs[0].flatten(0, 1).double()
        if kind == "conv2d":
            ones = torch.ones(kernels[name], dtype=spikes.dtype, device=spikes.device)
            options = (attrs["stride"], attrs["padding"], attrs["dilation"], attrs["groups"])
            reached = F.conv2d(spikes, ones, None, *options)
            counts[name]["sops"] = float(reached.sum())
        elif kind == "linear":
            counts[name]["sops"] = float(spikes.sum()) * op["shape"][0]
        elif kind == "sum_pool":
            windows = _window_sums(attrs, spikes)
            counts[name]["sops"] = float(windows.sum())
            events[name] = windows.reshape(*inputs[0].shape[:2], *windows.shape[1:])
        elif kind == "flatten":
            events[name] = inputs[0].flatten(2)
        elif kind == "pixel_unshuffle":
            events[name] = F.pixel_unshuffle(spikes, attrs["factor"]).reshape(value.shape)
        elif kind == "concat":
            steps = max(counted.shape[0] for counted in inputs)
            events[name] = torch.cat([counted.expand(steps, *counted.shape[1:]) for counted in inputs], dim=2)
    return counts


def _dense_macs(op: dict, weight_shape: torch.Size | None, source: torch.Tensor) -> float:
    """MACs of ``op`` (of weights shaped ``weight_shape``) for one image at one step, in closed form."""
    if op["op"] == "linear":
        return op["shape"][0] * source.shape[-1]
    if op["op"] == "sum_pool":
        one_image = torch.ones_like(source[:1, :1].flatten(0, 1), dtype=torch.float64)
        return float(_window_sums(op["attrs"], one_image).sum())
    return math.prod(op["shape"]) * math.prod(weight_shape[1:])


def _window_sums(attrs: dict, values: torch.Tensor) -> torch.Tensor:
    """Sums of ``values [N, C, H, W]`` over each window of a sum-pool (without its multipliers)."""
    return F.avg_pool2d(values, attrs["kernel"], attrs["stride"], attrs["padding"], attrs["ceil_mode"],
                        divisor_override=1)  # fmt: skip


def _row(op: dict, counts: dict, T: int) -> LayerActivity:
    if op["op"] == "neuron":
        neurons = math.prod(op["shape"])
        rate = (counts["pos"] + counts["neg"]) / (neurons * T)
        return LayerActivity(op["name"], "neuron", None, neurons, counts["pos"], counts["neg"], rate, 0.0, 0.0, 0.0)
    fed_by = "spikes" if counts["macs"] == 0 else "analog"
    return LayerActivity(
        op["name"], SYNAPTIC[op["op"]], fed_by, 0, 0.0, 0.0, None, counts["sops"], counts["macs"], counts["ann_macs"]
    )
