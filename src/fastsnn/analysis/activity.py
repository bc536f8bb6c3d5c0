"""Activity and cost of a network: spikes per IF-neuron layer, SOPs and MACs per synaptic layer, energy.

Every count is **per image**: the mean over the images measured.

- Neuron rows (:class:`IFNeuron`): ``neurons`` = elements of the neuron's output for one image; spikes are
  ``output / θ`` rounded, summed over the T steps, positive and negative apart;
  ``firing_rate = (spikes_pos + spikes_neg) / (neurons · T)``.
- Synaptic rows (``nn.Conv1d/2d/3d``, ``nn.Linear``, ``nn.AvgPool2d``, ``nn.AdaptiveAvgPool2d``) fed by
  **spikes** count synaptic operations (SOPs, accumulates): each input spike of either sign counts once per
  output it reaches. Exactly so: the layer is applied with all-ones weights and no bias to the spike counts
  ``|spikes|`` and the result summed, so stride, padding (and padding mode), groups and dilation are exact. An
  average pool of spikes counts one accumulation per input spike per window it falls in, and hands on each
  window's spike count: the layer after it is fed by spikes too (the pool's 1/k folded into its weights, its
  input is a whole number of spikes per position).
- Synaptic rows fed by **analog** values count MACs in closed form (conv: output elements × in_channels/groups
  × kernel elements; linear: output elements × in_features; pool: input elements summed over its windows, each
  accumulation priced as a MAC). In a :class:`SpikingNetwork` an analog input that is the same at every step
  (the image under direct coding, so the first layer and what follows it before a neuron) is a constant
  prefix computed once, so it counts once per image; an analog input that changes over time counts T times.
  In an ANN each layer counts once.
- ``ann_macs``: the layer's MACs in the ANN (closed form, once per image), for the energy comparison.
- Not counted: residual additions (``out + shortcut`` is no module), BatchNorm, max-pooling (comparisons, no
  accumulation), the neurons' membrane updates, the readout mean over T.

An input is spikes if it is the output tensor of an IF neuron, of an average pool of spikes or of a
:class:`~fastsnn.neuron.SpikingMaxPool` of spikes (whose own spikes are counted by applying it to the signed
spike counts of its input: exact where the amplitude is the same within each window), taken whole or
through a view of the whole tensor (``nn.Flatten``, ``nn.Identity``, eval-mode ``nn.Dropout``) and not modified
in place since, or a rearrangement of such tensors only (``torch.cat`` / ``torch.stack``, ``nn.PixelShuffle`` /
``nn.PixelUnshuffle``: DeepLab's ASPP, YOLOv2's passthrough), whose spike counts are rearranged alike. Anything
else (a slice, a sum, BatchNorm's output, a concatenation with an analog tensor) is analog.

The report and its energy estimate: :mod:`fastsnn.analysis.activity_report`.
"""

import dataclasses
import math
from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from ..convert import SpikingNetwork
from ..errors import FastSNNError
from ..model_context import device_of, eval_mode
from ..neuron import IFNeuron, SpikingMaxPool, constant_over_time, over_time
from .activity_report import ActivityReport, LayerActivity

_KINDS = (  # (module types, kind) of the layers counted
    ((IFNeuron,), "neuron"),
    ((nn.Conv1d, nn.Conv2d, nn.Conv3d), "conv"),
    ((nn.Linear,), "linear"),
    ((nn.AvgPool2d, nn.AdaptiveAvgPool2d), "avgpool"),
)


