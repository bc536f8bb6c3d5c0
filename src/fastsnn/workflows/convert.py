"""``fastsnn convert``: a QANN checkpoint into a spiking-network checkpoint that carries its QANN."""

from pathlib import Path

from ..convert import SimulationConfig, SpikingNetwork
from ..errors import CheckpointError
from .sources import save_spiking, spiking_pair


def convert_checkpoint(
    path: str | Path, out: str | Path, simulation: SimulationConfig = SimulationConfig()
) -> SpikingNetwork:
    """Convert the QANN at ``path`` with ``simulation`` and save the SNN, with the QANN, to ``out``."""
    checkpoint, snn, qann = spiking_pair(path, simulation)
    if checkpoint.spec.snn is not None:
        raise CheckpointError(f"{path} already holds a spiking network; pass the QANN checkpoint it came from")
    save_spiking(out, snn, qann, checkpoint, path)
    return snn
