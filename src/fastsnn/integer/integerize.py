"""``integerize(snn)``: the integer spiking network of a float one, by walking its torch.fx graph.

Every value the walk meets is either an :class:`~fastsnn.integer.folding.IntegerValue` (spikes, the quantized
image, a pooled count: an op of the integer graph already emitted) or a real-valued
:class:`~fastsnn.integer.folding.Current` (convolutions, linear layers, BatchNorm and sums not yet made integer).
A current becomes integer where a neuron takes it (in units of the neuron's threshold), where the network
returns it, or where an op that only moves integers around (pooling, concatenation, a further weighted layer)
needs it (in units of its own largest weight).
"""

import inspect
import math
import operator
import warnings

import torch
import torch.nn.functional as F
from torch import fx, nn
from torch.fx.passes.shape_prop import ShapeProp

from ..convert import SpikingNetwork
from ..errors import ConversionError, OptionError
from ..graph_checks import SHAPE_ONLY, _Tracer
from ..models.yolo import check_input_size
from ..neuron import IFNeuron, SpikingMaxPool
from .builder import GraphBuilder
from .config import IntegerConfig
from .folding import Current, IntegerValue, Term, free_unit, integer_threshold
from .network import IntegerNetwork
from .reference import MAX_INT32

CHECKS = (check_input_size,)  # functions that check their input and return it unchanged


def integerize(
    snn: SpikingNetwork,
    weight_bits: int = IntegerConfig.weight_bits,
    *,
    input_shape: tuple[int, ...],
    input_bound: float = 8.0,
    input_bits: int = IntegerConfig.input_bits,
    about: dict | None = None,
) -> IntegerNetwork:
    """The integer spiking network of ``snn`` (left untouched) for images of ``input_shape``.

    BatchNorm folds into the weighted layer before it; weights become signed ``weight_bits``-bit integers per
    output channel, biases, thresholds and membranes int32; average pools become sums whose divisor, like the
    amplitude θ of incoming spikes, folds into the next layer's weights. The image is quantized to
    ``input_bits``-bit integers of step ``input_bound / (2^(input_bits−1) − 1)`` (values beyond ±input_bound
    saturate). Only rounding separates it from ``snn``; weights that do not fit are clipped, with a warning.

    Args:
        snn: a float spiking network from :func:`fastsnn.convert` (neurons with v0 = θ/2).
        weight_bits: bits of every weight (2..16).
        input_shape: per-image shape ``[C, H, W]`` the integer network is made for.
        input_bound: the largest |value| of a normalized image.
        input_bits: bits of the quantized image (2..16).
        about: free-form JSON facts recorded with the graph (task, data set).

    Raises:
        OptionError: an option out of range. ConversionError: a module or call with no integer form (named).
    """
    IntegerConfig(weight_bits=weight_bits, input_bits=input_bits)  # checks both (OptionError naming the option)
    if not input_bound > 0:
        raise OptionError("input_bound", f"must be a number > 0, got {input_bound!r}")
    for path, neuron in snn.neurons():
        if neuron.initial_membrane != 0.5:
            raise ConversionError(
                f"cannot integerize {path}: its initial membrane is {neuron.initial_membrane:g}·θ, "
                "the integer network starts every membrane at θ/2"
            )
    walk = _Walk(snn, GraphBuilder(snn.T, weight_bits), tuple(input_shape), input_bound, input_bits)
    graph = walk.builder.graph(*walk.run(), about=dict(about or {}))
    if walk.builder.clipped:
        clipped = ", ".join(f"{op}: {n}" for op, n in walk.builder.clipped.items())
        warnings.warn(f"weights clipped to ±{walk.builder.max_weight} at {weight_bits} bits ({clipped})", stacklevel=2)
    return IntegerNetwork(graph, walk.builder.tensors)


