"""The memory guard of the simulation plan: batches that would not fit are simulated in chunks (same result) or
refused clearly."""

import importlib

import pytest
import torch

from fastsnn import convert, quantize
from fastsnn.convert.free_memory import available_bytes
from fastsnn.errors import FastSNNError
from fastsnn.models import create_model

simulation_plan = importlib.import_module("fastsnn.convert.simulation_plan")


@pytest.fixture
def snn():
    qann = quantize(create_model("resnet20", num_classes=10, in_channels=1, width=0.25), 2)
    return convert(qann, signed=True)


def measured(snn, x):
    """A fresh plan for ``x`` (the network keeps its own, made at its first call for that shape)."""
    return simulation_plan.SimulationPlan.measure(snn.body, snn.T, x)


def free_memory(monkeypatch, available):
    """Plans made from now on read ``available`` bytes of free memory."""
    monkeypatch.setattr(simulation_plan, "available_bytes", lambda device: available)


def test_per_sample_estimate_is_measured_on_the_meta_device(snn):
    plan = measured(snn, torch.zeros(1, 1, 28, 28))
    # at least a layer's output [T, 4, 28, 28] float32, and far below a gigabyte; gradients keep more
    assert snn.T * 4 * 28 * 28 * 4 < plan.image_bytes < plan.gradient_bytes < 2**30


def test_batch_that_does_not_fit_is_chunked_with_the_same_result(snn, monkeypatch):
    x = torch.randn(13, 1, 28, 28)
    with torch.no_grad():
        per_sample = simulation_plan.SAFETY * measured(snn, x).image_bytes
        free_memory(monkeypatch, int(4.5 * per_sample / simulation_plan.USABLE_FRACTION))
        calls = []
        handle = snn.body.register_forward_pre_hook(lambda _module, inputs: calls.append(len(inputs[0])))
        try:
            chunked = snn(x)
        finally:
            handle.remove()
        whole = snn.simulate(x)  # one call on the whole batch
    assert calls == [4, 4, 4, 1]
    assert torch.equal(chunked, whole)


def test_a_batch_that_fits_runs_whole(snn, monkeypatch):
    x = torch.zeros(3, 1, 28, 28)
    per_sample = simulation_plan.SAFETY * measured(snn, x).image_bytes
    free_memory(monkeypatch, int(3 * per_sample / simulation_plan.USABLE_FRACTION) + 1)
    plan = measured(snn, x)
    assert plan.chunk_size(3, gradients=False) == 3 and plan.chunk_size(4, gradients=False) == 3
    free_memory(monkeypatch, None)  # unknown free memory: only the cache bounds a chunk
    plan = measured(snn, x)
    assert plan.chunk_size(3, gradients=False) == 3 and plan.chunk_size(10**6, gradients=True) == 10**6


def test_sample_that_cannot_fit_is_refused_naming_the_cause(snn, monkeypatch):
    free_memory(monkeypatch, 1000)
    with pytest.raises(FastSNNError, match=r"one sample of shape \(1, 28, 28\) at T=3 needs about .* GiB.*lower T"):
        with torch.no_grad():
            snn(torch.zeros(2, 1, 28, 28))


def test_with_gradients_a_smaller_batch_is_suggested(snn, monkeypatch):
    x = torch.zeros(10, 1, 28, 28)
    need = measured(snn, x).gradient_bytes
    free_memory(monkeypatch, int(3.5 * need / simulation_plan.USABLE_FRACTION))
    with pytest.raises(FastSNNError, match="a batch of 10 samples at T=3 .* use a batch size of at most 3"):
        snn(x)
    assert snn.plan(x).chunk_size(3, gradients=True) == 3
    assert snn.plan(x).chunk_size(10, gradients=False) == 10  # without gradients far less is kept


@pytest.mark.parametrize(
    "limit, expected", [("max", 2000 * 1024), ("900000", 900000 - 100000), ("9000000", 2000 * 1024)]
)
def test_cpu_free_memory_is_mem_available_capped_by_the_cgroup_limit(tmp_path, limit, expected):
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       8000 kB\nMemFree:        1000 kB\nMemAvailable:   2000 kB\n")
    (tmp_path / "memory.max").write_text(limit + "\n")
    (tmp_path / "memory.current").write_text("100000\n")
    assert available_bytes(torch.device("cpu"), meminfo=meminfo, cgroup=tmp_path) == expected
    assert available_bytes(torch.device("cpu"), meminfo=tmp_path / "none", cgroup=tmp_path / "none") is None
