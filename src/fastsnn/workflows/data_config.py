"""Which data a checkpoint-level command reads, declared once for evaluate, finetune and analyze."""

import dataclasses

from ..options import Options, option


@dataclasses.dataclass(frozen=True)
class DataConfig(Options):
    """The data set split a command runs on, and how it is batched. Each command has its own defaults
    (an instance of this class), e.g. larger batches for evaluation than for fine-tuning."""

    dataset: str | None = option(None, "data set (default: the one the checkpoint was trained on)")
    data_root: str | None = option(None, "data folder (default $FASTSNN_DATA or ~/.cache/fastsnn)")
    batch_size: int = option(64, "images per batch (an SNN simulates T times as many at once)", low=1)
    limit: int | None = option(None, "use only the first N images of the split", low=1, metavar="N")


@dataclasses.dataclass(frozen=True)
class TuningSplit(Options):
    """How fine-tuning splits the training images: the last ``held_out`` decide keep/revert, the others
    tune, shuffled with ``seed``. The test split is never used."""

    held_out: int = option(
        5000,
        "last N training images that decide whether a correction is kept (enough for the sign test to see a "
        "correction that changes a few predictions in a thousand)",
        low=1,
        metavar="N",
    )
    seed: int = option(0, "seed of the tuning batches' order", low=0, high=2**32 - 1)
