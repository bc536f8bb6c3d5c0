"""Helpers shared by the tests: exact (dyadic) random values and tiny data sets in real formats."""

import gzip
import struct
from pathlib import Path

import numpy as np
import torch


def dyadic(shape, generator: torch.Generator, *, low: int = -8, high: int = 9, denominator: int = 8) -> torch.Tensor:
    """Random float32 values k / denominator: sums of products of these are exact in float32."""
    return torch.randint(low, high, shape, generator=generator).float() / denominator


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
