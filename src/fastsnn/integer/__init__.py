"""The integer spiking network: folded, integer, exact; its file format and a pure-NumPy reference simulator.

``integerize(snn, weight_bits)`` makes an :class:`IntegerNetwork`; ``save`` / ``load`` write and read it as
safetensors with its graph in the metadata; :mod:`fastsnn.integer.reference` (NumPy only, no torch) states the
format and every op, reads a file and simulates it bit for bit.
"""

from .config import IntegerConfig
from .file import SUFFIX, is_integer_file, load, save
from .integerize import integerize
from .network import IntegerNetwork

__all__ = ["SUFFIX", "IntegerConfig", "IntegerNetwork", "integerize", "is_integer_file", "load", "save"]
