"""The simulation plan: the stem computed once, cache-sized chunks, the same spikes as the plain fold."""

import importlib

import pytest
import torch
from torch import nn

from fastsnn import IFNeuron, QuantReLU, convert
from fastsnn.analysis import recorded_outputs
from fastsnn.finetune.reach import run_to
from helpers import random_qann

simulation_plan = importlib.import_module("fastsnn.convert.simulation_plan")


def _folded_run(snn, x):
    """The plain design: the image repeated T times, ``[T*B, ...]``, through the body; readout mean over T."""
    T = snn.T
    return snn.body(x.unsqueeze(0).expand(T, *x.shape).reshape(T * x.shape[0], *x.shape[1:]))


def _spikes_and_output(snn, x, run):
    neurons = dict(snn.neurons())
    with torch.no_grad(), recorded_outputs(neurons) as rates:
        output = run(snn, x)
    return rates, output


@pytest.mark.parametrize("name", ["vgg11", "resnet20"])
@pytest.mark.parametrize("seed", range(2))
@pytest.mark.parametrize("chunk_bytes", [1, 2**40])  # one image per chunk; the whole batch at once
def test_every_neuron_spikes_as_in_the_plain_fold(name, seed, chunk_bytes, monkeypatch):
    monkeypatch.setattr(simulation_plan, "CHUNK_BYTES", chunk_bytes)
    qann = random_qann(name, seed, bits=2 + seed, size=16)
    snn = convert(qann, signed=bool(seed))
    x = torch.randn(6, 1, 16, 16, generator=torch.Generator().manual_seed(seed))
    planned, output = _spikes_and_output(snn, x, lambda model, images: model(images))
    plain, folded = _spikes_and_output(snn, x, _folded_run)
    assert list(planned) == list(plain)
    for path in plain:
        assert torch.equal(planned[path], plain[path]), path
    expected = folded.reshape(snn.T, 6, -1).mean(0)
    assert torch.allclose(output, expected, rtol=0, atol=1e-5)  # the readout's GEMM may round differently


def test_the_stem_runs_once_per_image_and_the_rest_on_all_steps():
    qann = random_qann("vgg11", 0, size=16)
    snn = convert(qann, T=5)
    rows = {}

    def record(key):
        def hook(_module, inputs, _output):
            rows[key] = inputs[0].shape[0]

        return hook

    stem, second = snn.body.features[0][0], snn.body.features[2][0]
    hooks = [module.register_forward_hook(record(key)) for key, module in (("stem", stem), ("second", second))]
    with torch.no_grad():
        snn(torch.randn(4, 1, 16, 16))
    for hook in hooks:
        hook.remove()
    assert rows == {"stem": 4, "second": 5 * 4}


@pytest.mark.parametrize("name", ["vgg11", "resnet20"])
def test_the_plan_finds_the_stem_without_running_the_network(name):
    """The stem: every layer that runs before the first neuron, and that neuron; found on meta, no hook called."""
    snn = convert(random_qann(name, 0, size=16), T=3)
    x = torch.randn(4, 1, 16, 16)
    order, hooks = [], []
    for path, module in snn.body.named_modules():
        if next(module.children(), None) is None:
            hooks.append(module.register_forward_hook(lambda _m, _i, _o, path=path: order.append(path)))
    plan = snn.plan(x)
    assert order == [], "planning runs a copy on meta, not the network"
    with torch.no_grad():
        snn.body(x.repeat(3, 1, 1, 1))  # the plain fold, to see the order in which layers run
    for hook in hooks:
        hook.remove()
    first_neuron = next(i for i, path in enumerate(order) if isinstance(snn.body.get_submodule(path), IFNeuron))
    assert plan.stem == frozenset(order[: first_neuron + 1]) and plan.stem_fed == (order[first_neuron],)
    assert snn.plan(torch.randn(9, 1, 16, 16)) is plan, "one plan per image shape, whatever the batch"
    assert snn.plan(torch.randn(4, 1, 20, 20)) is not plan


