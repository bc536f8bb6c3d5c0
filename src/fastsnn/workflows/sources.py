"""What the checkpoint-level workflows share: models and data of a run, read from its checkpoints."""

from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, RandomSampler, Subset

from ..convert import SpikingNetwork
from ..data import load_dataset
from ..errors import FastSNNError
from ..tasks.anchors import VOC_ANCHORS, box_sizes, kmeans_anchors
from .checkpoint import Checkpoint, load_checkpoint


def load_qann(path: str | Path) -> tuple[Checkpoint, nn.Module]:
    """The checkpoint at ``path`` and the quantized ANN it holds; refuses float ANNs and SNNs."""
    checkpoint = load_checkpoint(path)
    if checkpoint.spec.bits is None or checkpoint.spec.snn is not None:
        kind = "a spiking network" if checkpoint.spec.snn is not None else "a float ANN"
        raise FastSNNError(
            f"{path} holds {kind}, not a quantized ANN; pass a q<bits>.safetensors checkpoint from `fastsnn train`"
        )
    return checkpoint, checkpoint.build_model()


def load_snn(path: str | Path, *, like: Checkpoint) -> tuple[Checkpoint, SpikingNetwork]:
    """The checkpoint at ``path`` and the spiking network it holds (from `fastsnn convert` or `finetune`),
    which must be the same network as the QANN checkpoint ``like``."""
    checkpoint = load_checkpoint(path)
    if checkpoint.spec.snn is None:
        raise FastSNNError(
            f"{path} does not hold a spiking network; "
            "pass a checkpoint written by `fastsnn finetune` or `fastsnn convert`"
        )
    like.spec.check_same_network(checkpoint.spec, f"SNN checkpoint {path}")
    return checkpoint, checkpoint.build_model()


def load_float(path: str | Path, *, like: Checkpoint) -> nn.Module:
    """The float ANN at ``path``, which must be the same network as the QANN checkpoint ``like``."""
    checkpoint = load_checkpoint(path)
    like.spec.check_same_network(checkpoint.spec, f"float checkpoint {path}")
    return checkpoint.build_model()


def snn_label(checkpoint: Checkpoint) -> str:
    """Row name of an SNN checkpoint, e.g. ``"SNN signed + fine-tuned (ste)"``."""
    label = "SNN signed" if checkpoint.spec.snn.get("signed", True) else "SNN unsigned"
    finetuned = checkpoint.training.get("finetune")
    return f"{label} + fine-tuned ({finetuned['objective']})" if finetuned else label


def dataset_of(checkpoint: Checkpoint, path: str | Path, override: str | None) -> str:
    """``override`` if given, else the data set recorded in the checkpoint at training; its channels
    and classes must match the model's."""
    dataset = override or checkpoint.training.get("dataset")
    if dataset is None:
        raise FastSNNError(f"{path} does not record its data set; pass --dataset")
    checkpoint.spec.check_dataset(dataset)
    return dataset


def first(dataset: Dataset, limit: int | None) -> Dataset:
    """The first ``limit`` items of ``dataset`` (all of them if ``limit`` is None)."""
    return dataset if limit is None else Subset(dataset, range(min(limit, len(dataset))))


def test_loader(dataset: str, root, *, batch_size: int, limit: int | None = None) -> DataLoader:
    """Batches of the test split (the first ``limit`` images), in order."""
    return DataLoader(first(load_dataset(dataset, train=False, root=root), limit), batch_size=batch_size)


def tuning_split(dataset: str, root, *, held_out: int, limit: int | None = None) -> tuple[Dataset, Dataset]:
    """Un-augmented training images split into (tuning set, held-out set): the held-out set is the
    last ``held_out`` images, the tuning set the first ``limit`` of the others. The test split is never used."""
    train_set = load_dataset(dataset, train=True, root=root)
    if not 0 < held_out < len(train_set):
        raise FastSNNError(
            f"--held-out must be in 1..{len(train_set) - 1} for {dataset} "
            f"({len(train_set)} training images), got {held_out}"
        )
    tuning = Subset(train_set, range(len(train_set) - held_out))
    return first(tuning, limit), Subset(train_set, range(len(train_set) - held_out, len(train_set)))


def dataset_anchors(dataset: str, root, *, count: int = 5, limit: int = 5000) -> tuple[tuple[float, float], ...]:
    """YOLOv2 anchors for detection set ``dataset``: VOC's published ones for ``voc-det``, else k-means of
    the boxes of its first ``limit`` un-augmented training images."""
    if dataset == "voc-det":
        return VOC_ANCHORS
    try:
        return kmeans_anchors(box_sizes(load_dataset(dataset, train=True, root=root), limit=limit), count=count)
    except ValueError as error:  # too few boxes
        raise FastSNNError(f"anchors for {dataset}: {error}") from None


def calibration_batches(
    dataset: Dataset, *, batches: int = 8, batch_size: int = 128, seed: int = 0
) -> list[torch.Tensor]:
    """``batches`` random batches of images ``[batch_size, C, H, W]`` from ``dataset`` (same for a seed)."""
    sampler = RandomSampler(dataset, generator=torch.Generator().manual_seed(seed))
    loader = DataLoader(dataset, batch_size=batch_size, sampler=sampler)
    images = []
    for batch, _ in loader:
        images.append(batch)
        if len(images) == batches:
            break
    return images


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
