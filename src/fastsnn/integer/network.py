"""IntegerNetwork: runs an integer graph (the format of :mod:`fastsnn.integer.reference`) with torch.

Integers are held in floating point, where torch has its fast convolutions: float32 while every value the graph
can reach (each op's ``bound``, each neuron's ``membrane_bound``) stays below 2^24, where float32 represents
every integer and every sum is exact in any order, float64 (exact below 2^53) otherwise. On CUDA always float64,
since cuDNN may compute float32 convolutions in TF32. So this network gives the same integers as the NumPy
reference, bit for bit; only the last multiplication by each output's scale is float32 arithmetic, the same in both.
"""

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..convert.simulation_plan import CHUNK_BYTES
from ..convert.spiking_network import join_batches
from ..neuron import SpikingMaxPool, if_scan, repeat_over_time

FLOAT32_EXACT = 2**24  # integers below this are exact in float32, and so are sums that stay below it


class IntegerNetwork(nn.Module):
    """An integer spiking network: ``x [B, *input shape]`` (normalized images) -> the outputs on the QANN's scale.

    Values inside are ``[S, B, ...]`` with S = T for values that change over the steps and S = 1 for those that
    do not (the image and what follows from it alone), so layers before the first neuron run once per image.

    Args:
        graph: the graph record (ops in execution order, outputs, T, weight bits).
        tensors: the ops' integer tensors by stored name (``"<op>.<field>"``).
    """

    def __init__(self, graph: dict, tensors: dict[str, torch.Tensor]):
        super().__init__()
        self.graph = graph
        self._names = sorted(tensors)
        for index, name in enumerate(self._names):
            self.register_buffer(f"tensor{index}", tensors[name].clone())
        last_use = {name: i for i, op in enumerate(graph["ops"]) for name in op["inputs"]}
        last_use |= dict.fromkeys(graph["outputs"], len(graph["ops"]))
        self._last_used_by = [
            [name for name, i in last_use.items() if i == index] for index in range(len(graph["ops"]))
        ]
        self._converted: tuple = (None, [])  # (dtype, device) -> the tensors as that dtype, per op (see _fields)
        reach = max(max(op["bound"], op["attrs"].get("membrane_bound", 0)) for op in graph["ops"])
        self.exact_dtype = torch.float32 if reach < FLOAT32_EXACT else torch.float64
        self._pools = nn.ModuleDict(
            {
                str(index): SpikingMaxPool(_max_pool(op["attrs"]), graph["T"])
                for index, op in enumerate(graph["ops"])
                if op["op"] == "max_pool"
            }
        )

    @property
    def T(self) -> int:
        """Number of simulated time steps."""
        return self.graph["T"]

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Per-image shape the network is made for."""
        return tuple(self.graph["ops"][0]["shape"])

    def tensors(self) -> dict[str, torch.Tensor]:
        """The integer tensors by stored name (``"<op>.<field>"``)."""
        return {name: getattr(self, f"tensor{index}") for index, name in enumerate(self._names)}

    def forward(self, x: torch.Tensor):
        """``x [B, *input shape]`` float -> the outputs (a float32 tensor ``[B, ...]``, or a tuple / list of them).

        The batch runs in chunks whose widest value over the T steps fills about ``CHUNK_BYTES``, as the float
        SpikingNetwork's does (images are independent: chunks change no integer).
        """
        widest = max((self.T if op["timed"] else 1) * math.prod(op["shape"]) for op in self.graph["ops"])
        chunk = max(1, CHUNK_BYTES // (2 * widest * self.exact_dtype.itemsize))
        return join_batches([self.run(part, record=False)[0] for part in x.split(chunk)])

    @torch.no_grad()
    def run(self, x: torch.Tensor, *, record: bool = True) -> tuple[object, dict[str, torch.Tensor]]:
        """The outputs and every op's integer result ``[S, B, *shape]`` (as integer-valued floats), by op name;
        without ``record`` only the outputs are kept (each value is dropped after its last use).

        Raises:
            ValueError: ``x`` is not ``[B, *input shape]``.
        """
        if tuple(x.shape[1:]) != self.input_shape or x.dim() != len(self.input_shape) + 1:
            raise ValueError(f"the integer network takes images [B, {list(self.input_shape)}], got {list(x.shape)}")
        dtype = self.exact_dtype if x.device.type == "cpu" else torch.float64
        values: dict[str, torch.Tensor] = {}
        for index, (op, fields) in enumerate(zip(self.graph["ops"], self._fields(dtype), strict=True)):
            inputs = [values[name] for name in op["inputs"]]
            values[op["name"]] = self._op(index, op, inputs, fields, x, dtype)
            if not record:
                for name in self._last_used_by[index]:
                    del values[name]
        outputs = [values[name] for name in self.graph["outputs"]]
        structure = self.graph["output_structure"]
        result = outputs[0] if structure == "tensor" else (tuple(outputs) if structure == "tuple" else outputs)
        return result, values

    def _fields(self, dtype: torch.dtype) -> list[dict[str, torch.Tensor]]:
        """Each op's tensors by field, as integer-valued ``dtype`` (converted once per dtype and device)."""
        tensors = self.tensors()
        key = (dtype, next(iter(tensors.values())).device if tensors else None)
        if self._converted[0] != key:
            fields = [{} for _ in self.graph["ops"]]
            index = {op["name"]: i for i, op in enumerate(self.graph["ops"])}
            for name, tensor in tensors.items():
                op, field = name.rsplit(".", 1)
                fields[index[op]][field] = tensor.to(dtype)
            self._converted = (key, fields)
        return self._converted[1]

    def _op(self, index: int, op: dict, inputs: list[torch.Tensor], fields: dict, x: torch.Tensor, dtype):
        kind, attrs = op["op"], op["attrs"]
        if kind == "input":
            limit = 2 ** (attrs["bits"] - 1) - 1
            scale = torch.tensor(attrs["scale"], dtype=torch.float32, device=x.device)
            return torch.floor(x.to(torch.float32) / scale + 0.5).clamp(-limit, limit).to(dtype).unsqueeze(0)
        if kind == "output":
            total = inputs[0].to(torch.float64).sum(0).to(torch.float32)
            return total * _per_channel(fields["scale"].to(torch.float32), total.dim() - 1)
        if kind == "add":
            return inputs[0] + inputs[1]
        if kind == "concat":
            steps = max(value.shape[0] for value in inputs)
            return torch.cat([value.expand(steps, *value.shape[1:]) for value in inputs], dim=2)
        if kind == "flatten":
            return inputs[0].flatten(2)
        if kind == "scale":
            rank = inputs[0].dim() - 2
            return inputs[0] * _per_channel(fields["factor"], rank) + _per_channel(fields["bias"], rank)
        if kind == "neuron":
            current = inputs[0]
            by_time = repeat_over_time(current[0], self.T) if current.shape[0] == 1 else current
            threshold = _per_channel(fields["threshold"], current.dim() - 2)
            return if_scan(by_time, threshold, signed=attrs["signed"])
        return _per_image(inputs[0], lambda images: self._layer(index, kind, attrs, fields, images))

    def _layer(self, index: int, kind: str, attrs: dict, fields: dict, images: torch.Tensor) -> torch.Tensor:
        """The ops that act on each image alone: ``[N, ...] -> [N, ...]``."""
        if kind == "conv2d":
            return F.conv2d(images, fields["weight"], fields["bias"], attrs["stride"], attrs["padding"],
                            attrs["dilation"], attrs["groups"])  # fmt: skip
        if kind == "linear":
            return F.linear(images, fields["weight"], fields["bias"])
        if kind == "sum_pool":
            sums = F.avg_pool2d(images, attrs["kernel"], attrs["stride"], attrs["padding"], attrs["ceil_mode"],
                                divisor_override=1)  # fmt: skip
            return sums * fields["multiplier"]
        if kind == "pixel_unshuffle":
            return F.pixel_unshuffle(images, attrs["factor"])
        if kind == "upsample_bilinear":  # float64 interpolation of integers, exact to far below 1/2, then rounded
            factor = attrs["factor"]
            scaled = F.interpolate(images.double(), scale_factor=factor, mode="bilinear", align_corners=False)
            return torch.round(scaled * (2 * factor) ** 2).to(images.dtype)
        if kind == "max_pool":
            return self._pools[str(index)](images)
        raise ValueError(f"unknown op kind {kind!r}")


def _per_image(value: torch.Tensor, layer) -> torch.Tensor:
    """``layer`` on ``[S, B, ...]`` with steps folded into the batch: ``[S*B, ...]`` in, ``[S, B, ...]`` out."""
    out = layer(value.flatten(0, 1))
    return out.reshape(value.shape[0], value.shape[1], *out.shape[1:])


def _per_channel(values: torch.Tensor, rank: int) -> torch.Tensor:
    """``[C]`` viewed to broadcast over per-sample values of ``rank`` dims, channel first."""
    return values.reshape(-1, *[1] * (rank - 1))


def _max_pool(attrs: dict) -> nn.MaxPool2d:
    return nn.MaxPool2d(
        attrs["kernel"], attrs["stride"], attrs["padding"], attrs["dilation"], ceil_mode=attrs["ceil_mode"]
    )
