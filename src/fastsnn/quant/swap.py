"""``quantize(model, bits)``: a new model whose ReLUs are b-bit quantized activations."""

import copy
from collections.abc import Mapping

from torch import nn

from ..errors import ConversionError
from ..graph_checks import find_unsupported
from ..module_swap import swap_modules_
from .activation import QuantReLU, check_bits
from .weight import quantize_weights_

DEFAULT_ALPHA = 2.0  # clip for layers without statistics; relu_percentiles() gives better starting points


def quantize(
    model: nn.Module,
    bits: int,
    *,
    alpha: float | Mapping[str, float] | None = None,
    weight_bits: int | None = None,
) -> nn.Module:
    """Return a copy of ``model`` with every ``nn.ReLU``/``nn.ReLU6`` replaced by a :class:`QuantReLU`.

    A ``QuantReLU`` already present keeps its learned α and takes the new bit width, so progressive
    training (float → 4 → 3 → 2 bits) is ``quantize(quantize(model, 4), 3)``, each stage initialised
    from the previous one.

    Args:
        model: float ANN or QANN; left untouched.
        bits: activation bits b in 1..8.
        alpha: initial clip for new quantizers: one value, or ``{ReLU module path: value}`` (e.g. from
            :func:`relu_percentiles`); layers missing from the mapping get ``DEFAULT_ALPHA``
            (``nn.ReLU6`` gets 6).
        weight_bits: if given, also quantize conv/linear weights per output channel to this many bits.

    Raises:
        ConversionError: naming each module or functional call that the SNN cannot represent.
    """
    check_bits(bits)
    culprits = find_unsupported(model)
    if culprits:
        raise ConversionError(
            "cannot quantize: the spiking network can only represent ReLU activations and average pooling, "
            "but the model has " + "; ".join(culprits) + ". Replace these with nn.ReLU modules / nn.AvgPool2d."
        )
    quantized = copy.deepcopy(model)
    if not swap_modules_(quantized, lambda path, module: _quantized_activation(module, path, bits, alpha)):
        raise ConversionError("cannot quantize: the model has no nn.ReLU module to replace")
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
