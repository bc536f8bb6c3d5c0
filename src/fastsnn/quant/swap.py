"""``quantize(model, bits)``: a new model whose ReLUs are b-bit quantized activations."""

import copy
import warnings
from collections.abc import Mapping

from torch import nn

from ..errors import ConversionError
from ..graph_checks import find_unsupported
from ..module_swap import swap_modules_
from .activation import QuantReLU, check_bits
from .call_sites import trace_and_separate, warn_not_separated
from .weight import quantize_weights_

DEFAULT_ALPHA = 2.0  # clip for layers without statistics; relu_percentiles() gives better starting points


def quantize(
    model: nn.Module,
    bits: int,
    *,
    alpha: float | Mapping[str, float] | None = None,
    weight_bits: int | None = None,
) -> nn.Module:
    """Return a copy of ``model`` with every ReLU call site replaced by a :class:`QuantReLU` of its own.

    Shared ReLU modules and functional ReLUs (``F.relu``, ``x.relu()``, ``F.relu6``, …) are first given
    a module per call site by :func:`~fastsnn.quant.call_sites.separate_call_sites`; the result is then
    a ``torch.fx.GraphModule`` with the model's ``state_dict`` keys plus the new ``.alpha`` entries.
    A model whose ReLUs are all modules called once keeps its class.

    A ``QuantReLU`` already present keeps its learned α and takes the new bit width, so progressive
    training (float → 4 → 3 → 2 bits) is ``quantize(quantize(model, 4), 3)``, each stage initialised
    from the previous one.

    Args:
        model: float ANN or QANN; left untouched.
        bits: activation bits b in 1..8.
        alpha: initial clip for new quantizers: one value, or ``{ReLU module path: value}`` (e.g. from
            :func:`relu_percentiles`, which names the separated sites' paths too); layers missing from
            the mapping get ``DEFAULT_ALPHA`` (``nn.ReLU6`` gets 6).
        weight_bits: if given, also quantize conv/linear weights per output channel to this many bits.

    Warns when torch.fx cannot trace ``model``: shared ReLU modules then keep one quantizer.

    Raises:
        ConversionError: naming each module or functional call that the SNN cannot represent, or, for a
            model without ReLU modules that torch.fx cannot trace, where tracing stopped.
    """
    check_bits(bits)
    quantized, blocker = trace_and_separate(copy.deepcopy(model))
    with warnings.catch_warnings():
        if blocker is not None:  # warned once below, naming where tracing stopped
            warnings.simplefilter("ignore")
        culprits = find_unsupported(quantized)
    if culprits:
        raise ConversionError(
            "cannot quantize: the spiking network can only represent ReLU activations, average pooling and "
            "max-pooling of ReLU outputs, but the model has " + "; ".join(culprits) + "."
        )
    if not swap_modules_(quantized, lambda path, module: _quantized_activation(module, path, bits, alpha)):
        if blocker is not None:
            raise ConversionError(
                f"cannot quantize: the model has no nn.ReLU module, and torch.fx could not trace {blocker}, so "
                "functional ReLUs in forward() could not become modules; make that forward() traceable "
                "(no control flow on tensor values) or use nn.ReLU modules"
            )
        raise ConversionError("cannot quantize: the model has no nn.ReLU module or functional ReLU to replace")
    if blocker is not None:
        warn_not_separated(blocker, stacklevel=3)
    if weight_bits is not None:
        quantize_weights_(quantized, weight_bits)
    return quantized


def _quantized_activation(module: nn.Module, path: str, bits: int, alpha) -> QuantReLU | None:
    if isinstance(module, QuantReLU):
        requantized = copy.deepcopy(module)
        requantized.bits = bits
        return requantized
    if type(module) not in (nn.ReLU, nn.ReLU6):
        return None
    default = 6.0 if isinstance(module, nn.ReLU6) else DEFAULT_ALPHA
    if isinstance(alpha, Mapping):
        start = alpha.get(path, default)
    else:
        start = default if alpha is None else alpha
    return QuantReLU(bits, alpha=start)