class _Walk:
    """One walk over the traced body: fx node -> IntegerValue | Current | tuple of them."""

    def __init__(self, snn: SpikingNetwork, builder: GraphBuilder, input_shape, input_bound: float, input_bits: int):
        self.builder, self.T = builder, snn.T
        self.body = snn.body
        try:
            self.module = fx.GraphModule(self.body, _Tracer().trace(self.body))
        except Exception as error:  # noqa: BLE001 - any trace failure means no graph to integerize
            raise ConversionError(
                f"cannot integerize: torch.fx cannot trace {type(self.body).__name__}.forward ({error})"
            ) from None
        with torch.no_grad():
            sample = torch.zeros(self.T, *input_shape, device=next(snn.parameters()).device)
            ShapeProp(self.module).propagate(sample)
        self.input_shape, self.input_bound, self.input_bits = input_shape, input_bound, input_bits
        self.made_integer: dict[int, tuple[Current, IntegerValue]] = {}  # id of a current -> (it, its integer value)

    def run(self) -> tuple[list[str], str]:
        """Walk the nodes in order; returns the output op names and the output structure."""
        env: dict[fx.Node, object] = {}
        for node in self.module.graph.nodes:
            if node.op == "output":
                return self._outputs(fx.node.map_arg(node.args[0], env.__getitem__))
            env[node] = self._node(node, fx.node.map_arg(node.args, env.__getitem__), node.kwargs)
        raise ConversionError("cannot integerize: the traced body has no output")

    def _node(self, node: fx.Node, args, kwargs):
        if node.op == "placeholder":
            return self._input()
        if node.op == "call_module":
            module = self.module.get_submodule(node.target)
            return self._module(node, str(node.target), module, args[0])
        if node.op in ("call_function", "call_method"):
            return self._function(node, args, kwargs)
        if node.op == "get_attr":
            raise ConversionError(f"cannot integerize: the body reads the tensor {node.target} inside forward")
        raise ConversionError(f"cannot integerize the fx node {node.name} ({node.op})")

    def _input(self) -> IntegerValue:
        limit = 2 ** (self.input_bits - 1) - 1
        step = float(torch.tensor(self.input_bound / limit, dtype=torch.float32))
        name = self.builder.emit(
            "input",
            "input",
            [],
            self.input_shape,
            timed=False,
            bound=limit,
            attrs={"bits": self.input_bits, "scale": step},
        )
        return IntegerValue(
            name, torch.full((self.input_shape[0],), step, dtype=torch.float64), self.input_shape, False, limit
        )

    def _module(self, node: fx.Node, path: str, module: nn.Module, value):
        shape = _shape(node)
        if isinstance(module, SHAPE_ONLY):
            return value
        if isinstance(module, nn.Conv2d):
            return self._conv(path, module, self._integer(value, path), shape)
        if isinstance(module, nn.Linear):
            source = self._integer(value, path)
            coefficient = module.weight.detach().double() * source.unit
            return Current((Term("linear", source, coefficient, {}, path),), _bias(module), shape)
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            return self._batch_norm(path, module, value)
        if isinstance(module, IFNeuron):
            return self._neuron(path, module, value, shape)
        if isinstance(module, SpikingMaxPool):
            return self._max_pool(path, module.pool, self._integer(value, path), shape)
        if isinstance(module, (nn.AvgPool2d, nn.AdaptiveAvgPool2d)):
            return self._sum_pool(path, module, self._integer(value, path), shape)
        if isinstance(module, nn.Flatten) and module.start_dim == 1 and module.end_dim == -1:
            return self._flatten(path, self._integer(value, path), shape)
        if isinstance(module, nn.PixelUnshuffle):
            source = self._integer(value, path)
            factor = module.downscale_factor
            unit = source.unit.repeat_interleave(factor * factor)
            return self._move(path, "pixel_unshuffle", [source], unit, shape, source.bound, {"factor": factor})
        raise ConversionError(f"cannot integerize {path} ({type(module).__name__}): it has no integer form")

    def _function(self, node: fx.Node, args, kwargs):
        target = node.target
        if target in (operator.add, operator.iadd, torch.add, "add", "add_", "__iadd__") and not kwargs:
            left, right = (self._current(a, node.name) for a in args[:2])
            return left + right
        if target in CHECKS:
            return args[0]
        if target is operator.getitem and isinstance(args[0], (tuple, list)):
            return args[0][args[1]]
        if target is torch.cat:
            dim = kwargs.get("dim", args[1] if len(args) > 1 else 0)
            if dim % (len(_shape(node)) + 1) != 1:
                raise ConversionError(f"cannot integerize {node.name}: torch.cat along dim {dim}, not channels")
            sources = [self._integer(a, node.name) for a in args[0]]
            if len(sources) == 1:  # DenseNet's first layer joins a list of one
                return sources[0]
            unit = torch.cat([s.unit for s in sources])
            return self._move(node.name, "concat", sources, unit, _shape(node), max(s.bound for s in sources), {})
        if target in (torch.flatten, "flatten") and tuple(args[1:]) in ((1,), (1, -1)) and not kwargs:
            return self._flatten(node.name, self._integer(args[0], node.name), _shape(node))
        if target in ("view", "reshape", torch.reshape) and len(_shape(node)) == 1:
            return self._flatten(node.name, self._integer(args[0], node.name), _shape(node))
        if target in ("size", getattr) or target is operator.getitem:
            return None  # shape arithmetic (x.size(0) for a view): the shapes come from ShapeProp
        if target in (F.adaptive_avg_pool2d, F.avg_pool2d):
            pool = nn.AdaptiveAvgPool2d(*args[1:], **kwargs) if target is F.adaptive_avg_pool2d else None
            if pool is None:
                pool = nn.AvgPool2d(*args[1:], **kwargs)
            return self._sum_pool(node.name, pool, self._integer(args[0], node.name), _shape(node))
        if target is F.interpolate:
            options = inspect.signature(F.interpolate).bind(*args, **kwargs).arguments
            return self._upsample(node.name, self._integer(args[0], node.name), _shape(node), options)
        raise ConversionError(f"cannot integerize {node.name} ({_described(target)}): it has no integer form")

    def _upsample(self, name: str, source: IntegerValue, shape, options: dict) -> IntegerValue:
        """Bilinear upsampling (align_corners=False) by a whole factor r: its weights are multiples of 1/(2r) per
        axis, so ``(2r)^2 ·`` the result is an integer combination, and 1/(2r)^2 folds into the unit."""
        factors = {out // size for out, size in zip(shape[1:], source.shape[1:], strict=True)}
        whole = all(out % size == 0 for out, size in zip(shape[1:], source.shape[1:], strict=True))
        if options.get("mode") != "bilinear" or options.get("align_corners") or len(factors) != 1 or not whole:
            raise ConversionError(
                f"cannot integerize {name}: only bilinear upsampling (align_corners=False) by one whole factor "
                f"has an integer form, got {options.get('mode')!r} from {list(source.shape[1:])} to {list(shape[1:])}"
            )
        factor = factors.pop()
        bound = source.bound * (2 * factor) ** 2
        unit = source.unit / (2 * factor) ** 2
        return self._move(name, "upsample_bilinear", [source], unit, shape, bound, {"factor": factor})

    def _conv(self, path: str, conv: nn.Conv2d, source: IntegerValue, shape) -> Current:
        if conv.padding_mode != "zeros":
            raise ConversionError(f"cannot integerize {path}: padding mode {conv.padding_mode!r} (only zeros)")
        weight = conv.weight.detach().double()
        groups = conv.groups
        out_per_group, in_per_group = weight.shape[0] // groups, weight.shape[1]
        unit = source.unit.reshape(groups, 1, in_per_group).expand(groups, out_per_group, in_per_group)
        coefficient = weight * unit.reshape(weight.shape[0], in_per_group, 1, 1)
        padding = _explicit_padding(path, conv)
        attrs = {
            "stride": list(conv.stride),
            "padding": padding,
            "dilation": list(conv.dilation),
            "groups": groups,
        }
        return Current((Term("conv2d", source, coefficient, attrs, path),), _bias(conv), shape)

    def _batch_norm(self, path: str, norm: nn.modules.batchnorm._BatchNorm, value) -> Current:
        if norm.running_mean is None:
            raise ConversionError(f"cannot integerize {path}: BatchNorm without running statistics cannot be folded")
        multiplier = torch.rsqrt(norm.running_var.double() + norm.eps)
        if norm.weight is not None:
            multiplier = multiplier * norm.weight.detach().double()
        shift = -norm.running_mean.double() * multiplier
        if norm.bias is not None:
            shift = shift + norm.bias.detach().double()
        return self._current(value, path).affine(multiplier, shift)

    def _neuron(self, path: str, neuron: IFNeuron, value, shape) -> IntegerValue:
        current = self._current(value, path)
        channels = shape[0]
        theta = neuron.threshold.detach().double().expand(shape).reshape(channels, -1)
        if not bool((theta == theta[:, :1]).all()):
            raise ConversionError(f"cannot integerize {path}: its threshold varies within a channel")
        theta = theta[:, 0]
        threshold = integer_threshold(current, theta, self.builder.max_weight, self.T)
        integer_current = self.builder.current(current, f"{path}.current", theta / threshold)
        membrane = int(threshold.max()) + self.T * integer_current.bound  # |V| never exceeds Θ + T·max|I|
        if membrane > MAX_INT32:
            raise ConversionError(f"cannot integerize {path}: its membrane could reach {membrane}, beyond int32")
        name = self.builder.emit(
            path,
            "neuron",
            [integer_current.name],
            shape,
            timed=True,
            bound=1,
            attrs={"signed": bool(neuron.signed), "membrane_bound": membrane},
            threshold=threshold.to(torch.int32),
        )
        return IntegerValue(name, theta, tuple(shape), True, 1)

    def _max_pool(self, path: str, pool: nn.Module, source: IntegerValue, shape) -> IntegerValue:
        if not source.timed:
            raise ConversionError(f"cannot integerize {path}: a max-pool of values that do not change over time")
        attrs = {**_window(path, pool, source.shape, shape), "dilation": _pair(getattr(pool, "dilation", 1))}
        return self._move(path, "max_pool", [source], source.unit, shape, source.bound, attrs)

    def _sum_pool(self, path: str, pool: nn.Module, source: IntegerValue, shape) -> IntegerValue:
        """An average pool as window sums times integer multipliers per position: windows cut by ceil mode or
        padding have other divisors, and ``multiplier = D / divisor`` (D their least common multiple) brings
        them all to D, which folds into the unit."""
        attrs = _window(path, pool, source.shape, shape)
        if isinstance(pool, nn.AdaptiveAvgPool2d):
            pool = nn.AvgPool2d(attrs["kernel"], attrs["stride"])
        ones = torch.ones(1, 1, *source.shape[1:], dtype=torch.float64)
        sums = F.avg_pool2d(ones, attrs["kernel"], attrs["stride"], attrs["padding"], attrs["ceil_mode"],
                            divisor_override=1)  # fmt: skip
        divisors = torch.round(sums / pool(ones))[0, 0].to(torch.int64)  # [H', W']
        common = math.lcm(*divisors.unique().tolist())
        multiplier = common // divisors
        bound = source.bound * attrs["kernel"][0] * attrs["kernel"][1] * int(multiplier.max())
        op = self.builder.emit(
            path, "sum_pool", [source.name], shape, timed=source.timed, bound=bound, attrs=attrs,
            multiplier=multiplier.to(torch.int32),
        )  # fmt: skip
        return IntegerValue(op, source.unit / common, tuple(shape), source.timed, bound)

    def _flatten(self, path: str, source: IntegerValue, shape) -> IntegerValue:
        per_channel = shape[0] // source.shape[0]
        return self._move(
            path, "flatten", [source], source.unit.repeat_interleave(per_channel), shape, source.bound, {}
        )

    def _move(self, name, kind, sources, unit, shape, bound, attrs) -> IntegerValue:
        """An op that only moves, pools or joins integers: the values keep their meaning."""
        timed = any(s.timed for s in sources)
        op = self.builder.emit(name, kind, [s.name for s in sources], shape, timed=timed, bound=bound, attrs=attrs)
        return IntegerValue(op, unit, tuple(shape), timed, bound)

    def _integer(self, value, consumer: str) -> IntegerValue:
        """``value`` as an integer value: a current made integer in its own units first."""
        if isinstance(value, IntegerValue):
            return value
        if isinstance(value, Current):  # made integer once, however many ops take it
            if id(value) not in self.made_integer:
                unit = free_unit(value, self.builder.max_weight)
                self.made_integer[id(value)] = (value, self.builder.current(value, f"{consumer}.input", unit))
            return self.made_integer[id(value)][1]
        raise ConversionError(f"cannot integerize {consumer}: its input is {type(value).__name__}, not a tensor")

    def _current(self, value, consumer: str) -> Current:
        if isinstance(value, Current):
            return value
        return Current.of(self._integer(value, consumer), f"{consumer}.shortcut")

    def _outputs(self, result) -> tuple[list[str], str]:
        structure = "tensor" if not isinstance(result, (tuple, list)) else type(result).__name__
        if structure not in ("tensor", "tuple", "list"):
            raise ConversionError(f"cannot integerize: the network returns a {structure}, not a tensor, tuple or list")
        names = []
        for index, value in enumerate([result] if structure == "tensor" else list(result)):
            name = "output" if structure == "tensor" else f"output{index}"
            source = self._integer(value, name)
            steps = self.T if source.timed else 1
            scale = (source.unit / steps).to(torch.float32)
            if not bool(torch.isfinite(scale).all()):
                raise ConversionError(f"cannot integerize {name}: its output scale is not finite")
            bound = steps * source.bound
            names.append(
                self.builder.emit(name, "output", [source.name], source.shape, timed=False, bound=bound, scale=scale)
            )
        return names, structure


def _shape(node: fx.Node) -> tuple[int, ...]:
    """The per-sample shape of a node's tensor result (ShapeProp's, without the T·B rows)."""
    meta = node.meta.get("tensor_meta")
    return tuple(meta.shape[1:]) if hasattr(meta, "shape") else ()


def _bias(module: nn.Module) -> torch.Tensor:
    out = module.weight.shape[0]
    return module.bias.detach().double() if module.bias is not None else torch.zeros(out, dtype=torch.float64)


def _pair(value) -> list[int]:
    return [int(v) for v in value] if isinstance(value, (tuple, list)) else [int(value)] * 2


def _explicit_padding(path: str, conv: nn.Conv2d) -> list[int]:
    if conv.padding == "valid":
        return [0, 0]
    if conv.padding == "same":
        total = [d * (k - 1) for d, k in zip(conv.dilation, conv.kernel_size, strict=True)]
        if any(t % 2 for t in total):
            raise ConversionError(f"cannot integerize {path}: padding='same' with an even kernel pads unevenly")
        return [t // 2 for t in total]
    return _pair(conv.padding)


def _window(path: str, pool: nn.Module, in_shape, out_shape) -> dict:
    """Kernel, stride, padding and ceil mode of a 2-d pool; an adaptive one's windows must all be alike."""
    if isinstance(pool, (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)):
        return {**_adaptive_window(path, in_shape, out_shape), "padding": [0, 0], "ceil_mode": False}
    return {
        "kernel": _pair(pool.kernel_size),
        "stride": _pair(pool.stride or pool.kernel_size),
        "padding": _pair(pool.padding),
        "ceil_mode": bool(pool.ceil_mode),
    }


def _adaptive_window(path: str, in_shape, out_shape) -> dict:
    """Kernel = stride of an adaptive pool whose windows are all alike; ConversionError otherwise."""
    sizes = list(in_shape[1:]), list(out_shape[1:])
    if any(i % o for i, o in zip(*sizes, strict=True)):
        raise ConversionError(
            f"cannot integerize {path}: adaptive pooling from {sizes[0]} to {sizes[1]} has windows of different sizes"
        )
    window = [i // o for i, o in zip(*sizes, strict=True)]
    return {"kernel": window, "stride": window}


def _described(target) -> str:
    return target if isinstance(target, str) else getattr(target, "__name__", repr(target))
