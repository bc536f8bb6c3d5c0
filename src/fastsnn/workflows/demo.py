"""``fastsnn demo``: the main job, end to end on real data: train, convert, fine-tune, evaluate, compare."""

import dataclasses
from pathlib import Path
from typing import Literal

from ..analysis import format_results
from ..atomic_file import write_json
from ..data import fetch_dataset
from ..finetune import FinetuneConfig
from ..options import Options, option
from ..quant import levels
from .data_config import DataConfig, TuningSplit
from .evaluate import EvaluateConfig, evaluate_checkpoints
from .finetune import FINETUNE_DATA, finetune_checkpoint, format_reports
from .train import TrainConfig, train_progressive

DEMO_RATE_NORM = (100.0, 99.9)  # the classic baselines the demo compares against, at T and 16·T


@dataclasses.dataclass(frozen=True)
class Demo:
    """The settings of one task's demo: TrainConfig fields (the rest are TrainConfig's defaults) and fine-tuning."""

    training: dict
    finetune: FinetuneConfig
    held_out: int
    eval_batch: int  # test images per simulated batch: T·B images go through each layer at once

    def config(self) -> TrainConfig:
        return TrainConfig(**self.training)


DemoTask = Literal["classification", "segmentation", "detection"]


@dataclasses.dataclass(frozen=True)
class DemoConfig(Options):
    """Which demo runs, and the fine-tuning settings that override its task's."""

    task: DemoTask = option(
        "classification",
        "classification: VGG-11 on MNIST; segmentation: DeepLab-VGG9 on Fashion-MNIST scenes; detection: "
        "Tiny-YOLOv2 on Fashion-MNIST scenes (training options default to the task's settings)",
    )
    finetune_steps: int | None = option(None, "fine-tuning steps per spiking layer (default: the task's)", low=0)
    end_to_end_steps: int | None = option(None, "end-to-end fine-tuning steps (default: the task's)", low=0)
    held_out: int | None = option(
        None, "last N training images that decide keep/revert (default: the task's)", low=1, metavar="N"
    )

    def finetuning(self, default: FinetuneConfig) -> FinetuneConfig:
        """The task's fine-tuning settings with the step counts given here."""
        steps = {"steps_per_layer": self.finetune_steps, "end_to_end_steps": self.end_to_end_steps}
        return dataclasses.replace(default, **{name: value for name, value in steps.items() if value is not None})


# Sized for 2 CPU cores: classification ~11 min, segmentation and detection <= 15 min from a fresh venv.
DEMOS: dict[str, Demo] = {
    "classification": Demo(
        {"model": "vgg11", "dataset": "mnist", "bits": 2, "float_epochs": 3, "epochs": 1, "final_epochs": 3,
         "out_dir": "runs/demo"},
        FinetuneConfig(),
        held_out=5000,
        eval_batch=500,
    ),
    "segmentation": Demo(
        {"model": "deeplab_vgg9", "dataset": "fashion-scenes", "bits": 2, "width": 0.25, "float_epochs": 2,
         "epochs": 1, "final_epochs": 1, "batch_size": 32, "test_limit": 500, "out_dir": "runs/demo-segmentation"},
        FinetuneConfig(steps_per_layer=30, end_to_end_steps=50),
        held_out=250,
        eval_batch=25,
    ),
    "detection": Demo(
        {"model": "tiny_yolov2", "dataset": "fashion-scenes-det", "bits": 2, "width": 0.25, "float_epochs": 8,
         "epochs": 1, "final_epochs": 8, "batch_size": 32, "test_limit": 500, "out_dir": "runs/demo-detection"},
        FinetuneConfig(),
        held_out=500,
        eval_batch=25,
    ),
}  # fmt: skip


def run_demo(training: TrainConfig, demo: DemoConfig = DemoConfig(), *, json: str | Path | None = None) -> dict:
    """Train ``training``'s progressive stages, fine-tune the last stage's signed SNN, and evaluate float
    ANN, QANN, SNNs and rate-norm baselines (max and 99.9 %, at T and 16·T) on the test split.

    ``training`` is usually ``DEMOS[demo.task].config()`` with the user's changes. Prints each step's
    report and the results table; writes the results to ``json`` (default ``<out_dir>/results.json``)
    and returns them.
    """
    settings = DEMOS[demo.task]
    training.check_paths()
    print(fetch_dataset(training.dataset, root=training.data_root))
    paths = train_progressive(training)
    final = list(paths.values())[-1]  # the last stage trained: the target bit width
    tuned = Path(training.out_dir) / f"{final.stem}-snn-finetuned.safetensors"
    reports = finetune_checkpoint(
        final,
        tuned,
        config=demo.finetuning(settings.finetune),
        data=dataclasses.replace(FINETUNE_DATA, data_root=training.data_root),
        split=TuningSplit(held_out=demo.held_out or settings.held_out),
        progress=training.progress,
    )
    print(format_reports(reports))
    T = levels(training.bits)
    results = evaluate_checkpoints(
        [final, paths["float"], tuned],
        config=EvaluateConfig(rate_norm=DEMO_RATE_NORM, rate_norm_time_steps=(T, 16 * T)),
        data=DataConfig(data_root=training.data_root, limit=training.test_limit, batch_size=settings.eval_batch),
        progress=training.progress,
    )
    print(format_results(results))
    print(f"results written to {write_json(json or Path(training.out_dir) / 'results.json', results)}")
    return results
