"""Find what a spiking network cannot represent: non-ReLU nonlinearities and max-pools of no spikes.

Spikes carry information as rates, and only layers that commute with the
average over time (conv, linear, BN in eval mode, average pooling, addition,
concatenation, upsampling) are exact on them. A nonlinearity other than the
quantized ReLU would act on single time steps and silently change the result,
so conversion refuses it up front.

A max-pool (``nn.MaxPool2d``, ``nn.AdaptiveMaxPool2d``) is exact on spikes in its
cumulative form (:class:`~fastsnn.neuron.SpikingMaxPool`), but only on spikes: it is
accepted where tracing ``forward`` with torch.fx shows that it pools the output of an
activation module (``nn.ReLU``, ``nn.ReLU6``, ``QuantReLU``, ``IFNeuron``,
``SpikingMaxPool``) or of an accepted max-pool, possibly through ``nn.Dropout`` /
``nn.Identity``, or a concatenation of such outputs along channels. A max-pool of anything
else (BatchNorm's output, the network input, a sum), one returning indices, one in a model
that cannot be traced, and functional max-pooling (``F.max_pool2d``, which
:func:`fastsnn.quantize` turns into modules) are refused, as are the other pools (1d/3d,
LP, unpooling).
"""

import operator
import warnings

import torch
import torch.nn.functional as F
from torch import fx, nn

UNSUPPORTED_MODULES: tuple[type[nn.Module], ...] = (
    nn.LeakyReLU,
    nn.PReLU,
    nn.RReLU,
    nn.ELU,
    nn.SELU,
    nn.CELU,
    nn.GELU,
    nn.SiLU,
    nn.Mish,
    nn.Hardswish,
    nn.Hardsigmoid,
    nn.Sigmoid,
    nn.Tanh,
    nn.Softplus,
    nn.Softsign,
    nn.Tanhshrink,
    nn.Hardtanh,
    nn.Threshold,
    nn.GLU,
    nn.LogSigmoid,
    nn.Softmax,
    nn.LogSoftmax,
    nn.MaxPool1d,
    nn.MaxPool3d,
    nn.AdaptiveMaxPool1d,
    nn.AdaptiveMaxPool3d,
    nn.LPPool1d,
    nn.LPPool2d,
    nn.MaxUnpool2d,
)

UNSUPPORTED_FUNCTIONS = {
    F.relu,
    torch.relu,
    torch.relu_,
    F.relu_,
    F.relu6,
    F.leaky_relu,
    F.elu,
    F.selu,
    F.celu,
    F.gelu,
    F.silu,
    F.mish,
    F.hardswish,
    F.hardsigmoid,
    F.hardtanh,
    torch.sigmoid,
    F.sigmoid,
    torch.tanh,
    F.tanh,
    F.softplus,
    F.softmax,
    F.log_softmax,
    torch.softmax,
    F.max_pool1d,
    F.max_pool2d,
    F.max_pool3d,
    F.adaptive_max_pool2d,
    torch.max_pool2d,
    torch.maximum,
    torch.minimum,
    torch.clamp,
    torch.abs,
    operator.abs,
}
UNSUPPORTED_METHODS = {"relu", "relu_", "sigmoid", "tanh", "softmax", "clamp", "clamp_", "clip", "abs", "max", "min"}
_FUNCTION_HINTS = {  # what to use instead, for the functional calls a module replaces
    F.max_pool2d: "use nn.MaxPool2d after the ReLU",
    torch.max_pool2d: "use nn.MaxPool2d after the ReLU",
    F.adaptive_max_pool2d: "use nn.AdaptiveMaxPool2d after the ReLU",
}
SHAPE_ONLY: tuple[type[nn.Module], ...] = (nn.Dropout, nn.Identity)  # between an activation and its max-pool


class _Tracer(fx.Tracer):
    """Traces through user modules but stops at fastsnn's own activations and neurons."""

    def is_leaf_module(self, module: nn.Module, qualified_name: str) -> bool:
        return _own(module) or super().is_leaf_module(module, qualified_name)


def _own(module: nn.Module) -> bool:
    """Whether ``module`` is one of fastsnn's activations or spiking modules (checked as a whole)."""
    return type(module).__module__.startswith(("fastsnn.quant.", "fastsnn.neuron."))


def find_unsupported(model: nn.Module, extra_types: tuple[type[nn.Module], ...] = ()) -> list[str]:
    """Describe every module or functional call in ``model`` that a spiking network cannot represent.

    ``extra_types`` adds module types the caller refuses too (e.g. a plain ``nn.ReLU`` at conversion).
    Returns human-readable culprits such as ``"features.3 (GELU)"`` or ``"features.3 (MaxPool2d) pools the
    output of features.2 (BatchNorm2d), ..."``; empty when all is well. Warns if ``forward`` cannot be
    traced (then only modules are checked; a max-pool in such a model is refused).
    """
    max_pools, _ = _spike_modules()
    refused = UNSUPPORTED_MODULES + tuple(extra_types)
    modules = _outside_own(model)
    found = [
        f"{name} ({type(module).__name__})"
        for name, module in modules.items()
        if isinstance(module, refused) and not _is_relu6(module, extra_types)
    ]
    pools = {name: module for name, module in modules.items() if isinstance(module, max_pools)}
    found += [
        f"{name} ({type(pool).__name__}) has return_indices=True, which spikes cannot give; use return_indices=False"
        for name, pool in pools.items()
        if pool.return_indices
    ]
    try:
        graph = _Tracer().trace(model)
    except Exception as error:  # noqa: BLE001 - any trace failure only means we cannot look inside forward()
        if pools:
            reason = (str(error).strip().splitlines() or [""])[0]
            return found + [
                f"{name} ({type(pool).__name__}) cannot be checked to pool spikes: torch.fx could not trace "
                f"{type(model).__name__}.forward ({type(error).__name__}: {reason})"
                for name, pool in pools.items()
            ]
        warnings.warn(
            f"could not trace {type(model).__name__}.forward with torch.fx ({type(error).__name__}); "
            "functional activations such as F.relu inside forward() were not checked",
            stacklevel=2,
        )
        return found
    return found + _unsupported_calls(graph) + _misplaced_pools(model, graph)


