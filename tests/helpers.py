"""Helpers shared by the tests: exact (dyadic) random values and tiny data sets in real formats."""

import gzip
import struct
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from fastsnn import QuantReLU, quantize
from fastsnn.models import create_model
from fastsnn.quant import levels, relu_percentiles


def dyadic(shape, generator: torch.Generator, *, low: int = -8, high: int = 9, denominator: int = 8) -> torch.Tensor:
    """Random float32 values k / denominator: sums of products of these are exact in float32."""
    return torch.randint(low, high, shape, generator=generator).float() / denominator


def loader_of(images: torch.Tensor, batch_size: int = 32, shuffle: bool = False) -> DataLoader:
    """Batches ``(images, zero labels)``: data for code that uses images only."""
    return DataLoader(
        TensorDataset(images, torch.zeros(len(images), dtype=torch.long)), batch_size=batch_size, shuffle=shuffle
    )


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
