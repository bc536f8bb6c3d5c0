"""Synaptic operations of an integer network, counted by the rule of :func:`fastsnn.analysis.activity`.

An op fed by spikes (a neuron's or a spiking max-pool's output, a sum-pool of spikes, or a flatten, pixel
unshuffle or concatenation of spikes only) counts one accumulation per input event per output it reaches:
the op applied with all-ones weights to the event counts ``|s|``. A sum-pool hands on its windows' event counts.
Ops fed by the image or by sums count no SOPs (they are MACs).
"""

import torch
import torch.nn.functional as F

from .network import IntegerNetwork

SYNAPTIC = ("conv2d", "linear", "sum_pool")


@torch.no_grad()
def synaptic_operations(net: IntegerNetwork, images: torch.Tensor) -> dict[str, float]:
    """SOPs per image of each synaptic op fed by spikes: ``{op name: mean over the images}``."""
    _, values = net.run(images)
    events: dict[str, torch.Tensor] = {}  # op name -> event counts [S, B, ...] of a value made of spikes
    sops: dict[str, float] = {}
    for op in net.graph["ops"]:
        kind, attrs, name = op["op"], op["attrs"], op["name"]
        if kind in ("neuron", "max_pool"):
            events[name] = values[name].abs()
        inputs = [events.get(source) for source in op["inputs"]]
        if not inputs or any(counts is None for counts in inputs):
            continue
        counts = inputs[0].flatten(0, 1).double()
        if kind == "conv2d":
            ones = torch.ones(
                op["shape"][0], counts.shape[1] // attrs["groups"], *_kernel(net, name), dtype=counts.dtype
            )
            reached = F.conv2d(
                counts, ones, None, attrs["stride"], attrs["padding"], attrs["dilation"], attrs["groups"]
            )
            sops[name] = float(reached.sum()) / images.shape[0]
        elif kind == "linear":
            sops[name] = float(counts.sum()) * op["shape"][0] / images.shape[0]
        elif kind == "sum_pool":
            windows = F.avg_pool2d(counts, attrs["kernel"], attrs["stride"], attrs["padding"], attrs["ceil_mode"],
                                   divisor_override=1)  # fmt: skip
            sops[name] = float(windows.sum()) / images.shape[0]
            events[name] = windows.reshape(*inputs[0].shape[:2], *windows.shape[1:])
        elif kind == "flatten":
            events[name] = inputs[0].flatten(2)
        elif kind == "pixel_unshuffle":
            events[name] = F.pixel_unshuffle(inputs[0].flatten(0, 1), attrs["factor"]).reshape(values[name].shape)
        elif kind == "concat":
            steps = max(counts.shape[0] for counts in inputs)
            events[name] = torch.cat([counts.expand(steps, *counts.shape[1:]) for counts in inputs], dim=2)
    return sops


def _kernel(net: IntegerNetwork, name: str) -> tuple[int, int]:
    return tuple(net.tensors()[f"{name}.weight"].shape[2:])
