"""Training under faults: SIGKILL mid-epoch, Ctrl-C, a NaN loss. The end result must not change by a bit."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from torch.utils.data import TensorDataset

import fastsnn.workflows.train as train_module
from fastsnn.errors import FastSNNError
from fastsnn.workflows.checkpoint import load_checkpoint
from fastsnn.workflows.model_spec import ModelSpec
from fastsnn.workflows.train import TrainConfig, fit
from helpers import write_tiny_fashion_mnist

SRC = Path(__file__).resolve().parents[1] / "src"
STEPS_PER_EPOCH = 16  # 128 images / batch 8


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    return write_tiny_fashion_mnist(tmp_path_factory.mktemp("faults") / "data", train=128, test=16)


def train_command(root: Path, out: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "fastsnn",
        "train",
        "--model",
        "resnet20",
        "--width",
        "0.25",
        "--dataset",
        "fashion-mnist",
        "--data-root",
        str(root),
        "--bits",
        "2",
        "--no-progressive",
        "--float-epochs",
        "1",
        "--epochs",
        "1",
        "--batch-size",
        "8",
        "--checkpoint-every",
        "1",
        "--out",
        str(out),
        "--quiet",
    ]


def start(command: list[str]) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def position(path: Path) -> tuple[int, int] | None:
    """(completed epochs, steps into the next) recorded in a checkpoint, or None if absent."""
    if not path.exists():
        return None
    with safe_open(path, framework="pt") as reader:
        training = __import__("json").loads(reader.metadata()["training"])
    return training["epoch"], training["step"]


def wait_until(process: subprocess.Popen, path: Path, reached, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, f"training ended early: {process.communicate()}"
        where = position(path)
        if where is not None and reached(*where):
            return
        time.sleep(0.005)
    process.kill()
    raise AssertionError(f"{path} never reached the awaited position")


def model_tensors(path: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(path).model_state


def test_sigkill_and_ctrl_c_mid_epoch_resume_to_bitwise_identical_weights(data_root, tmp_path):
    reference = start(train_command(data_root, tmp_path / "reference"))  # runs alongside the interrupted one
    out = tmp_path / "interrupted"
    command = train_command(data_root, out)
    killed = start(command)  # SIGKILL in the middle of the float epoch
    wait_until(killed, out / "float.safetensors", lambda epoch, step: epoch == 0 and step >= 3)
    killed.send_signal(signal.SIGKILL)
    assert killed.wait(timeout=30) == -signal.SIGKILL
    epoch, step = position(out / "float.safetensors")
    assert epoch == 0 and 0 < step < STEPS_PER_EPOCH, "the last checkpoint is a mid-epoch one"

    stopped = start(command)  # resumes, then Ctrl-C in the middle of the 2-bit stage
    wait_until(stopped, out / "q2.safetensors", lambda epoch, step: step >= 3)
    stopped.send_signal(signal.SIGINT)
    _, stderr = stopped.communicate(timeout=60)
    assert stopped.returncode == 130
    assert (
        len(stderr.strip().splitlines()) == 1 and "run the same command again" in stderr and "Traceback" not in stderr
    )
    epoch, step = position(out / "q2.safetensors")
    assert epoch == 0 and 0 < step < STEPS_PER_EPOCH

    resumed = start(command)
    assert resumed.wait(timeout=120) == 0, resumed.communicate()
    assert reference.wait(timeout=120) == 0, reference.communicate()
    for stage in ("float", "q2"):
        expected, got = (
            model_tensors(tmp_path / "reference" / f"{stage}.safetensors"),
            model_tensors(out / f"{stage}.safetensors"),
        )
        assert expected.keys() == got.keys()
        for key in expected:
            assert torch.equal(expected[key], got[key]), f"{stage}: {key}"


def test_nan_loss_stops_and_leaves_the_last_good_checkpoint_untouched(tmp_path, monkeypatch):
    images = torch.randn(64, 1, 28, 28)
    images[37] = float("nan")  # poisons whichever batch draws it
    train_set = TensorDataset(images, torch.randint(0, 10, (64,)))
    spec = ModelSpec("resnet20", num_classes=10, in_channels=1, options={"width": 0.25})
    path = tmp_path / "float.safetensors"
    config = TrainConfig(batch_size=4, checkpoint_every=1, checkpoint_seconds=None, progress=False)
    saved = []
    real_save = train_module.save_checkpoint

    def recording_save(*args, **kwargs):
        real_save(*args, **kwargs)
        saved.append(path.read_bytes())

    monkeypatch.setattr(train_module, "save_checkpoint", recording_save)
    with pytest.raises(FastSNNError, match="loss became nan.*keeps the last good state"):
        fit(spec.build(), spec, train_set, train_set, epochs=1, lr=0.01, checkpoint_path=path, config=config)
    assert saved, "some steps ran before the poisoned batch"
    assert path.read_bytes() == saved[-1]
    assert load_checkpoint(path).training["step"] == len(saved)