def test_only_the_neurons_the_stem_feeds_are_told_their_current_is_constant_and_only_during_the_call():
    snn = convert(random_qann("resnet20", 1, size=16), T=3)
    told = {}

    def record(path):
        def hook(module, _inputs, _output):
            told[path] = module.constant_current

        return hook

    hooks = [neuron.register_forward_hook(record(path)) for path, neuron in snn.neurons()]
    with torch.no_grad():
        snn(torch.randn(2, 1, 16, 16))
    for hook in hooks:
        hook.remove()
    first = snn.neurons()[0][0]
    assert told == {path: path == first for path, _ in snn.neurons()}
    assert not any(neuron.constant_current for _, neuron in snn.neurons())


def test_chunks_follow_the_cache_budget_without_autograd_only(monkeypatch):
    qann = random_qann("vgg11", 1, size=16)
    snn = convert(qann, T=3)
    x = torch.randn(10, 1, 16, 16)
    plan = snn.plan(x)
    assert plan.stem_once and plan.image_bytes > 0
    monkeypatch.setattr(simulation_plan, "CHUNK_BYTES", 3 * plan.image_bytes)
    calls = []

    def record(_module, inputs, _output):
        calls.append(inputs[0].shape[0])

    hook = snn.body.register_forward_hook(record)
    with torch.no_grad():
        snn(x)
    assert calls == [3, 3, 3, 1]
    calls.clear()
    snn(x)  # autograd on: one call on the whole batch
    hook.remove()
    assert calls == [10]


def test_run_to_sees_the_whole_batch_where_the_forward_simulates_chunks(monkeypatch):
    """Fine-tuning's run_to stops the simulation at a neuron: it runs one simulation of the whole batch."""
    snn = convert(random_qann("vgg11", 2, size=16), T=3)
    x = torch.randn(5, 1, 16, 16)
    monkeypatch.setattr(simulation_plan, "CHUNK_BYTES", 1)  # forward: one image per chunk
    (_, first), (_, second) = snn.neurons()[:2]
    with torch.no_grad():
        with recorded_outputs({"second": second}) as rates:
            snn(x)
        current, output = run_to(snn, second, x)
        stem_current, _ = run_to(snn, first, x)
    assert current.shape[:2] == (3, 5) and torch.equal(second.average_over_time(output), rates["second"])
    assert stem_current.shape[:2] == (3, 5) and stem_current.stride(0) == 0, "the stem's current, read as constant"


class _InputSkip(nn.Module):
    """Adds its own input to a spiking branch: the stem's [B] and the spikes' [T*B] would meet."""

    def __init__(self):
        super().__init__()
        self.branch = nn.Sequential(nn.Linear(4, 4), QuantReLU(2, alpha=1.0), nn.Linear(4, 4))

    def forward(self, x):
        return self.branch(x) + x


def test_a_body_that_mixes_its_input_with_spikes_runs_on_the_plain_fold():
    model = _InputSkip().eval()
    snn = convert(model)
    x = torch.randn(6, 4)
    with torch.no_grad():
        output = snn(x)
        expected = _folded_run(snn, x).reshape(snn.T, 6, 4).mean(0)
    assert not snn.plan(x).stem_once and not snn.plan(x).stem_fed
    assert torch.equal(output, expected)


def test_an_output_no_neuron_reaches_is_its_own_mean():
    class Passthrough(nn.Module):
        def __init__(self):
            super().__init__()
            self.trunk = nn.Sequential(nn.Linear(3, 8), QuantReLU(2, alpha=1.0), nn.Linear(8, 2))
            self.stem_only = nn.Linear(3, 5)

        def forward(self, x):
            return self.trunk(x), self.stem_only(x)

    model = Passthrough().eval()
    x = torch.randn(6, 3)  # 6 rows: divisible by T = 3, which a reshape alone would misread
    with torch.no_grad():
        spiking, analog = convert(model)(x)
        assert torch.equal(analog, model.stem_only(x))
        assert spiking.shape == (6, 2)
