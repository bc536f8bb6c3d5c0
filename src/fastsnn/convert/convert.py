"""``convert(qann)``: a new SpikingNetwork: quantized activations become IF neurons, max-pools spiking max-pools."""

import copy
from collections.abc import Callable, Mapping

from torch import nn

from ..errors import ConversionError, OptionError
from ..graph_checks import find_unsupported
from ..module_swap import swap_modules_
from ..neuron import MAX_POOLS, IFNeuron, SpikingMaxPool, check_time_steps
from ..quant import QuantReLU, levels
from .spiking_network import SpikingNetwork

# Which module type becomes which spiking module; the destination class owns the translation.
CONVERTERS: dict[type[nn.Module], Callable[..., nn.Module]] = {
    QuantReLU: IFNeuron.from_quant,
    **dict.fromkeys(MAX_POOLS, SpikingMaxPool.from_pool),
}


def convert(
    qann: nn.Module,
    *,
    signed: bool = True,
    T: int | None = None,
    mapping: Mapping[type[nn.Module], Callable[..., nn.Module]] = CONVERTERS,
) -> SpikingNetwork:
    """Return a new :class:`SpikingNetwork` equivalent to ``qann`` (which is left untouched).

    Every module whose type is in ``mapping`` is replaced by ``mapping[type](module, T=T, signed=signed)``;
    with the default table every :class:`QuantReLU` becomes an :class:`IFNeuron` with θ = α,
    v0 = θ/2 and soft reset, and every ``nn.MaxPool2d`` / ``nn.AdaptiveMaxPool2d`` (which must pool a
    quantized activation) a :class:`SpikingMaxPool`.

    Args:
        qann: a quantized ANN, e.g. from :func:`fastsnn.quantize`.
        signed: use signed IF neurons (take back spikes to cancel the sequential error).
        T: time steps; default 2^b − 1 (:func:`~fastsnn.quant.levels`), where the first spiking layer
            is exactly the QANN's.
        mapping: the swap table, as in ``torch.ao.quantization.convert``.

    Raises:
        ConversionError: no quantized activation, mixed bit widths without an explicit T, or a module /
            functional call (plain ReLU, other nonlinearity, max-pool of no activation) the SNN cannot
            represent, by path.
    """
    culprits = find_unsupported(qann, extra_types=(nn.ReLU, nn.ReLU6))
    if culprits:
        raise ConversionError(
            "cannot convert, these cannot run on spikes: " + "; ".join(culprits) + ". Quantize ReLUs with "
            "fastsnn.quantize(model, bits), replace other nonlinearities and put max-pools right after a ReLU "
            "before converting."
        )
    bit_widths = {m.bits for m in qann.modules() if isinstance(m, QuantReLU)}
    if not bit_widths:
        raise ConversionError("cannot convert: the model has no QuantReLU; call fastsnn.quantize(model, bits) first")
    if T is None:
        if len(bit_widths) > 1:
            raise ConversionError(
                f"cannot choose T: the QuantReLUs mix bit widths {sorted(bit_widths)}; pass T explicitly"
            )
        T = levels(bit_widths.pop())
    if not isinstance(signed, bool):
        raise OptionError("signed", f"must be True or False, got {signed!r}")
    check_time_steps(T)
    body = copy.deepcopy(qann)
    swap_modules_(body, lambda path, module: _spiking(mapping, path, module, T, signed))
    return SpikingNetwork(body).eval()


def _spiking(mapping, path: str, module: nn.Module, T: int, signed: bool) -> nn.Module | None:
    make = mapping.get(type(module))
    if make is None:
        return None
    try:
        return make(module, T=T, signed=signed)
    except ValueError as error:  # e.g. a clip α that training drove to ≤ 0, a max-pool returning indices
        raise ConversionError(f"cannot convert {path} ({type(module).__name__}): {error}") from None
