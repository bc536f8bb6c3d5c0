"""``fastsnn demo``: the main job, end to end on real data: train, convert, fine-tune, evaluate, compare."""

import dataclasses
from pathlib import Path

from ..analysis import format_results
from ..data import fetch_dataset
from ..quant import levels
from .atomic import write_json
from .evaluate import evaluate_checkpoint
from .finetune import finetune_checkpoint, format_reports
from .train import TrainConfig, train_progressive

DEMO_RATE_NORM = [100.0, 99.9]  # the classic baselines the demo compares against, at T and 16·T


@dataclasses.dataclass(frozen=True)
class Demo:
    """The settings of one task's demo: TrainConfig fields (the rest are TrainConfig's defaults) and fine-tuning."""

    training: dict
    finetune_steps: int
    held_out: int
    eval_batch: int  # test images per simulated batch: T·B images go through each layer at once

    def config(self) -> TrainConfig:
        return TrainConfig(**self.training)


# Sized for 2 CPU cores: classification ~11 min, segmentation and detection <= 15 min from a fresh venv.
DEMOS = {
    "classification": Demo(
        {"model": "vgg11", "dataset": "mnist", "bits": 2, "float_epochs": 3, "epochs": 1, "final_epochs": 3,
         "out_dir": "runs/demo"},
        finetune_steps=100,
        held_out=1000,
        eval_batch=500,
    ),
    "segmentation": Demo(
        {"model": "deeplab_vgg9", "dataset": "fashion-scenes", "bits": 2, "width": 0.25, "float_epochs": 2,
         "epochs": 1, "final_epochs": 1, "batch_size": 32, "test_limit": 500, "out_dir": "runs/demo-segmentation"},
        finetune_steps=30,
        held_out=250,
        eval_batch=25,
    ),
    "detection": Demo(
        {"model": "tiny_yolov2", "dataset": "fashion-scenes-det", "bits": 2, "width": 0.25, "float_epochs": 8,
         "epochs": 1, "final_epochs": 1, "batch_size": 32, "test_limit": 500, "out_dir": "runs/demo-detection"},
        finetune_steps=100,
        held_out=500,
        eval_batch=25,
    ),
}  # fmt: skip


def run_demo(
    config: TrainConfig,
    *,
    finetune_steps: int = 100,
    held_out: int = 1000,
    eval_batch: int = 500,
    json: str | Path | None = None,
) -> dict:
    """Train ``config``'s progressive stages, fine-tune the last stage's signed SNN, and evaluate float
    ANN, QANN, SNNs and rate-norm baselines (max and 99.9 %, at T and 16·T) on the test split.

    Prints each step's report and the results table; writes the results to ``json`` (default
    ``<out_dir>/results.json``) and returns them.
    """
    config.validate()
    print(fetch_dataset(config.dataset, root=config.data_root))
    paths = train_progressive(config)
    final = list(paths.values())[-1]  # the last stage trained: the target bit width
    tuned = Path(config.out_dir) / f"{final.stem}-snn-finetuned.safetensors"
    reports = finetune_checkpoint(
        final,
        tuned,
        steps_per_layer=finetune_steps,
        held_out=held_out,
        data_root=config.data_root,
        progress=config.progress,
    )
    print(format_reports(reports))
    T = levels(config.bits)
    results = evaluate_checkpoint(
        final,
        float_checkpoint=paths["float"],
        finetuned=[tuned],
        rate_norm=DEMO_RATE_NORM,
        rate_norm_time_steps=[T, 16 * T],
        data_root=config.data_root,
        limit=config.test_limit,
        batch_size=eval_batch,
        progress=config.progress,
    )
    print(format_results(results))
    print(f"results written to {write_json(json or Path(config.out_dir) / 'results.json', results)}")
    return results
