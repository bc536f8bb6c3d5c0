"""The validating IDX reader: round trips, and errors that name the broken file."""

import gzip

import numpy as np
import pytest
import torch

from fastsnn.data.idx import read_idx_images, read_idx_labels
from fastsnn.errors import DataError


@pytest.mark.parametrize("gz", [True, False])
def test_round_trip_images_and_labels(tmp_path, make, gz):
    images = np.random.default_rng(0).integers(0, 256, size=(5, 28, 28), dtype=np.uint8)
    labels = np.array([0, 9, 3, 3, 7], dtype=np.uint8)
    images_path = make.write_idx(tmp_path / "imgs", images, gz=gz)
    labels_path = make.write_idx(tmp_path / "lbls", labels, gz=gz)

    read_images = read_idx_images(images_path)
    read_labels = read_idx_labels(str(labels_path))

    assert read_images.dtype == torch.uint8 and read_images.shape == (5, 28, 28)
    assert torch.equal(read_images, torch.from_numpy(images))
    assert torch.equal(read_labels, torch.from_numpy(labels))


def test_non_square_dimensions_are_kept(tmp_path, make):
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    assert read_idx_images(make.write_idx(tmp_path / "x", images, gz=False)).shape == (2, 3, 4)


@pytest.mark.parametrize("gz", [True, False])
def test_truncated_payload_names_the_file(tmp_path, make, gz):
    path = tmp_path / "short-images"
    payload = np.ones((4, 28, 28), np.uint8)
    make.write_idx(path, payload, gz=False)
    data = path.read_bytes()[:-10]
    path.write_bytes(gzip.compress(data) if gz else data)
    with pytest.raises(DataError, match="short-images.*truncated"):
        read_idx_images(path)


def test_file_shorter_than_its_header_names_the_file(tmp_path):
    path = tmp_path / "tiny"
    path.write_bytes(b"\x00\x00\x08\x03\x00\x00")
    with pytest.raises(DataError, match="tiny.*truncated"):
        read_idx_images(path)


def test_extra_bytes_after_payload_are_refused(tmp_path, make):
    path = make.write_idx(tmp_path / "long", np.zeros(3, np.uint8), gz=False)
    path.write_bytes(path.read_bytes() + b"\x00")
    with pytest.raises(DataError, match="long.*longer than its header"):
        read_idx_labels(path)


def test_truncated_gzip_stream_names_the_file(tmp_path, make):
    path = make.write_idx(tmp_path / "cut.gz", np.zeros((2, 28, 28), np.uint8), gz=True)
    path.write_bytes(path.read_bytes()[:-12])
    with pytest.raises(DataError, match="cut.gz.*gzip"):
        read_idx_images(path)


def test_wrong_magic_names_the_file_and_both_numbers(tmp_path, make):
    path = make.write_idx(tmp_path / "labels-as-images", np.zeros(3, np.uint8), gz=True)
    with pytest.raises(DataError, match=r"labels-as-images.*0x00000801.*0x00000803"):
        read_idx_images(path)


def test_non_ubyte_type_is_refused(tmp_path, make):
    path = make.write_idx(tmp_path / "int32", np.zeros(3, np.uint8), gz=False, magic=0x00000C01)
    with pytest.raises(DataError, match="int32.*magic"):
        read_idx_labels(path)


def test_missing_file_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="nothing-here"):
        read_idx_labels(tmp_path / "nothing-here")
