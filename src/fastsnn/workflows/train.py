"""Training of float and quantized ANNs, with the progressive bit-width schedule float → 4 → 3 → 2.

Single process, or DDP when started by ``torchrun`` (see :mod:`fastsnn.distributed`). Every epoch
ends, and every ``checkpoint_every`` steps / ``checkpoint_seconds`` within an epoch, with an atomic
safetensors checkpoint holding the model, optimizer, scheduler, RNG state and the position in the
epoch, so running the same command again after a crash (even SIGKILL) resumes where it stopped and
ends with the same weights, to the last bit, as an uninterrupted run. Ctrl-C finishes the current
step, saves, and raises :class:`TrainingInterrupted`.
"""

import dataclasses
import math
import time
from pathlib import Path

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset, DistributedSampler
from tqdm import tqdm

from ..analysis import measure
from ..data import dataset_info, list_datasets, load_dataset
from ..errors import FastSNNError, TrainingInterrupted
from ..models import list_models, model_options
from ..models._layers import MAX_WIDTH, STEMS
from ..quant import MAX_BITS, MAX_WEIGHT_BITS, MIN_BITS, MIN_WEIGHT_BITS, quantize, relu_percentiles
from . import distributed
from .checkpoint import ModelSpec, load_checkpoint, restore_optimizer, save_checkpoint
from .interrupt import stop_requests
from .sources import calibration_batches, dataset_anchors, first
from .validation import check_choice, check_float, check_folder, check_int, check_writable

CALIBRATION_BATCHES = 8  # batches of training images used to set the first quantized stage's clips


@dataclasses.dataclass
class TrainConfig:
    """Everything a training run depends on; the CLI fills it from its options."""

    model: str = "vgg11"
    dataset: str = "mnist"
    bits: int | None = 2  # final activation bits; None trains the float ANN only
    width: float = 0.25
    stem: str = "cifar"
    weight_bits: int | None = None
    float_epochs: int = 2
    epochs: int = 2  # per intermediate quantized stage
    final_epochs: int | None = None  # for the last stage (the target bits); None = epochs
    progressive: bool = True  # float → 4 → 3 → 2, each stage initialised from the previous one
    batch_size: int = 128
    lr: float = 0.05
    quant_lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 5e-4
    max_grad_norm: float | None = 10.0  # gradients rescaled to at most this norm (YOLO losses spike early on)
    calibration_percentile: float = 99.9
    seed: int = 0
    data_root: str | None = None
    out_dir: str = "runs/train"
    train_limit: int | None = None  # use only the first N training images (quick runs, tests)
    test_limit: int | None = None
    checkpoint_every: int | None = None  # also checkpoint every N steps within an epoch
    checkpoint_seconds: float | None = 300.0  # and after a step once this much time passed since the last save
    progress: bool = True
    # detection models: anchors (w, h) in grid cells; None = k-means of the training boxes (VOC: its published ones)
    anchors: tuple[tuple[float, float], ...] | None = None

    def validate(self) -> "TrainConfig":
        """Check every field up front; raises :class:`FastSNNError` naming the field (and its CLI option)."""
        check_choice("model (--model)", self.model, list_models())
        check_choice("dataset (--dataset)", self.dataset, list_datasets())
        self.spec().check_dataset(self.dataset)  # the model's task is the data set's
        if self.stem != TrainConfig.stem and "stem" not in (model_options(self.model) or {"stem"}):
            raise FastSNNError(f"--stem: model {self.model} has no stem option")
        check_int("bits (--bits)", self.bits, MIN_BITS, MAX_BITS, optional=True)
        check_float("width (--width)", self.width, 0, MAX_WIDTH)
        check_choice("stem (--stem)", self.stem, list(STEMS))
        check_int("weight_bits (--weight-bits)", self.weight_bits, MIN_WEIGHT_BITS, MAX_WEIGHT_BITS, optional=True)
        check_int("float_epochs (--float-epochs)", self.float_epochs, 0)
        check_int("epochs (--epochs)", self.epochs, 0)
        check_int("final_epochs (--final-epochs)", self.final_epochs, 0, optional=True)
        check_int("batch_size (--batch-size)", self.batch_size, 1)
        check_float("lr (--lr)", self.lr, 0, math.inf, high_open=True)
        check_float("quant_lr (--quant-lr)", self.quant_lr, 0, math.inf, high_open=True)
        check_float("momentum", self.momentum, 0, 1, low_open=False, high_open=True)
        check_float("weight_decay", self.weight_decay, 0, math.inf, low_open=False, high_open=True)
        check_float("max_grad_norm", self.max_grad_norm, 0, math.inf, high_open=True, optional=True)
        check_float("calibration_percentile", self.calibration_percentile, 0, 100)
        check_int("seed (--seed)", self.seed, 0, 2**32 - 1)
        check_int("train_limit (--train-limit)", self.train_limit, 1, optional=True)
        check_int("test_limit (--test-limit)", self.test_limit, 1, optional=True)
        check_int("checkpoint_every (--checkpoint-every)", self.checkpoint_every, 1, optional=True)
        check_float(
            "checkpoint_seconds (--checkpoint-seconds)",
            self.checkpoint_seconds,
            0,
            math.inf,
            high_open=True,
            optional=True,
        )
        if self.data_root is not None:
            check_folder("data root (--data-root)", self.data_root)
        check_writable("output folder (--out)", self.out_dir, folder=True)
        return self

    def stages(self) -> list[int | None]:
        """Bit widths trained in order; None is the float stage."""
        if self.bits is None:
            return [None]
        if not self.progressive:
            return [None, self.bits]
        return [None] + [b for b in (4, 3, 2) if b > self.bits] + [self.bits]

    def spec(self) -> ModelSpec:
        info = dataset_info(self.dataset)
        options = {"width": self.width, "stem": self.stem}
        if self.anchors is not None:
            options["anchors"] = [[float(w), float(h)] for w, h in self.anchors]  # as JSON reads them back
        accepted = model_options(self.model)
        return ModelSpec(
            name=self.model,
            num_classes=info.num_classes,
            in_channels=info.in_channels,
            options={key: value for key, value in options.items() if accepted is None or key in accepted},
            weight_bits=self.weight_bits,
        )


