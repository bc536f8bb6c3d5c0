"""IntegerNetwork: runs an integer graph (the format of :mod:`fastsnn.integer.reference`) with torch.

Integers are held in floating point, where torch has its fast convolutions, in a dtype chosen per op: float32 where
every value the op reads or reaches (its inputs' and its own ``bound``, a neuron's ``membrane_bound``) stays below
2^24, where float32 represents every integer and every sum is exact in any order; otherwise int32 for a neuron and
float64 (exact below 2^53) for the others: typically the first layer, whose input is the finely quantized image.
On CUDA always float64, since cuDNN may compute float32 convolutions in TF32. Linear layers and 1x1 convolutions
of int8 weights on values within ±127 (spikes) run as int8 matrix products on CPU (``torch._int_mm``: exact, and
faster, benchmarks/int8_conv.py). So this network gives the same integers as the NumPy reference, bit for bit; only
the last multiplication by each output's scale is float32 arithmetic, the same in both.
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
        self._converted: tuple = (None, [])  # device -> each op's tensors in its dtype (see _fields)
        bounds = {op["name"]: op["bound"] for op in graph["ops"]}
        self._dtypes = [_exact_dtype(op, bounds) for op in graph["ops"]]  # on CPU
        self._int8_products = {  # ops computed as exact int8 matrix products on CPU (see _int8_product)
            index
            for index, op in enumerate(graph["ops"])
            if _int8_product_applies(op, tensors.get(f"{op['name']}.weight"), bounds)
        }
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

    @property
    def wide_ops(self) -> list[str]:
        """The ops that run in float64 or int32 on CPU (their values may exceed float32's exact integers)."""
        return [op["name"] for op, dtype in zip(self.graph["ops"], self._dtypes, strict=True) if dtype != torch.float32]

    def tensors(self) -> dict[str, torch.Tensor]:
        """The integer tensors by stored name (``"<op>.<field>"``)."""
        return {name: getattr(self, f"tensor{index}") for index, name in enumerate(self._names)}

    def forward(self, x: torch.Tensor):
        """``x [B, *input shape]`` float -> the outputs (a float32 tensor ``[B, ...]``, or a tuple / list of them).

        The batch runs in chunks whose widest value over the T steps fills about ``CHUNK_BYTES``, as the float
        SpikingNetwork's does (images are independent: chunks change no integer).
        """
        widest = max((self.T if op["timed"] else 1) * math.prod(op["shape"]) for op in self.graph["ops"])
        chunk = max(1, CHUNK_BYTES // (2 * widest * 4))
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
        dtypes = self._dtypes if x.device.type == "cpu" else [torch.float64] * len(self._dtypes)
        values: dict[str, torch.Tensor] = {}
        for index, (op, fields) in enumerate(zip(self.graph["ops"], self._fields(x.device), strict=True)):
            inputs = [values[name].to(dtypes[index]) for name in op["inputs"]]
            values[op["name"]] = self._op(index, op, inputs, fields, x, dtypes[index])
            if not record:
                for name in self._last_used_by[index]:
                    del values[name]
        outputs = [values[name] for name in self.graph["outputs"]]
        structure = self.graph["output_structure"]
        result = outputs[0] if structure == "tensor" else (tuple(outputs) if structure == "tuple" else outputs)
        return result, values

    def _fields(self, device: torch.device) -> list[dict[str, torch.Tensor]]:
        """Each op's tensors by field, integer-valued in the op's dtype (converted once per device); per-channel
        tensors of elementwise ops (thresholds, shortcut factors and biases) spread over the op's whole shape, so
        that those ops run as one flat loop per image rather than one per row; and the int8 weight matrix of the
        ops that run as int8 matrix products."""
        if self._converted[0] != device:
            cpu = device.type == "cpu"
            ops = self.graph["ops"]
            fields = [{} for _ in ops]
            index = {op["name"]: i for i, op in enumerate(ops)}
            for name, tensor in self.tensors().items():
                at, field = name.rsplit(".", 1)
                op, values = ops[index[at]], tensor.to(device, self._dtypes[index[at]] if cpu else torch.float64)
                if op["op"] in ("neuron", "scale"):
                    values = _per_channel(values, len(op["shape"])).expand(op["shape"]).contiguous()
                fields[index[at]][field] = values
                if field == "weight" and cpu and index[at] in self._int8_products:
                    fields[index[at]]["int8_matrix"] = tensor.reshape(len(tensor), -1).t().contiguous().to(device)
            self._converted = (device, fields)
        return self._converted[1]

    def _op(self, index: int, op: dict, inputs: list[torch.Tensor], fields: dict, x: torch.Tensor, dtype):
        kind, attrs = op["op"], op["attrs"]
        if kind == "input":
            limit = 2 ** (attrs["bits"] - 1) - 1
            scale = torch.tensor(attrs["scale"], dtype=torch.float32, device=x.device)
            return torch.floor(x.to(torch.float32) / scale + 0.5).clamp(-limit, limit).to(dtype).unsqueeze(0)
        if kind == "output":  # the sum over the steps is exact in float32 below 2^24, else summed in float64
            wide = torch.float32 if op["bound"] < FLOAT32_EXACT else torch.float64
            total = inputs[0].to(wide).sum(0).to(torch.float32)
            return total * _per_channel(fields["scale"].to(torch.float32), total.dim() - 1)
        if kind == "add":
            return inputs[0] + inputs[1]
        if kind == "concat":
            steps = max(value.shape[0] for value in inputs)
            return torch.cat([value.expand(steps, *value.shape[1:]) for value in inputs], dim=2)
        if kind == "flatten":
            return inputs[0].flatten(2)
        if kind == "scale":
            return torch.addcmul(fields["bias"], inputs[0], fields["factor"])
        if kind == "neuron":
            current = inputs[0]
            by_time = repeat_over_time(current[0], self.T) if current.shape[0] == 1 else current
            return if_scan(by_time, fields["threshold"], signed=attrs["signed"])
        return _per_image(inputs[0], lambda images: self._layer(index, kind, attrs, fields, images))

    def _layer(self, index: int, kind: str, attrs: dict, fields: dict, images: torch.Tensor) -> torch.Tensor:
        """The ops that act on each image alone: ``[N, ...] -> [N, ...]``."""
        if "int8_matrix" in fields:
            return _int8_product(images, fields, attrs.get("stride", (1, 1)))
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
        if kind == "upsample_bilinear":
            return _upsampled(images, attrs["factor"])
        if kind == "max_pool":
            return self._pools[str(index)](images)
        raise ValueError(f"unknown op kind {kind!r}")


def _exact_dtype(op: dict, bounds: dict[str, int]) -> torch.dtype:
    """float32 if every integer ``op`` reads or computes is below 2^24; else int32 for a neuron (its scan needs no
    convolution, and int32 is as fast), float64 for the others (the output op sums its steps in float64 anyway)."""
    reach = max([bounds[name] for name in op["inputs"]] + [op["attrs"].get("membrane_bound", 0)])
    if op["op"] != "output":
        reach = max(reach, op["bound"])
    if reach < FLOAT32_EXACT:
        return torch.float32
    return torch.int32 if op["op"] == "neuron" else torch.float64


def _int8_product_applies(op: dict, weight: torch.Tensor | None, bounds: dict[str, int]) -> bool:
    """Whether ``op`` is a linear layer or a 1x1 convolution (no padding, groups) of int8 ``weight`` on values
    within ±127: then it is an int8 matrix product."""
    if weight is None or weight.dtype != torch.int8 or any(bounds[name] > 127 for name in op["inputs"]):
        return False
    attrs = op["attrs"]
    return op["op"] == "linear" or (
        op["op"] == "conv2d" and weight.shape[2:] == (1, 1) and attrs["padding"] == [0, 0] and attrs["groups"] == 1
    )


def _int8_product(images: torch.Tensor, fields: dict, stride) -> torch.Tensor:
    """A linear layer or 1x1 convolution as ``torch._int_mm`` (int8 x int8 -> int32, exact), measured faster than
    float32 convolution on CPU for 1x1 convolutions (benchmarks/int8_conv.py); 3x3 ones would need im2col, slower.
    ``images``: ``[N, I]`` or ``[N, C, H, W]`` integer-valued."""
    if images.dim() == 2:
        return torch._int_mm(images.to(torch.int8), fields["int8_matrix"]).to(images.dtype) + fields["bias"]
    images = images[:, :, :: stride[0], :: stride[1]]
    n, c, h, w = images.shape
    rows = images.to(torch.int8).permute(0, 2, 3, 1).reshape(-1, c)
    products = torch._int_mm(rows, fields["int8_matrix"]).to(images.dtype) + fields["bias"]  # [N*H*W, O]
    return products.reshape(n, h, w, -1).permute(0, 3, 1, 2).contiguous()


def _upsampled(images: torch.Tensor, factor: int) -> torch.Tensor:
    """Bilinear upsampling by ``factor`` times (2·factor)², exact: for a power of two the weights are dyadic, and every
    product and sum is exact in the network's dtype (the op's bound is within it); otherwise interpolated in float64,
    off by far less than 1/2, and rounded."""
    weight = (2 * factor) ** 2
    if factor & (factor - 1) == 0:  # scaled before: the input is factor² times smaller than the output
        return F.interpolate(images * weight, scale_factor=factor, mode="bilinear", align_corners=False)
    scaled = F.interpolate(images.double(), scale_factor=factor, mode="bilinear", align_corners=False)
    return torch.round(scaled * weight).to(images.dtype)


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