@torch.no_grad()
def activity(model: nn.Module, batches: Iterable) -> ActivityReport:
    """Count spikes, SOPs and MACs of ``model`` per layer over ``batches``, per image (see the module docstring).

    ``model`` is a :class:`SpikingNetwork` (T = its T) or an ANN / QANN without IF neurons (T = 1: every
    synaptic layer counts MACs). ``batches`` yields images ``[B, ...]`` or ``(images, target)`` pairs; images
    are moved to the model's device. The model runs in eval mode (each module's flag is restored on exit),
    without gradients; hooks are installed for the call and removed on exit, even on error, and nothing is
    written onto the modules. Spike counts of one call of the body (one chunk, for batches simulated in
    chunks) are kept until the next.

    Raises:
        FastSNNError: IF neurons outside a SpikingNetwork, a batch that is no tensor, or no images.
    """
    if isinstance(model, SpikingNetwork):
        root, T = model.body, model.T
    elif any(isinstance(module, IFNeuron) for module in model.modules()):
        raise FastSNNError("activity needs IF neurons inside a SpikingNetwork (fastsnn.convert makes one)")
    else:
        root, T = model, 1
    counter = _Counter(T)
    handles = [root.register_forward_pre_hook(counter.forget)]
    if isinstance(model, SpikingNetwork):
        handles.append(model.register_forward_pre_hook(counter.read_plan))
    try:
        for name, module in root.named_modules():
            kind = next((kind for types, kind in _KINDS if isinstance(module, types)), None)
            if kind is not None:
                handles.append(module.register_forward_hook(counter.hook(name, kind)))
            elif isinstance(module, SpikingMaxPool):
                handles.append(module.register_forward_hook(counter.pass_on))
        # inference_mode(False): tensors keep the version counters that tell in-place changes of spikes
        with eval_mode(model), torch.inference_mode(False), _SpikeRearrangements(counter):
            images = sum(_run(model, batch) for batch in batches)
    finally:
        for handle in handles:
            handle.remove()
        counter.forget()
    if not images:
        raise FastSNNError("activity got no images")
    return ActivityReport(
        rows=[tally.row(name, images, T) for name, tally in counter.tallies.items()], images=images, T=T
    )


def _run(model: nn.Module, batch) -> int:
    """Run ``model`` on the images of ``batch`` (a tensor or an ``(images, ...)`` pair); their number."""
    images = batch[0] if isinstance(batch, (tuple, list)) and batch else batch
    if not isinstance(images, torch.Tensor):
        raise FastSNNError(f"activity expects batches of image tensors or (images, target), got {type(batch).__name__}")
    if images.shape[0]:
        model(images.to(device_of(model)))
    return images.shape[0]


@dataclasses.dataclass
class _Tally:
    """Sums over all images of one layer's counts while measuring."""

    kind: str
    fed_by: set[str] = dataclasses.field(default_factory=set)
    elements: int = 0  # neuron outputs per step, summed over images
    pos: int = 0
    neg: int = 0
    sops: int = 0
    macs: int = 0
    ann_macs: int = 0

    def row(self, name: str, images: int, T: int) -> LayerActivity:
        neurons = round(self.elements / images)
        return LayerActivity(
            name=name,
            kind=self.kind,
            fed_by=None if self.kind == "neuron" else ("mixed" if len(self.fed_by) > 1 else next(iter(self.fed_by))),
            neurons=neurons,
            spikes_pos=self.pos / images,
            spikes_neg=self.neg / images,
            firing_rate=(self.pos + self.neg) / (self.elements * T) if self.kind == "neuron" else None,
            sops=self.sops / images,
            macs=self.macs / images,
            ann_macs=self.ann_macs / images,
        )