def stage_name(bits: int | None) -> str:
    """``"float"`` or ``"q<bits>"``: a stage's key in results and its checkpoint's file stem."""
    return "float" if bits is None else f"q{bits}"


def stage_checkpoint(out_dir: str | Path, bits: int | None) -> Path:
    """Where a stage's checkpoint lives: ``float.safetensors`` or ``q<bits>.safetensors``."""
    return Path(out_dir) / f"{stage_name(bits)}.safetensors"


def train_progressive(config: TrainConfig) -> dict[str, Path]:
    """Train every stage of ``config.stages()``; returns ``{"float": path, "q4": path, ...}`` in stage order.

    A stage whose checkpoint is complete is skipped; an incomplete one is resumed. ``config`` is
    validated first, so a bad value fails before any data is read or file written.
    """
    config.validate()
    device = distributed.init_from_environment()
    train_set, test_set = _datasets(config)
    if config.anchors is None and "anchors" in config.spec().task.model_options:
        anchors = dataset_anchors(config.dataset, config.data_root, limit=min(config.train_limit or 5000, 5000))
        config = dataclasses.replace(config, anchors=anchors)
        if config.progress and distributed.rank() == 0:
            tqdm.write(f"anchors (w, h in 32-pixel cells): {config.anchors}")
    spec = config.spec()
    paths: dict[str, Path] = {}
    model: nn.Module | None = None
    for index, bits in enumerate(config.stages()):
        path = stage_checkpoint(config.out_dir, bits)
        stage_spec = spec.with_bits(bits)
        if index == 0:
            torch.manual_seed(config.seed)
            start = stage_spec.build()
        elif config.stages()[index - 1] is None:  # float -> first quantized stage: clips from statistics
            start = quantize(model, bits, alpha=_calibrate(model, train_set, config), weight_bits=config.weight_bits)
        else:
            start = quantize(model, bits)
        model = fit(
            start,
            stage_spec,
            train_set,
            test_set,
            epochs=_stage_epochs(config, index),
            lr=config.lr if bits is None else config.quant_lr,
            checkpoint_path=path,
            config=config,
            device=device,
        )
        paths[stage_name(bits)] = path
    return paths


