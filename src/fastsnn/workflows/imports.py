"""``fastsnn import``: a bare state dict from elsewhere into a checked fastsnn checkpoint."""

from pathlib import Path

from ..data import dataset_info
from .checkpoint import Checkpoint, ModelSpec, import_weights, save_checkpoint


def import_checkpoint(
    weights: str | Path,
    out: str | Path,
    *,
    model: str,
    dataset: str,
    bits: int | None = None,
    weight_bits: int | None = None,
    width: float = 1.0,
    stem: str = "cifar",
    allow_pickle: bool = False,
) -> Checkpoint:
    """Check ``weights`` tensor by tensor against registry model ``model`` (channels and classes of
    ``dataset``; a QANN if ``bits``) and write it as a fastsnn checkpoint to ``out``."""
    info = dataset_info(dataset)
    spec = ModelSpec(model, info.num_classes, info.in_channels, {"width": width, "stem": stem}, bits, weight_bits)
    checkpoint = import_weights(weights, spec, allow_pickle=allow_pickle)
    save_checkpoint(out, checkpoint.build_model(), spec, training={"dataset": dataset, "imported_from": str(weights)})
    return checkpoint
