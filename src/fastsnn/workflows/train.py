"""Training of float and quantized ANNs, with the progressive bit-width schedule float → 4 → 3 → 2.

Every quantized stage also distills from the frozen float network (this run's trained float stage, or checkpoint
``teacher``): loss ``(1 - distill) · task loss + distill ·`` :meth:`fastsnn.tasks.Task.distillation_loss`.

Single process, or DDP when started by ``torchrun`` (see :mod:`fastsnn.workflows.distributed`). Every epoch
ends, and every ``checkpoint_every`` steps / ``checkpoint_seconds`` within an epoch, with an atomic
safetensors checkpoint holding the model, optimizer, scheduler, RNG state and the position in the
epoch, so running the same command again after a crash (even SIGKILL) resumes where it stopped and
ends with the same weights, to the last bit, as an uninterrupted run. Ctrl-C finishes the current
step, saves, and raises :class:`TrainingInterrupted`.
"""

import copy
import dataclasses
import math
import time
from pathlib import Path

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from ..analysis import measure
from ..data import dataset_info, load_dataset
from ..errors import DataError, FastSNNError, OptionError, TrainingInterrupted
from ..models import model_options, model_task
from ..models._layers import MAX_WIDTH, Stem
from ..options import Options, option
from ..progress import tqdm
from ..quant import MAX_BITS, MAX_WEIGHT_BITS, MIN_BITS, MIN_WEIGHT_BITS, quantize, relu_percentiles
from . import distributed, validation
from .checkpoint import import_weights, load_checkpoint, restore_optimizer, save_checkpoint
from .interrupt import stop_requests
from .model_spec import ModelSpec
from .sources import calibration_batches, first
from .teacher import frozen, load_teacher

CALIBRATION_BATCHES = 8  # batches of training images used to set the first quantized stage's clips


def bits_or_float(text: str) -> int | None:
    """Activation bits as typed: an integer, or ``float`` (None: no quantized stage)."""
    return None if text == "float" else int(text)


