"""The memory guard: batches that would not fit are simulated in chunks (same result) or refused clearly."""

import pytest
import torch

from fastsnn import convert, quantize
from fastsnn.convert import memory_guard
from fastsnn.errors import FastSNNError
from fastsnn.models import create_model


@pytest.fixture(scope="module")
def snn():
    qann = quantize(create_model("resnet20", num_classes=10, in_channels=1, width=0.25), 2)
    return convert(qann, signed=True)


def per_sample(snn, x):
    return memory_guard._bytes_per_sample(snn, x[:1])


def free_memory(monkeypatch, available):
    monkeypatch.setattr(memory_guard, "available_bytes", lambda device: available)


def test_per_sample_estimate_is_measured_on_the_meta_device(snn):
    with torch.no_grad():
        estimate = per_sample(snn, torch.zeros(1, 1, 28, 28))
    # at least the first conv's output [T, 4, 28, 28] float32, and far below a gigabyte
    assert snn.T * 4 * 28 * 28 * 4 < estimate < 2**30


def test_batch_that_does_not_fit_is_chunked_with_the_same_result(snn, monkeypatch):
    x = torch.randn(13, 1, 28, 28)
    with torch.no_grad():
        whole = snn(x)
        free_memory(monkeypatch, int(4.5 * per_sample(snn, x) / memory_guard.USABLE_FRACTION))
        run = memory_guard.runner(snn, x)
        calls = []
        handle = snn.register_forward_pre_hook(lambda _module, inputs: calls.append(len(inputs[0])))
        try:
            chunked = run(x)
        finally:
            handle.remove()
    assert calls == [4, 4, 4, 1]
    assert torch.equal(chunked, whole)


def test_a_batch_that_fits_and_a_plain_ann_run_as_they_are(snn, monkeypatch):
    x = torch.zeros(3, 1, 28, 28)
    with torch.no_grad():
        free_memory(monkeypatch, int(3 * per_sample(snn, x) / memory_guard.USABLE_FRACTION) + 1)
        assert memory_guard.runner(snn, x) is snn
        free_memory(monkeypatch, None)  # unknown free memory
        assert memory_guard.runner(snn, x) is snn
        free_memory(monkeypatch, 1000)
        ann = torch.nn.Linear(28, 2)
        assert memory_guard.runner(ann, x) is ann


def test_sample_that_cannot_fit_is_refused_naming_the_cause(snn, monkeypatch):
    free_memory(monkeypatch, 1000)
    with pytest.raises(FastSNNError, match=r"one sample of shape \(1, 28, 28\) at T=3 needs about .* GiB.*lower T"):
        with torch.no_grad():
            memory_guard.runner(snn, torch.zeros(2, 1, 28, 28))


def test_with_gradients_a_smaller_batch_is_suggested(snn, monkeypatch):
    x = torch.zeros(10, 1, 28, 28)
    need = per_sample(snn, x)
    free_memory(monkeypatch, int(3.5 * need / memory_guard.USABLE_FRACTION))
    with pytest.raises(FastSNNError, match="use a batch size of at most 3"):
        memory_guard.runner(snn, x)


@pytest.mark.parametrize(
    "limit, expected", [("max", 2000 * 1024), ("900000", 900000 - 100000), ("9000000", 2000 * 1024)]
)
def test_cpu_free_memory_is_mem_available_capped_by_the_cgroup_limit(tmp_path, limit, expected):
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       8000 kB\nMemFree:        1000 kB\nMemAvailable:   2000 kB\n")
    (tmp_path / "memory.max").write_text(limit + "\n")
    (tmp_path / "memory.current").write_text("100000\n")
    assert memory_guard.available_bytes(torch.device("cpu"), meminfo=meminfo, cgroup=tmp_path) == expected
    assert (
        memory_guard.available_bytes(torch.device("cpu"), meminfo=tmp_path / "none", cgroup=tmp_path / "none") is None
    )