class _Counter:
    """The hooks and their state for one :func:`activity` call.

    ``spikes`` maps the data pointer of each live spike tensor ``[T*B, ...]`` (the output of a neuron or of a
    pool of spikes) to ``(tensor, its version when recorded, spike counts |s| of its shape)``. Holding
    the tensor keeps its memory from being reused by another tensor during the forward.
    """

    def __init__(self, T: int):
        self.T = T
        self.stem: frozenset[str] = frozenset()  # the layers that run once per image, on [B, ...]
        self.tallies: dict[str, _Tally] = {}
        self.spikes: dict[int, tuple[torch.Tensor, int, torch.Tensor]] = {}

    def read_plan(self, snn: SpikingNetwork, inputs: tuple) -> None:
        """Before each forward of a SpikingNetwork: the layers that its plan runs once per image, on ``[B, ...]``."""
        self.stem = snn.plan(inputs[0]).stem

    def forget(self, *_) -> None:
        """Drop the recorded spike tensors (before every forward of the model, and at the end)."""
        self.spikes.clear()

    def hook(self, name: str, kind: str):
        def count(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
            tally = self.tallies.setdefault(name, _Tally(kind))
            if kind == "neuron":
                spikes = torch.round(output / module.threshold)  # [T*B, ...] in {-1, 0, 1}
                tally.elements += output.numel() // self.T
                tally.pos += int((spikes > 0).sum())
                tally.neg += int((spikes < 0).sum())
                self._remember(output, spikes.abs())
                return
            current = inputs[0]
            by_time = over_time(current, 1 if name in self.stem else self.T)  # [T, B, ...] ([1, B, ...] in the stem)
            images, dense = by_time.shape[1], _dense_macs(module, current, output)
            tally.ann_macs += images * dense
            counts = self._counts(current)
            if counts is None:
                tally.fed_by.add("analog")
                tally.macs += images * dense * (1 if constant_over_time(by_time) else self.T)
                return
            tally.fed_by.add("spikes")
            if kind == "linear":
                tally.sops += round(counts.sum(dtype=torch.float64).item()) * module.out_features
            elif kind == "conv":
                ones = torch.ones(module.weight.shape, dtype=torch.float64, device=counts.device)
                tally.sops += round(module._conv_forward(counts.double(), ones, None).sum().item())
            else:
                pooled = _window_sums(module, counts.double(), output.shape[-2:])  # spike counts per window
                tally.sops += round(pooled.sum().item())
                self._remember(output, pooled)

        return count

    def pass_on(self, pool: SpikingMaxPool, inputs: tuple, output: torch.Tensor) -> None:
        """After a spiking max-pool of spikes: its output is spikes, counted by pooling the input's signed counts."""
        counts = self._counts(inputs[0])
        if counts is not None:
            self._remember(output, pool.forward(counts * inputs[0].sign()).abs())  # forward: no hooks again

    def _remember(self, tensor: torch.Tensor, counts: torch.Tensor) -> None:
        self.spikes[tensor.data_ptr()] = (tensor, tensor._version, counts)

    def _counts(self, current: torch.Tensor) -> torch.Tensor | None:
        """Spike counts ``|s|`` shaped like ``current`` if it is a recorded spike tensor (or a view of all of it)."""
        tensor, version, counts = self.spikes.get(current.data_ptr(), (None, None, None))
        if (
            tensor is None
            or tensor._version != version
            or tensor.numel() != current.numel()
            or not (tensor.is_contiguous() and current.is_contiguous())
        ):
            return None
        return counts.reshape(current.shape)


# Functions that only move elements: applied to spike tensors, the same call on their counts gives the output's.
_REARRANGEMENTS = frozenset({torch.cat, torch.concat, torch.stack, torch.pixel_shuffle, torch.pixel_unshuffle})


class _SpikeRearrangements(TorchFunctionMode):
    """Within the block, the output of a rearrangement (``_REARRANGEMENTS``) of recorded spike tensors only is
    recorded as spikes too, with its counts rearranged by the same call."""

    def __init__(self, counter: _Counter):
        super().__init__()
        self.counter = counter

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        output = func(*args, **kwargs)  # this mode is off while it handles a call
        if func in _REARRANGEMENTS and args:  # the tensors: a sequence (cat, stack) or one tensor (pixel ops)
            first = args[0]
            tensors = list(first) if isinstance(first, (list, tuple)) else [first]
            counts = [self.counter._counts(t) if isinstance(t, torch.Tensor) else None for t in tensors]
            if all(count is not None for count in counts):
                counted = counts if isinstance(first, (list, tuple)) else counts[0]
                self.counter._remember(output, func(counted, *args[1:], **kwargs))
        return output


def _dense_macs(module: nn.Module, current: torch.Tensor, output: torch.Tensor) -> int:
    """MACs of ``module`` for one sample ``[1, ...]`` of one step, in closed form."""
    if isinstance(module, nn.Linear):
        return output[0].numel() * module.in_features
    if isinstance(module, nn.AvgPool2d | nn.AdaptiveAvgPool2d):
        return round(
            _window_sums(module, torch.ones_like(current[:1], dtype=torch.float64), output.shape[-2:]).sum().item()
        )
    return output[0].numel() * (module.in_channels // module.groups) * math.prod(module.kernel_size)


def _window_sums(module: nn.Module, values: torch.Tensor, size: torch.Size) -> torch.Tensor:
    """Sums of ``values [N, C, H, W]`` (float64 whole numbers) over each window of the pool ``module``,
    whose output is ``[N, C, *size]``; elements of the padding add nothing."""
    if isinstance(module, nn.AvgPool2d):
        options = (module.kernel_size, module.stride, module.padding, module.ceil_mode, module.count_include_pad)
        return F.avg_pool2d(values, *options, divisor_override=1)
    area = torch.outer(*(_window_lengths(n, m) for n, m in zip(values.shape[-2:], size, strict=True)))
    return (F.adaptive_avg_pool2d(values, size) * area.to(values)).round()


def _window_lengths(size_in: int, size_out: int) -> torch.Tensor:
    """Lengths of adaptive pooling's windows ``[floor(i·n/m), ceil((i+1)·n/m))`` along one dimension: ``[m]``."""
    return torch.tensor([-(-(i + 1) * size_in // size_out) - i * size_in // size_out for i in range(size_out)])
