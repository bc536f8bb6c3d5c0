"""The options of integerizing a spiking network, declared once (``fastsnn export`` derives its options from them)."""

import dataclasses

from ..options import Options, option


@dataclasses.dataclass(frozen=True)
class IntegerConfig(Options):
    """How :func:`fastsnn.integer.integerize` rounds: bits of the weights and of the quantized image."""

    weight_bits: int = option(8, "bits of every integer weight (signed, per output channel)", low=2, high=16)
    input_bits: int = option(12, "bits of the quantized input image (signed)", low=2, high=16)
