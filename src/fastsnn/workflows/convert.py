"""``fastsnn convert``: a QANN checkpoint into a spiking-network checkpoint."""

import dataclasses
from pathlib import Path

from ..convert import SpikingNetwork, convert
from .checkpoint import save_checkpoint
from .sources import load_qann


def convert_checkpoint(
    path: str | Path, out: str | Path, *, T: int | None = None, signed: bool = True
) -> SpikingNetwork:
    """Convert the QANN at ``path`` (T default 2^bits − 1) and save the SNN, with its settings, to ``out``."""
    checkpoint, qann = load_qann(path)
    snn = convert(qann, signed=signed, T=T)
    spec = dataclasses.replace(checkpoint.spec, snn={"T": snn.T, "signed": signed})
    save_checkpoint(
        out, snn, spec, training={"dataset": checkpoint.training.get("dataset"), "converted_from": str(path)}
    )
    return snn
