"""What benchmarks/accuracy.py measures, as data: per task the (data set, model) entries with their training
and evaluation settings, the ablation variants (TrainConfig and FinetuneConfig overrides), and the aims.

Training settings are ``TrainConfig`` overrides (dicts, so fields added to ``TrainConfig`` work without code
changes); fine-tuning is ``FinetuneConfig()`` with a variant's overrides. The epochs per stage of each task are
one dict below: tune them there.
"""

import dataclasses
from pathlib import Path

RESULTS = Path(__file__).parent / "results"
TASKS = ("classification", "segmentation", "detection")

# Epochs per stage (float; the 4- and 3-bit stages; the last, 2-bit stage), one dict per task.
CLASSIFICATION_EPOCHS = {"float_epochs": 8, "epochs": 1, "final_epochs": 3}
SEGMENTATION_EPOCHS = {"float_epochs": 6, "epochs": 2, "final_epochs": 8}  # the demo's (2, 1, 1) lost 9.3 points
# the detection demo's (8, 1, 1) lost 13.7 mAP points, mostly in the 2-bit QANN (34.6 vs float 47.1), whose
# test mAP still rose until the 9th epoch of its stage: (8, 4, 12) gave QANN 41.8, fine-tuned SNN 43.5
DETECTION_EPOCHS = {"float_epochs": 8, "epochs": 4, "final_epochs": 12}
TREES_EPOCHS = {"float_epochs": 250, "epochs": 50, "final_epochs": 50}  # ~40 training tiles: fidelity_detection_trees


@dataclasses.dataclass(frozen=True)
class Entry:
    """One (data set, model) of a task and how it is trained, fine-tuned and tested.

    ``training``: TrainConfig overrides besides model, data set, width and bits (always 2: the progressive
    run float → 4 → 3 → 2 gives the QANNs of T = 15, 7, 3). ``tuning_batch`` and ``held_out``: the
    fine-tuning batch and held-out images (``fastsnn finetune --batch-size --held-out``). ``test_limit``: the
    first N test images (None: all), also the per-epoch test of training. ``eval_batch``: test images per
    simulated batch (T·B images pass each layer at once).
    """

    dataset: str
    model: str
    width: float
    training: dict
    test_limit: int | None
    eval_batch: int
    tuning_batch: int = 64  # fastsnn finetune's default
    held_out: int = 5000  # fastsnn finetune's default
    time_steps: tuple[int, ...] = (3,)
    all_time_steps: tuple[int, ...] = (3, 7, 15)  # with --all-T


PRESETS: dict[str, tuple[Entry, ...]] = {
    "classification": tuple(
        Entry(dataset, model, width, CLASSIFICATION_EPOCHS, test_limit=None, eval_batch=500)
        for model, width in (("vgg11", 0.25), ("resnet8", 1.0))
        for dataset in ("mnist", "fashion-mnist")
    ),
    "segmentation": (
        Entry(
            "fashion-scenes", "deeplab_vgg9", 0.25, SEGMENTATION_EPOCHS | {"batch_size": 32},
            test_limit=500, eval_batch=25, held_out=250,
        ),
    ),
    "detection": (
        Entry(
            "fashion-scenes-det", "tiny_yolov2", 0.25, DETECTION_EPOCHS | {"batch_size": 32},
            test_limit=500, eval_batch=25, held_out=500,
        ),
        Entry(
            "trees", "tiny_yolov2", 0.25, TREES_EPOCHS | {"batch_size": 16},
            test_limit=None, eval_batch=24, tuning_batch=8, held_out=16,
        ),
    ),
}  # fmt: skip


@dataclasses.dataclass(frozen=True)
class Variant:
    """One row variant: TrainConfig overrides (a variant with some trains in its own run folder) and
    FinetuneConfig overrides, on top of the entry's settings and the defaults."""

    training: dict
    finetune: dict


DEFAULT = "default"  # what `fastsnn train` (with the entry's settings) and `fastsnn finetune` give
VARIANTS = {
    DEFAULT: Variant({}, {}),
    "no distillation": Variant({"distill": 0.0}, {}),
    "no end-to-end": Variant({}, {"end_to_end_steps": 0}),
    "no layer-wise": Variant({}, {"steps_per_layer": 0}),
    "no calibration": Variant({}, {"calibrate": False}),
    "MSE criterion": Variant({}, {"criterion": "mse"}),
}  # "no fine-tuning" is every row's snn_signed column


@dataclasses.dataclass(frozen=True)
class Aim:
    """The issue's aim for a task, in percentage points of the headline metric: the fine-tuned SNN at most
    ``float_gap`` below the float ANN and, if set, at most ``qann_gap`` below the QANN."""

    float_gap: float
    qann_gap: float | None = None


AIMS = {"classification": Aim(float_gap=1.0, qann_gap=0.1), "segmentation": Aim(2.0), "detection": Aim(2.0)}