def fit(
    model: nn.Module,
    spec: ModelSpec,
    train_set: Dataset,
    test_set: Dataset,
    *,
    epochs: int,
    lr: float,
    checkpoint_path: Path,
    config: TrainConfig,
    device: torch.device | str = "cpu",
) -> nn.Module:
    """Train ``model`` for ``epochs`` (SGD, cosine schedule per step), checkpointing each epoch and within it.

    If ``checkpoint_path`` holds a checkpoint of the same spec, training resumes from it, at the
    step where it stopped (and returns at once when it is complete).

    Raises:
        FastSNNError: the loss became NaN or infinite (nothing is saved: the last checkpoint is the last good state).
        TrainingInterrupted: Ctrl-C; a checkpoint of the current position was saved first.
    """
    model = model.to(device)
    optimizer = torch.optim.SGD(
        model.parameters(), lr=lr, momentum=config.momentum, weight_decay=config.weight_decay, nesterov=True
    )
    steps_per_epoch = len(_train_loader(train_set, config, epoch=0))
    total_steps = max(1, epochs * steps_per_epoch)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: 0.5 * (1 + math.cos(math.pi * step / total_steps))
    )
    start_epoch, start_step, running, history = 0, 0, 0.0, []
    if checkpoint_path.exists():
        checkpoint = load_checkpoint(checkpoint_path)
        if checkpoint.spec != spec:
            raise FastSNNError(
                f"{checkpoint_path} holds a different model ({checkpoint.spec}); use another --out folder or remove it"
            )
        model.load_state_dict({k: v.to(device) for k, v in checkpoint.model_state.items()})
        restore_optimizer(optimizer, checkpoint)
        scheduler.load_state_dict(checkpoint.training["scheduler"])
        if checkpoint.rng_state is not None:
            torch.set_rng_state(checkpoint.rng_state)
        position = checkpoint.training
        start_epoch, start_step, history = position["epoch"], position.get("step", 0), position["history"]
        running = position.get("running_loss", 0.0)

    def save(epoch: int, step: int, running: float) -> None:
        """Checkpoint after ``step`` steps of epoch ``epoch`` (0-based; step 0 = before the epoch)."""
        if distributed.rank() == 0:
            save_checkpoint(
                checkpoint_path,
                model,
                spec,
                optimizer=optimizer,
                save_rng=True,
                training={
                    "dataset": config.dataset,
                    "epoch": epoch,
                    "step": step,
                    "running_loss": running,
                    "epochs": epochs,
                    "history": history,
                    "scheduler": scheduler.state_dict(),
                },
            )

    trained = DistributedDataParallel(model) if distributed.is_distributed() else model
    task = spec.task
    with stop_requests(enabled=not distributed.is_distributed()) as stop_requested:
        for epoch in range(start_epoch, epochs):
            trained.train()
            skip = start_step if epoch == start_epoch else 0
            running = running if epoch == start_epoch else 0.0
            loader = _train_loader(train_set, config, epoch, skip_batches=skip)
            where = f"{checkpoint_path.stem} epoch {epoch + 1}/{epochs}"
            bar = tqdm(
                loader,
                desc=where,
                initial=skip,
                total=steps_per_epoch,
                disable=not config.progress or distributed.rank() != 0,
                leave=False,
            )
            last_save = time.monotonic()
            for step, (images, labels) in enumerate(bar, start=skip):
                loss = task.loss(trained(images.to(device)), labels.to(device))
                if not torch.isfinite(loss):
                    raise FastSNNError(
                        f"loss became {loss.item()} in {where} step {step + 1}; stopped without saving, so "
                        f"{checkpoint_path} keeps the last good state; lower the learning rate"
                    )
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if config.max_grad_norm is not None:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), config.max_grad_norm)
                optimizer.step()
                scheduler.step()
                running += (loss.item() - running) / (step + 1)
                bar.set_postfix(loss=f"{running:.4f}")
                if stop_requested():
                    save(epoch, step + 1, running)
                    raise TrainingInterrupted(
                        f"interrupted; saved {checkpoint_path} after step {step + 1}/{steps_per_epoch} of {where}; "
                        "run the same command again to resume"
                    )
                if step + 1 < steps_per_epoch and _checkpoint_due(config, step + 1, last_save):
                    save(epoch, step + 1, running)
                    last_save = time.monotonic()
            test = measure(model, _eval_loader(test_set, config), task)
            history.append({"epoch": epoch + 1, "train_loss": running} | {_history_key(m): v for m, v in test.items()})
            if config.progress and distributed.rank() == 0:
                figures = ", ".join(f"test {metric} {100 * value:.2f}%" for metric, value in test.items())
                tqdm.write(f"{where}: loss {running:.4f}, {figures}")
            save(epoch + 1, 0, 0.0)
            distributed.barrier()
    return model.cpu()


