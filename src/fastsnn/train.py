"""Training of float and quantized ANNs, with the progressive bit-width schedule float → 4 → 3 → 2.

Single process, or DDP when started by ``torchrun`` (see :mod:`fastsnn.distributed`). Every epoch
ends with an atomic safetensors checkpoint holding the model, optimizer, scheduler and RNG state,
so running the same command again resumes where it stopped.
"""

import dataclasses
import math
from pathlib import Path

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset, DistributedSampler, RandomSampler, Subset
from tqdm import tqdm

from . import distributed
from .checkpoint import ModelSpec, load_checkpoint, restore_optimizer, save_checkpoint
from .data import dataset_info, load_dataset
from .errors import FastSNNError
from .evaluate import accuracy
from .quant import quantize, relu_percentiles

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
    calibration_percentile: float = 99.9
    seed: int = 0
    data_root: str | None = None
    out_dir: str = "runs/train"
    train_limit: int | None = None  # use only the first N training images (quick runs, tests)
    test_limit: int | None = None
    progress: bool = True

    def stages(self) -> list[int | None]:
        """Bit widths trained in order; None is the float stage."""
        if self.bits is None:
            return [None]
        if not self.progressive:
            return [None, self.bits]
        return [None] + [b for b in (4, 3, 2) if b > self.bits] + [self.bits]

    def spec(self) -> ModelSpec:
        info = dataset_info(self.dataset)
        return ModelSpec(
            name=self.model,
            num_classes=info.num_classes,
            in_channels=info.in_channels,
            options={"width": self.width, "stem": self.stem},
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

    A stage whose checkpoint is complete is skipped; an incomplete one is resumed.
    """
    device = distributed.init_from_environment()
    train_set, test_set = _datasets(config)
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
            start, stage_spec, train_set, test_set,
            epochs=_stage_epochs(config, index),
            lr=config.lr if bits is None else config.quant_lr,
            checkpoint_path=path, config=config, device=device,
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
    device: torch.device = torch.device("cpu"),
) -> nn.Module:
    """Train ``model`` for ``epochs`` (SGD, cosine schedule per step), checkpointing each epoch.

    If ``checkpoint_path`` holds a checkpoint of the same spec, training resumes from it (and
    returns at once when it is complete).
    """
    model = model.to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=config.momentum, weight_decay=config.weight_decay, nesterov=True)
    steps_per_epoch = len(_train_loader(train_set, config, epoch=0))
    total_steps = max(1, epochs * steps_per_epoch)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 0.5 * (1 + math.cos(math.pi * step / total_steps)))
    start_epoch, history = 0, []
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
        start_epoch, history = checkpoint.training["epoch"], checkpoint.training["history"]
    trained = DistributedDataParallel(model) if distributed.is_distributed() else model
    loss_fn = nn.CrossEntropyLoss()
    for epoch in range(start_epoch, epochs):
        trained.train()
        loader = _train_loader(train_set, config, epoch)
        bar = tqdm(loader, desc=f"{checkpoint_path.stem} epoch {epoch + 1}/{epochs}", disable=not config.progress or distributed.rank() != 0, leave=False)
        running = 0.0
        for step, (images, labels) in enumerate(bar):
            loss = loss_fn(trained(images.to(device)), labels.to(device))
            if not torch.isfinite(loss):
                raise FastSNNError(f"loss became {loss.item()} in {checkpoint_path.stem} epoch {epoch + 1}; lower the learning rate")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            running += (loss.item() - running) / (step + 1)
            bar.set_postfix(loss=f"{running:.4f}")
        test_accuracy = accuracy(model, _eval_loader(test_set, config), device=device)
        history.append({"epoch": epoch + 1, "train_loss": running, "test_accuracy": test_accuracy})
        if distributed.rank() == 0:
            if config.progress:
                tqdm.write(f"{checkpoint_path.stem} epoch {epoch + 1}/{epochs}: loss {running:.4f}, test accuracy {100 * test_accuracy:.2f}%")
            save_checkpoint(
                checkpoint_path, model, spec, optimizer=optimizer, save_rng=True,
                training={"dataset": config.dataset, "epoch": epoch + 1, "epochs": epochs, "history": history, "scheduler": scheduler.state_dict()},
            )
        distributed.barrier()
    return model.cpu()


def _stage_epochs(config: TrainConfig, index: int) -> int:
    if config.stages()[index] is None:
        return config.float_epochs
    is_last = index == len(config.stages()) - 1
    return config.final_epochs if is_last and config.final_epochs is not None else config.epochs


def _datasets(config: TrainConfig) -> tuple[Dataset, Dataset]:
    train_set = load_dataset(config.dataset, train=True, root=config.data_root, augment=True)
    test_set = load_dataset(config.dataset, train=False, root=config.data_root)
    if config.train_limit is not None:
        train_set = Subset(train_set, range(min(config.train_limit, len(train_set))))
    if config.test_limit is not None:
        test_set = Subset(test_set, range(min(config.test_limit, len(test_set))))
    return train_set, test_set


def _train_loader(train_set: Dataset, config: TrainConfig, epoch: int) -> DataLoader:
    """Shuffled batches whose order depends only on (seed, epoch), so a resumed run sees the same ones."""
    if distributed.is_distributed():
        sampler = DistributedSampler(train_set, shuffle=True, seed=config.seed, drop_last=True)
        sampler.set_epoch(epoch)
    else:
        sampler = RandomSampler(train_set, generator=torch.Generator().manual_seed(config.seed * 100_003 + epoch))
    return DataLoader(train_set, batch_size=config.batch_size, sampler=sampler, drop_last=len(train_set) > config.batch_size)


def _eval_loader(test_set: Dataset, config: TrainConfig) -> DataLoader:
    return DataLoader(test_set, batch_size=max(config.batch_size, 256))


def _calibrate(model: nn.Module, train_set: Dataset, config: TrainConfig) -> dict[str, float]:
    """Initial clips: a high percentile of each float ReLU's output on a few training batches."""
    generator = torch.Generator().manual_seed(config.seed)
    loader = DataLoader(train_set, batch_size=config.batch_size, sampler=RandomSampler(train_set, generator=generator))
    batches = [images for images, _ in _take(loader, CALIBRATION_BATCHES)]
    return relu_percentiles(model, batches, config.calibration_percentile)


def _take(iterable, count):
    for index, item in enumerate(iterable):
        if index == count:
            return
        yield item
