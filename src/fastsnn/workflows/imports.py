"""``fastsnn import``: a bare state dict from elsewhere into a checked fastsnn checkpoint."""

from pathlib import Path

from .checkpoint import Checkpoint, import_weights, save_checkpoint
from .train import TrainConfig

IMPORTED = TrainConfig(bits=None, width=1.0)  # the defaults of an imported model: a float ANN at full width


def import_checkpoint(
    weights: str | Path, out: str | Path, model: TrainConfig = IMPORTED, *, allow_pickle: bool = False
) -> Checkpoint:
    """Check ``weights`` tensor by tensor against the model ``model`` describes (registry name and options,
    channels and classes of its data set; a QANN if ``model.bits``) and write it as a fastsnn checkpoint
    to ``out``."""
    spec = model.spec().with_bits(model.bits)
    checkpoint = import_weights(weights, spec, allow_pickle=allow_pickle)
    training = {"dataset": model.dataset, "imported_from": str(weights)}
    save_checkpoint(out, checkpoint.build_model(), spec, training=training)
    return checkpoint
