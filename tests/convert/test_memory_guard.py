"""The memory guard: batches that would not fit are simulated in chunks (same result) or refused clearly."""

import pytest
import torch

from fastsnn.convert import memory_guard
from fastsnn import convert, quantize
from fastsnn.errors import FastSNNError
from fastsnn.models import create_model


@pytest.fixture(scope="module")
def snn():
    qann = quantize(create_model("resnet20", num_classes=10, in_channels=1, width=0.25), 2)
    return convert(qann, signed=True)


def per_sample(snn, x):
    return memory_guard._bytes_per_sample(snn.body, x[:1], snn.T)


def test_per_sample_estimate_is_measured_on_the_meta_device(snn):
    with torch.no_grad():
        estimate = per_sample(snn, torch.zeros(1, 1, 28, 28))
    # at least the first conv's output [T, 4, 28, 28] float32, and far below a gigabyte
    assert snn.T * 4 * 28 * 28 * 4 < estimate < 2**30


def test_batch_that_does_not_fit_is_chunked_with_the_same_result(snn, monkeypatch):
    x = torch.randn(13, 1, 28, 28)
    with torch.no_grad():
        whole = snn(x)
        need = per_sample(snn, x)
        calls = []
        real = snn._simulate
        monkeypatch.setattr(snn, "_simulate", lambda part: calls.append(len(part)) or real(part))
        monkeypatch.setattr(memory_guard, "available_bytes", lambda device: int(4.5 * need / memory_guard.USABLE_FRACTION))
        chunked = snn(x)
    assert calls == [4, 4, 4, 1]
    assert torch.equal(chunked, whole)


def test_sample_that_cannot_fit_is_refused_naming_the_cause(snn, monkeypatch):
    monkeypatch.setattr(memory_guard, "available_bytes", lambda device: 1000)
    with pytest.raises(FastSNNError, match=r"one sample of shape \(1, 28, 28\) at T=3 needs about .* GiB.*lower T"):
        with torch.no_grad():
            snn(torch.zeros(2, 1, 28, 28))


def test_with_gradients_a_smaller_batch_is_suggested(snn, monkeypatch):
    x = torch.zeros(10, 1, 28, 28)
    need = per_sample(snn, x)
    monkeypatch.setattr(memory_guard, "available_bytes", lambda device: int(3.5 * need / memory_guard.USABLE_FRACTION))
    with pytest.raises(FastSNNError, match="use a batch size of at most 3"):
        snn(x)


def test_unknown_free_memory_runs_the_batch_as_is(snn, monkeypatch):
    monkeypatch.setattr(memory_guard, "available_bytes", lambda device: None)
    with torch.no_grad():
        assert snn(torch.zeros(3, 1, 28, 28)).shape == (3, 10)


def test_cpu_free_memory_is_read():
    free = memory_guard.available_bytes(torch.device("cpu"))
    assert free is None or free > 0
