"""The options of a conversion, declared once (the CLI and SNN checkpoints derive from them)."""

import dataclasses

from ..options import Options, option


@dataclasses.dataclass(frozen=True)
class SimulationConfig(Options):
    """How a QANN is converted into a spiking network: :func:`fastsnn.convert`'s ``T`` and ``signed``."""

    time_steps: int | None = option(None, "time steps (default 2^bits - 1)", low=1, flags=("-T", "--time-steps"))
    signed: bool = option(
        True, "signed IF neurons, which take back spikes (off: plain IF neurons)", flags=("--unsigned",)
    )