@dataclasses.dataclass(frozen=True)
class TrainConfig(Options):
    """Everything a training run depends on, each option declared once (the CLI is generated from it)."""

    model: str = option("vgg11", "registry name (see fastsnn.models.list_models), torchvision:NAME or timm:NAME")
    dataset: str = option("mnist", "data set (see fastsnn.data.list_datasets) or folder:PATH (train/, val/)")
    bits: int | None = option(
        2, "final activation bits, T = 2^bits - 1 ('float': the float ANN only)", low=MIN_BITS, high=MAX_BITS,
        parse=bits_or_float,
    )  # fmt: skip
    width: float = option(0.25, "channel width multiplier", low=0, high=MAX_WIDTH, low_open=True)
    stem: Stem = option("cifar", "input stem: cifar (3x3, 28-32 px images) or imagenet (7x7, stride 4; zoo: as built)")
    weight_bits: int | None = option(
        None, "also quantize weights per channel to this many bits", low=MIN_WEIGHT_BITS, high=MAX_WEIGHT_BITS
    )
    float_epochs: int = option(2, "epochs of the float stage", low=0)
    epochs: int = option(2, "epochs per intermediate quantized stage", low=0)
    final_epochs: int | None = option(None, "epochs of the last stage (default: epochs)", low=0)
    progressive: bool = option(
        True, "float -> 4 -> 3 -> 2 bits, each stage from the previous (off: float straight to bits)",
        flags=("--no-progressive",),
    )  # fmt: skip
    batch_size: int = option(128, "training batch size", low=1)
    lr: float = option(0.05, "float-stage learning rate", low=0, low_open=True)
    quant_lr: float = option(0.01, "quantized-stage learning rate", low=0, low_open=True)
    momentum: float = option(0.9, "SGD (Nesterov) momentum", low=0, high=1, high_open=True)
    weight_decay: float = option(5e-4, "SGD weight decay", low=0)
    max_grad_norm: float | None = option(
        10.0, "gradients rescaled to at most this norm (YOLO losses spike early on)", low=0, low_open=True
    )
    calibration_percentile: float = option(
        99.9, "the first quantized stage's clips: this percentile of the float ReLU outputs", low=0, high=100,
        low_open=True,
    )  # fmt: skip
    distill: float = option(
        0.5, "weight w of distillation from the float network in every quantized stage (0: the task loss only)",
        low=0, high=1,
    )  # fmt: skip
    temperature: float = option(4.0, "distillation temperature", low=0, low_open=True)
    teacher: str | None = option(None, "float checkpoint to distill from (default: this run's float stage)")
    init: str | None = option(None, "float weights to start from: a safetensors state dict or fastsnn checkpoint")
    seed: int = option(0, "random seed", low=0, high=2**32 - 1)
    data_root: str | None = option(None, "data folder (default $FASTSNN_DATA or ~/.cache/fastsnn)")
    out_dir: str = option("runs/train", "folder for the stage checkpoints", flags=("--out",))
    train_limit: int | None = option(None, "train on the first N training images only", low=1)
    test_limit: int | None = option(None, "test on the first N test images only", low=1)
    checkpoint_every: int | None = option(
        None, "also checkpoint every STEPS steps within an epoch", low=1, metavar="STEPS"
    )
    checkpoint_seconds: float | None = option(
        300.0, "and after a step once S seconds passed since the last checkpoint", low=0, low_open=True, metavar="S"
    )
    progress: bool = option(True, "progress bars (off: none)", flags=("--quiet",))

    def check(self) -> None:
        """The model and data set are known and of one task; the stem is an option of the model."""
        model_task(self.model)  # OptionError naming the closest known model if it is not known
        try:
            dataset_info(self.dataset)  # a folder:PATH set is measured (and its layout checked) here
        except DataError as error:
            raise OptionError("dataset", str(error)) from None
        self.spec().check_dataset(self.dataset)  # the model's task is the data set's
        if self.stem != "cifar" and "stem" not in (model_options(self.model) or {"stem"}):
            raise OptionError("stem", f"is not an option of model {self.model}")

    def check_paths(self) -> None:
        """The data folder, teacher and init weights exist and the output folder can be written (nothing is created)."""
        inputs = {"teacher": self.teacher, "init": self.init}
        validation.check_paths(read=inputs, write_folders={"out_dir": self.out_dir}, data_root=self.data_root)

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

    A stage whose checkpoint is complete is skipped; an incomplete one is resumed. ``config`` is validated
    first, so a bad value fails before any data is read or file written, and ``teacher`` and ``init`` before training.

    Raises:
        CheckpointError: ``teacher`` is not a float model of this task and output shape, or ``init`` does not fit.
    """
    config.check_paths()
    device = distributed.init_from_environment()
    train_set, test_set = _datasets(config)
    spec = config.spec()
    if spec.task.model_options:  # the options the task derives from the un-augmented training set (anchors)
        plain_train_set = first(load_dataset(config.dataset, train=True, root=config.data_root), config.train_limit)
        prepared = spec.task.prepare(plain_train_set, dataset_info(config.dataset))
        spec = dataclasses.replace(spec, options={**spec.options, **prepared})
        if config.progress and distributed.rank() == 0:
            tqdm.write(f"{spec.task.name} options from the {config.dataset} training set: {prepared}")
    initial = None if config.init is None else import_weights(config.init, spec)  # the float stage's start, checked
    trained_float = config.float_epochs > 0 or initial is not None or stage_checkpoint(config.out_dir, None).exists()
    distilling = config.distill > 0 and config.bits is not None and (trained_float or config.teacher is not None)
    teacher = load_teacher(config.teacher, spec, train_set) if distilling and config.teacher is not None else None
    paths: dict[str, Path] = {}
    model: nn.Module | None = None
    for index, bits in enumerate(config.stages()):
        path = stage_checkpoint(config.out_dir, bits)
        stage_spec = spec.with_bits(bits)
        if index == 0:
            torch.manual_seed(config.seed)
            start = stage_spec.build() if initial is None else initial.build_model()
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
            teacher=None if bits is None else teacher,
            device=device,
        )
        if distilling and teacher is None:  # after the float stage: its trained model teaches the others
            teacher = frozen(copy.deepcopy(model))
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
    teacher: nn.Module | None = None,
    device: torch.device | str = "cpu",
) -> nn.Module:
    """Train ``model`` for ``epochs`` (SGD, cosine schedule per step), checkpointing each epoch and within it.

    With a frozen ``teacher`` (eval mode, no gradients; moved to ``device``, never wrapped in DDP), the loss is
    ``(1 - config.distill) · task loss + config.distill · distillation loss`` against its output on the same images.

    If ``checkpoint_path`` holds a checkpoint of the same spec, training resumes from it, at the
    step where it stopped (and returns at once when it is complete).

    Raises:
        FastSNNError: the loss became NaN or infinite (nothing is saved: the last checkpoint is the last good state).
        TrainingInterrupted: Ctrl-C; a checkpoint of the current position was saved first.
    """
    steps_per_epoch = len(_train_loader(train_set, config, 0))
    teacher = None if teacher is None else teacher.to(device)
    stage = _Stage(model.to(device), spec, epochs, lr, checkpoint_path, config, steps_per_epoch, teacher)
    start_epoch, start_step, running = stage.resume(device)
    trained = DistributedDataParallel(stage.model) if distributed.is_distributed() else stage.model
    with stop_requests(enabled=not distributed.is_distributed()) as stop_requested:
        for epoch in range(start_epoch, epochs):
            trained.train()
            skip = start_step if epoch == start_epoch else 0
            running = running if epoch == start_epoch else 0.0
            running = stage.train_epoch(trained, train_set, epoch, skip, running, stop_requested, device)
            test = measure(stage.model, _eval_loader(test_set, config), spec.task)
            stage.history.append(
                {"epoch": epoch + 1, "train_loss": running} | {_history_key(m): v for m, v in test.items()}
            )
            if config.progress and distributed.rank() == 0:
                figures = ", ".join(f"test {metric} {100 * value:.2f}%" for metric, value in test.items())
                tqdm.write(f"{stage.where(epoch)}: loss {running:.4f}, {figures}")
            stage.save(epoch + 1, 0, 0.0)
            distributed.barrier()
    return stage.model.cpu()


class _Stage:
    """One stage's training state: model, optimizer, cosine schedule, history, its checkpoint file, and the
    frozen network it distills from (None: the task loss only)."""

    def __init__(self, model, spec, epochs: int, lr: float, path: Path, config: TrainConfig, steps: int, teacher):
        self.model, self.spec, self.epochs, self.path, self.config = model, spec, epochs, path, config
        self.steps_per_epoch, self.history, self.teacher = steps, [], teacher
        self.optimizer = torch.optim.SGD(
            model.parameters(), lr=lr, momentum=config.momentum, weight_decay=config.weight_decay, nesterov=True
        )
        total_steps = max(1, epochs * steps)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda step: 0.5 * (1 + math.cos(math.pi * step / total_steps))
        )

    def where(self, epoch: int) -> str:
        return f"{self.path.stem} epoch {epoch + 1}/{self.epochs}"

    def resume(self, device) -> tuple[int, int, float]:
        """Load the stage's checkpoint if there is one; ``(epoch, step, running loss)`` to start from."""
        if not self.path.exists():
            return 0, 0, 0.0
        checkpoint = load_checkpoint(self.path)
        if checkpoint.spec != self.spec:
            raise FastSNNError(
                f"{self.path} holds a different model ({checkpoint.spec}); use another output folder or remove it"
            )
        self.model.load_state_dict({k: v.to(device) for k, v in checkpoint.model_state.items()})
        restore_optimizer(self.optimizer, checkpoint)
        self.scheduler.load_state_dict(checkpoint.training["scheduler"])
        if checkpoint.rng_state is not None:
            torch.set_rng_state(checkpoint.rng_state)
        position = checkpoint.training
        self.history = position["history"]
        return position["epoch"], position.get("step", 0), position.get("running_loss", 0.0)

    def save(self, epoch: int, step: int, running: float) -> None:
        """Checkpoint after ``step`` steps of epoch ``epoch`` (0-based; step 0 = before the epoch)."""
        if distributed.rank() == 0:
            position = {"epoch": epoch, "step": step, "running_loss": running, "epochs": self.epochs}
            info = dataset_info(self.config.dataset)  # its name: a folder's resolved path, valid from anywhere
            training = {"dataset": info.name, "dataset_info": info.to_dict()} | position | {"history": self.history}
            training |= {"scheduler": self.scheduler.state_dict(), "config": dataclasses.asdict(self.config)}
            save_checkpoint(
                self.path, self.model, self.spec, optimizer=self.optimizer, save_rng=True, training=training
            )

    def loss(self, trained: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """The task loss of ``trained`` on a batch of ``images`` ``[B, ...]``, mixed with the distillation loss
        against :attr:`teacher`'s output (computed without gradients) when there is a teacher."""
        task, output = self.spec.task, trained(images)
        loss = task.loss(output, labels)
        if self.teacher is None:
            return loss
        with torch.no_grad():
            teacher_output = self.teacher(images)
        weight = self.config.distill
        return (1 - weight) * loss + weight * task.distillation_loss(output, teacher_output, self.config.temperature)

    def train_epoch(self, trained, train_set, epoch: int, skip: int, running: float, stop_requested, device) -> float:
        """Train epoch ``epoch`` from step ``skip``; returns the running mean of the loss."""
        config, where = self.config, self.where(epoch)
        loader = _train_loader(train_set, config, epoch, skip_batches=skip)
        quiet = not config.progress or distributed.rank() != 0
        bar = tqdm(loader, desc=where, initial=skip, total=self.steps_per_epoch, disable=quiet, leave=False)
        last_save = time.monotonic()
        for step, (images, labels) in enumerate(bar, start=skip):
            loss = self.loss(trained, images.to(device), labels.to(device))
            if not torch.isfinite(loss):
                raise FastSNNError(
                    f"loss became {loss.item()} in {where} step {step + 1}; stopped without saving, so "
                    f"{self.path} keeps the last good state; lower the learning rate"
                )
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if config.max_grad_norm is not None:
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), config.max_grad_norm)
            self.optimizer.step()
            self.scheduler.step()
            running += (loss.item() - running) / (step + 1)
            bar.set_postfix(loss=f"{running:.4f}")
            if stop_requested():
                self.save(epoch, step + 1, running)
                raise TrainingInterrupted(
                    f"interrupted; saved {self.path} after step {step + 1}/{self.steps_per_epoch} of {where}; "
                    "run the same command again to resume"
                )
            if step + 1 < self.steps_per_epoch and _checkpoint_due(config, step + 1, last_save):
                self.save(epoch, step + 1, running)
                last_save = time.monotonic()
        return running


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
