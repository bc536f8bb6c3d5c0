"""fastsnn: fast spiking neural networks by converting quantized ANNs (Fast-SNN, Hu et al., TPAMI 2023).

The library (``quantize``, ``convert``, ``finetune``, ``analysis``, ``integer``, ``models``, ``neuron``,
``tasks``) imports neither the data layer nor torchvision; whole runs on files live in :mod:`fastsnn.workflows`.
After a bare ``import fastsnn``, ``fastsnn.models.list_models()`` works as in torchvision: ``models``,
``analysis``, ``integer`` and ``tasks`` are imported on first use. ``fastsnn.convert`` and ``fastsnn.finetune``
name the functions (the subpackages' other names: ``from fastsnn.finetune import LayerReport``).
"""

import importlib

from .convert import SpikingNetwork, convert
from .errors import FastSNNError
from .finetune import finetune
from .neuron import IFNeuron
from .quant import QuantReLU, quantize

_LAZY_SUBPACKAGES = ("analysis", "integer", "models", "tasks")  # the others are imported above

__all__ = ["FastSNNError", "IFNeuron", "QuantReLU", "SpikingNetwork", "convert", "finetune", "quantize"]
__version__ = "0.1.0"


def __getattr__(name: str):
    """``fastsnn.models``, ``fastsnn.analysis`` and ``fastsnn.tasks``, imported when first asked for."""
    if name in _LAZY_SUBPACKAGES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    """The module's names and the lazily imported subpackages (for completion in a shell or notebook)."""
    return sorted({*globals(), *_LAZY_SUBPACKAGES})