def _history_key(metric: str) -> str:
    """``"test_accuracy"``, ``"test_mIoU"``, ``"test_pixel_accuracy"``: a metric's key in the training history."""
    return "test_" + metric.replace(" ", "_")


def _checkpoint_due(config: TrainConfig, steps_done: int, last_save: float) -> bool:
    """Whether a mid-epoch checkpoint is due after ``steps_done`` steps of the epoch."""
    by_steps = config.checkpoint_every is not None and steps_done % config.checkpoint_every == 0
    by_time = config.checkpoint_seconds is not None and time.monotonic() - last_save >= config.checkpoint_seconds
    return by_steps or by_time


def _stage_epochs(config: TrainConfig, index: int) -> int:
    if config.stages()[index] is None:
        return config.float_epochs
    is_last = index == len(config.stages()) - 1
    return config.final_epochs if is_last and config.final_epochs is not None else config.epochs


def _datasets(config: TrainConfig) -> tuple[Dataset, Dataset]:
    train_set = load_dataset(config.dataset, train=True, root=config.data_root, augment=True)
    test_set = load_dataset(config.dataset, train=False, root=config.data_root)
    return first(train_set, config.train_limit), first(test_set, config.test_limit)


def _train_loader(train_set: Dataset, config: TrainConfig, epoch: int, skip_batches: int = 0) -> DataLoader:
    """Shuffled batches whose order depends only on (seed, epoch), less the first ``skip_batches``.

    So a resumed run sees exactly the batches an uninterrupted one would. The loader has its own
    generator, so iterating it draws nothing from the global RNG (which augmentation uses).
    """
    if distributed.is_distributed():
        sampler = DistributedSampler(train_set, shuffle=True, seed=config.seed, drop_last=True)
        sampler.set_epoch(epoch)
        order = list(sampler)
    else:
        order = torch.randperm(
            len(train_set), generator=torch.Generator().manual_seed(config.seed * 100_003 + epoch)
        ).tolist()
    return DataLoader(
        train_set,
        batch_size=config.batch_size,
        sampler=order[skip_batches * config.batch_size :],
        drop_last=len(train_set) > config.batch_size,
        generator=torch.Generator().manual_seed(config.seed),
    )


def _eval_loader(test_set: Dataset, config: TrainConfig) -> DataLoader:
    return DataLoader(test_set, batch_size=max(config.batch_size, 256))


def _calibrate(model: nn.Module, train_set: Dataset, config: TrainConfig) -> dict[str, float]:
    """Initial clips: a high percentile of each float ReLU's output on a few training batches."""
    batches = calibration_batches(
        train_set, batches=CALIBRATION_BATCHES, batch_size=config.batch_size, seed=config.seed
    )
    return relu_percentiles(model, batches, config.calibration_percentile)
