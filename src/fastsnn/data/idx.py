"""A validating reader for IDX files (the MNIST / Fashion-MNIST container).

Hand-written rather than torchvision's ``read_sn3_pascalvincent_tensor``:
that one opens only uncompressed paths and fails with bare ``assert``s that
do not say which file is broken. This reader accepts gzip'd or plain files
and turns every defect into a :class:`DataError` naming the file.

Layout: 4-byte magic ``0x0000 08 ND`` (0x08 = unsigned byte, ND = number of
dimensions), ND big-endian uint32 sizes, then exactly prod(sizes) bytes.
"""

from __future__ import annotations

import gzip
import math
import struct
import zlib
from pathlib import Path

import numpy as np
import torch

from fastsnn.errors import DataError

IMAGES_MAGIC = 0x00000803
LABELS_MAGIC = 0x00000801
_GZIP_SIGNATURE = b"\x1f\x8b"


def read_idx_images(path: str | Path) -> torch.Tensor:
    """Images of an IDX image file as uint8 ``[N, H, W]``."""
    return _read_idx(Path(path), IMAGES_MAGIC)


def read_idx_labels(path: str | Path) -> torch.Tensor:
    """Labels of an IDX label file as uint8 ``[N]``."""
    return _read_idx(Path(path), LABELS_MAGIC)


def _read_idx(path: Path, magic: int) -> torch.Tensor:
    data = _read_bytes(path)
    ndim = magic & 0xFF
    header_len = 4 + 4 * ndim
    if len(data) >= 4:
        (found,) = struct.unpack(">I", data[:4])
        if found != magic:
            raise DataError(
                f"IDX file {path} has magic number 0x{found:08x}, expected 0x{magic:08x} "
                f"({'images' if magic == IMAGES_MAGIC else 'labels'}); check that it is the right file."
            )
    if len(data) < header_len:
        raise DataError(
            f"IDX file {path} is truncated ({len(data)} bytes, shorter than its header); "
            "replace it with a complete copy."
        )
    dims = struct.unpack(f">{ndim}I", data[4:header_len])
    expected = header_len + math.prod(dims)
    if len(data) != expected:
        state = "truncated" if len(data) < expected else "longer than its header says"
        raise DataError(
            f"IDX file {path} is {state}: {len(data)} bytes for dimensions {list(dims)}, "
            f"expected {expected}; replace it with a complete copy."
        )
    array = np.frombuffer(data, dtype=np.uint8, offset=header_len).reshape(dims)
    return torch.from_numpy(array.copy())


def _read_bytes(path: Path) -> bytes:
    """The file's content, gunzipped when it starts with the gzip signature."""
    try:
        data = path.read_bytes()
    except OSError as error:
        raise DataError(f"Cannot read IDX file {path}: {error.strerror or error}.") from error
    if not data.startswith(_GZIP_SIGNATURE):
        return data
    try:
        return gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as error:
        raise DataError(
            f"IDX file {path} is a corrupt or truncated gzip file ({error}); replace it with a complete copy."
        ) from error
