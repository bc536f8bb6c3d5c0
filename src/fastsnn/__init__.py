"""fastsnn: fast spiking neural networks by converting quantized ANNs (Fast-SNN, Hu et al., TPAMI 2023).

The library (``quantize``, ``convert``, ``finetune``, ``analysis``, ``models``, ``neuron``) imports
neither the data layer nor torchvision; whole runs on files live in :mod:`fastsnn.workflows`.
"""

from .convert import SpikingNetwork, convert
from .errors import FastSNNError
from .finetune import finetune
from .neuron import IFNeuron
from .quant import QuantReLU, quantize

__all__ = ["FastSNNError", "IFNeuron", "QuantReLU", "SpikingNetwork", "convert", "finetune", "quantize"]
__version__ = "0.1.0"