def _spike_modules() -> tuple[tuple[type[nn.Module], ...], tuple[type[nn.Module], ...]]:
    """The max-pools a SpikingMaxPool replaces, and the modules whose output is spikes in the SNN."""
    from .neuron import MAX_POOLS, IFNeuron, SpikingMaxPool  # here: fastsnn.neuron and .quant import this module
    from .quant.activation import QuantReLU

    return MAX_POOLS, (nn.ReLU, nn.ReLU6, QuantReLU, IFNeuron, SpikingMaxPool)


def _outside_own(model: nn.Module) -> dict[str, nn.Module]:
    """``dict(model.named_modules())`` less the submodules of fastsnn's own modules (e.g. the pool of
    counts inside a SpikingMaxPool): those are checked as a whole."""
    inside = {id(sub) for module in model.modules() if _own(module) for sub in module.modules() if sub is not module}
    return {name: module for name, module in model.named_modules() if id(module) not in inside}


def _unsupported_calls(graph: fx.Graph) -> list[str]:
    """Functional nonlinearities and max-pools in the traced ``graph``."""
    found = []
    for node in graph.nodes:
        if node.op == "call_function" and node.target in UNSUPPORTED_FUNCTIONS:
            hint = f"; {_FUNCTION_HINTS[node.target]}" if node.target in _FUNCTION_HINTS else ""
            found.append(
                f"{node.target.__module__}.{node.target.__name__} called in forward() (fx node '{node.name}'){hint}"
            )
        elif node.op == "call_method" and node.target in UNSUPPORTED_METHODS:
            found.append(f"Tensor.{node.target}() called in forward() (fx node '{node.name}')")
    return found


def _misplaced_pools(model: nn.Module, graph: fx.Graph) -> list[str]:
    """Max-pool calls in ``graph`` whose input is no activation's output (nor an accepted max-pool's),
    looking through shape-only modules."""
    max_pools, activations = _spike_modules()
    accepted, found = set(), []
    for node in graph.nodes:  # in execution order: a pool's producer comes before it
        pool = _called_module(model, node)
        if not isinstance(pool, max_pools) or pool.return_indices:  # return_indices: already refused
            continue
        source = _through_shape_only(model, node.args[0] if node.args else node.kwargs.get("input"))
        producer = _called_module(model, source)
        if _spikes(model, source, accepted):
            accepted.add(node)
            continue
        culprit = f"{node.target} ({type(pool).__name__}) pools"
        if isinstance(producer, max_pools):
            found.append(f"{culprit} the output of {source.target} ({type(producer).__name__}), which pools no spikes")
        elif producer is not None:
            found.append(
                f"{culprit} the output of {source.target} ({type(producer).__name__}), an analog value, not spikes; "
                "put the max-pool after the ReLU"
            )
        elif isinstance(source, fx.Node) and source.op == "placeholder":
            found.append(
                f"{culprit} the network input '{source.target}', an analog value, not spikes; "
                "put the max-pool after the ReLU"
            )
        else:
            found.append(f"{culprit} {_described(source)}, not an activation's output; put the max-pool after the ReLU")
    return list(dict.fromkeys(found))  # a pool called twice in the same wrong place is named once


def _through_shape_only(model: nn.Module, source):
    """``source``, or for the output of shape-only modules the input of the first of them."""
    while isinstance(_called_module(model, source), SHAPE_ONLY):
        source = source.args[0]
    return source


def _spikes(model: nn.Module, source, accepted: set) -> bool:
    """Whether ``source`` (an fx node, or an argument) is spikes in the SNN: an activation's output, an accepted
    max-pool's (in ``accepted``), or their concatenation along channels (``torch.cat(..., 1)``, e.g. Inception's
    branches), where each channel keeps the amplitude of its neuron, the same within every pooling window."""
    max_pools, activations = _spike_modules()
    producer = _called_module(model, source)
    if source in accepted or (isinstance(producer, activations) and not isinstance(producer, max_pools)):
        return True
    if not (isinstance(source, fx.Node) and source.op == "call_function" and source.target is torch.cat):
        return False
    parts = source.args[0] if source.args else source.kwargs.get("tensors", ())
    dim = source.args[1] if len(source.args) > 1 else source.kwargs.get("dim", 0)
    return dim == 1 and all(_spikes(model, _through_shape_only(model, part), accepted) for part in parts)


def _called_module(model: nn.Module, node) -> nn.Module | None:
    """The module ``node`` calls, if it is an fx node of a module call."""
    return model.get_submodule(node.target) if isinstance(node, fx.Node) and node.op == "call_module" else None


def _described(source) -> str:
    """What a max-pool's input is, in words, for a source that is no module call nor the network input."""
    if not isinstance(source, fx.Node):
        return f"the constant {source!r}"
    if source.op == "call_function":
        return f"the output of {getattr(source.target, '__name__', source.target)} (fx node '{source.name}')"
    if source.op == "call_method":
        return f"the output of Tensor.{source.target}() (fx node '{source.name}')"
    return f"fx node '{source.name}' ({source.op})"


def _is_relu6(module: nn.Module, extra_types) -> bool:
    # ReLU6 subclasses Hardtanh; it is a clipped ReLU, so quantize() handles it unless refused explicitly.
    return isinstance(module, nn.ReLU6) and nn.ReLU6 not in extra_types
