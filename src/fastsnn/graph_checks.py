"""Find what a spiking network cannot represent: non-ReLU nonlinearities and max-pooling.

Spikes carry information as rates, and only layers that commute with the
average over time (conv, linear, BN in eval mode, average pooling, addition,
concatenation, upsampling) are exact on them. A nonlinearity other than the
quantized ReLU, or a max-pool, would act on single time steps and silently
change the result, so conversion refuses them up front.
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
    nn.MaxPool2d,
    nn.MaxPool3d,
    nn.AdaptiveMaxPool1d,
    nn.AdaptiveMaxPool2d,
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


class _Tracer(fx.Tracer):
    """Traces through user modules but stops at fastsnn's own activations and neurons."""

    def is_leaf_module(self, module: nn.Module, qualified_name: str) -> bool:
        own = type(module).__module__.startswith(("fastsnn.quant.", "fastsnn.neuron."))
        return own or super().is_leaf_module(module, qualified_name)


def _unsupported_calls(model: nn.Module) -> list[str]:
    """Functional nonlinearities found by tracing ``model`` with torch.fx (best effort)."""
    try:
        graph = _Tracer().trace(model)
    except Exception as error:  # noqa: BLE001 - any trace failure only means we cannot look inside forward()
        warnings.warn(
            f"could not trace {type(model).__name__}.forward with torch.fx ({type(error).__name__}); "
            "functional activations such as F.relu inside forward() were not checked",
            stacklevel=3,
        )
        return []
    found = []
    for node in graph.nodes:
        if node.op == "call_function" and node.target in UNSUPPORTED_FUNCTIONS:
            found.append(f"{node.target.__module__}.{node.target.__name__} called in forward() (fx node '{node.name}')")
        elif node.op == "call_method" and node.target in UNSUPPORTED_METHODS:
            found.append(f"Tensor.{node.target}() called in forward() (fx node '{node.name}')")
    return found


def find_unsupported(model: nn.Module, extra_types: tuple[type[nn.Module], ...] = ()) -> list[str]:
    """Describe every module or functional call in ``model`` that a spiking network cannot represent.

    ``extra_types`` adds module types the caller refuses too (e.g. a plain ``nn.ReLU`` at conversion).
    Returns human-readable culprits such as ``"features.3 (GELU)"``; empty when all is well.
    """
    refused = UNSUPPORTED_MODULES + tuple(extra_types)
    found = [
        f"{name} ({type(module).__name__})"
        for name, module in model.named_modules()
        if isinstance(module, refused) and not _is_relu6(module, extra_types)
    ]
    return found + _unsupported_calls(model)


def _is_relu6(module: nn.Module, extra_types) -> bool:
    # ReLU6 subclasses Hardtanh; it is a clipped ReLU, so quantize() handles it unless refused explicitly.
    return isinstance(module, nn.ReLU6) and nn.ReLU6 not in extra_types
