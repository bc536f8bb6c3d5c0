"""Activity counts: SOPs equal hand counts, MACs the closed forms, spikes the neurons' outputs."""

import importlib
import json
import math

import pytest
import torch
from torch import nn

from fastsnn import IFNeuron, SpikingNetwork, convert, quantize
from fastsnn.analysis import activity, format_activity
from fastsnn.errors import FastSNNError
from fastsnn.models import create_model


def spiking(*layers: nn.Module, T: int, threshold: float | torch.Tensor = 1.0) -> SpikingNetwork:
    """Input spikes by hand: an unsigned IF neuron fed 0 or θ fires at every step where its input is θ."""
    return SpikingNetwork(nn.Sequential(IFNeuron(threshold, T, signed=False), *layers))


def binary(shape, seed: int) -> torch.Tensor:
    return torch.randint(0, 2, shape, generator=torch.Generator().manual_seed(seed)).float()


def row(report, name):
    return next(r for r in report.rows if r.name == name)


def conv_fan_out(conv: nn.Conv2d, height: int, width: int) -> torch.Tensor:
    """``[C_in, H, W]``: for each input position, the (output, kernel tap) pairs that read it, counted by loops."""
    (sh, sw), (ph, pw), (dh, dw), (kh, kw) = conv.stride, conv.padding, conv.dilation, conv.kernel_size
    out_h = (height + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    out_w = (width + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    per_group_in, per_group_out = conv.in_channels // conv.groups, conv.out_channels // conv.groups
    fan_out = torch.zeros(conv.in_channels, height, width)
    for o in range(conv.out_channels):
        for c in range(per_group_in):
            channel = (o // per_group_out) * per_group_in + c
            for i in range(out_h):
                for j in range(out_w):
                    for u in range(kh):
                        for v in range(kw):
                            y, x = i * sh - ph + u * dh, j * sw - pw + v * dw
                            if 0 <= y < height and 0 <= x < width:
                                fan_out[channel, y, x] += 1
    return fan_out


CONVS = [
    dict(in_channels=2, out_channels=3, kernel_size=3, stride=2, padding=1),
    dict(in_channels=4, out_channels=6, kernel_size=(3, 2), stride=(1, 2), padding=(2, 0), groups=2),
    dict(in_channels=3, out_channels=3, kernel_size=3, stride=2, padding=2, dilation=(2, 1), groups=3),
]


@pytest.mark.parametrize("options", CONVS)
def test_conv_sops_equal_a_hand_count(options):
    T, conv = 3, nn.Conv2d(**options)
    images = binary((5, conv.in_channels, 7, 6), seed=1)
    threshold = torch.arange(1.0, conv.in_channels + 1).view(-1, 1, 1)  # per channel: spikes = input / θ
    report = activity(spiking(conv, T=T, threshold=threshold), [images * threshold])
    expected = T * (images * conv_fan_out(conv, 7, 6)).sum().item() / 5
    assert row(report, "1").sops == expected and row(report, "1").macs == 0 and row(report, "1").fed_by == "spikes"
    assert row(report, "0").spikes_pos == T * images.sum().item() / 5 and row(report, "0").spikes_neg == 0
    assert report.T == T and report.images == 5


def test_linear_sops_through_a_flatten_view_and_pools_count_spikes_per_window():
    T = 2
    network = spiking(nn.Flatten(), nn.Linear(2 * 4 * 5, 7), T=T)
    images = binary((4, 2, 4, 5), seed=2)
    assert row(activity(network, [images]), "2").sops == T * images.sum().item() * 7 / 4

    pool = nn.AvgPool2d(3, stride=2, padding=1, ceil_mode=True)  # overlapping windows, cut at the edges
    out_h, out_w = pool(images).shape[-2:]  # 3x3; then adaptive (2, 1) windows: rows [0, 2) and [1, 3)
    network = spiking(pool, nn.AdaptiveAvgPool2d((2, 1)), nn.Flatten(), nn.Linear(2 * 2, 3), T=T)
    report = activity(network, [images])
    window_sums = torch.zeros(4, 2, out_h, out_w)
    for i in range(out_h):
        for j in range(out_w):
            rows, cols = slice(max(0, 2 * i - 1), 2 * i + 2), slice(max(0, 2 * j - 1), 2 * j + 2)
            window_sums[..., i, j] = images[..., rows, cols].sum((-1, -2))
    adaptive = window_sums[..., 0:2, :].sum() + window_sums[..., 1:3, :].sum()
    assert row(report, "1").sops == T * window_sums.sum().item() / 4
    assert row(report, "2").sops == T * adaptive.item() / 4
    assert row(report, "4").sops == T * adaptive.item() * 3 / 4
    assert [r.fed_by for r in report.rows[1:]] == ["spikes"] * 3


def test_zero_spikes_give_zero_sops():
    network = spiking(nn.Conv2d(2, 3, 3, padding=1), nn.Flatten(), nn.Linear(3 * 16, 2), T=3)
    report = activity(network, [torch.zeros(3, 2, 4, 4)])
    assert row(report, "0").spikes_pos == 0 and row(report, "0").firing_rate == 0
    assert row(report, "1").sops == 0 and row(report, "1").macs == 0 and row(report, "1").fed_by == "spikes"
    conv_output = row(report, "3")  # the linear reads the conv's (constant) bias output: analog, once per image
    assert conv_output.fed_by == "analog" and conv_output.macs == 3 * 16 * 2 and conv_output.sops == 0


def test_negative_spikes_count():
    """IF(x = 1/2) fires 1,0,1,0; 2·s − 1 drives a signed neuron +1,−1,+1,−1, and each spike reaches 3 outputs."""
    first, second, readout = nn.Linear(1, 1), nn.Linear(1, 3), nn.Linear(3, 2)
    with torch.no_grad():
        first.weight.fill_(2.0)
        first.bias.fill_(-1.0)
    body = nn.Sequential(IFNeuron(1.0, 4, signed=False), first, IFNeuron(1.0, 4, signed=True), second, readout)
    report = activity(SpikingNetwork(body), [torch.full((6, 1), 0.5)])
    assert (row(report, "0").spikes_pos, row(report, "0").spikes_neg) == (2, 0)
    assert (row(report, "2").spikes_pos, row(report, "2").spikes_neg, row(report, "2").firing_rate) == (2, 2, 1.0)
    assert row(report, "1").sops == 2 and row(report, "3").sops == (2 + 2) * 3
    assert row(report, "4").fed_by == "analog" and row(report, "4").macs == 4 * 3 * 2  # changes over time: T times


def test_macs_match_the_closed_form_and_an_snn_counts_its_constant_prefix_once():
    conv = nn.Conv2d(3, 8, (3, 5), stride=2, padding=1, groups=1)
    grouped = nn.Conv2d(8, 4, 3, padding=1, dilation=2, groups=4)
    ann = nn.Sequential(conv, nn.ReLU(), grouped, nn.Flatten(), nn.Linear(4 * 3 * 3, 5))
    report = activity(ann, [torch.randn(2, 3, 9, 12)])
    conv_macs, grouped_macs = 8 * 5 * 5 * (3 * 3 * 5), 4 * 3 * 3 * (2 * 3 * 3)  # output 8x5x5 / 4x3x3 per image
    assert [(r.name, r.macs, r.ann_macs, r.sops) for r in report.rows] == [
        ("0", conv_macs, conv_macs, 0),
        ("2", grouped_macs, grouped_macs, 0),
        ("4", 5 * 36, 5 * 36, 0),
    ]
    assert report.T == 1 and report.total.macs == conv_macs + grouped_macs + 180

    qann = quantize(ann, bits=2)
    snn = convert(qann, T=3)
    rows = activity(snn, [torch.randn(2, 3, 9, 12)]).rows
    assert (rows[0].name, rows[0].fed_by, rows[0].macs, rows[0].ann_macs) == ("0", "analog", conv_macs, conv_macs)
    assert [r.ann_macs for r in rows if r.kind != "neuron"] == [
        r.ann_macs for r in activity(qann, [torch.randn(1, 3, 9, 12)]).rows
    ]


def test_energy_is_the_stated_formula_and_checks_its_constants():
    report = activity(spiking(nn.Conv2d(2, 3, 3), nn.Flatten(), nn.Linear(3 * 4, 2), T=3), [binary((2, 2, 4, 4), 3)])
    total = report.total
    assert total.sops > 0 and total.macs > 0
    energy = report.energy(pj_mac=3.0, pj_ac=0.5)
    assert energy.snn_pj == total.macs * 3.0 + total.sops * 0.5 and energy.ann_pj == total.ann_macs * 3.0
    assert energy.ratio == energy.snn_pj / energy.ann_pj
    assert report.energy().snn_pj == total.macs * 4.6 + total.sops * 0.9
    for name in ("pj_mac", "pj_ac"):
        for bad in (0, -1.0, math.inf, math.nan, True, "1"):
            with pytest.raises(ValueError, match=name):
                report.energy(**{name: bad})


def test_hooks_are_removed_and_modes_restored_even_on_error():
    snn = convert(quantize(nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8, 2)), 2))
    snn.train()
    flags = [m.training for m in snn.modules()]
    activity(snn, [torch.randn(2, 1, 4, 4)])
    with pytest.raises(FastSNNError, match="batches of image tensors"):
        activity(snn, [torch.randn(2, 1, 4, 4), "not a batch"])
    with pytest.raises(FastSNNError, match="no images"):
        activity(snn, [])
    assert [m.training for m in snn.modules()] == flags and snn.training
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in snn.modules())
    with pytest.raises(FastSNNError, match="SpikingNetwork"):
        activity(snn.body, [torch.randn(2, 1, 4, 4)])


def test_converted_vgg_counts_the_spikes_its_neurons_emit():
    torch.manual_seed(0)
    qann = quantize(create_model("vgg11", num_classes=10, in_channels=1, width=0.25), bits=2, alpha=0.25)
    snn = convert(qann, T=3)
    images = torch.rand(6, 1, 28, 28)
    spikes: dict[str, torch.Tensor] = {}  # independently: each neuron's output / θ

    def keep(name):
        def hook(neuron, _inputs, output):
            spikes[name] = output / neuron.threshold

        return hook

    handles = [neuron.register_forward_hook(keep(name)) for name, neuron in snn.neurons()]
    with torch.no_grad():
        snn(images)
    for handle in handles:
        handle.remove()
    report = activity(snn, [(images[:4], None), (images[4:], None)])
    neurons = [r for r in report.rows if r.kind == "neuron"]
    assert [r.name for r in neurons] == [name for name, _ in snn.neurons()] and report.images == 6
    for r in neurons:
        s = spikes[r.name]
        assert r.neurons == s[0].numel() and 0 <= r.firing_rate <= 1
        assert r.spikes_pos == (s > 0.5).sum().item() / 6 and r.spikes_neg == (s < -0.5).sum().item() / 6
    assert report.total.spikes_pos > 0 and report.total.spikes_neg > 0  # signed neurons take spikes back
    synaptic = [r for r in report.rows if r.kind != "neuron"]
    assert synaptic[0].fed_by == "analog" and {r.fed_by for r in synaptic[1:]} == {"spikes"}
    assert report.total.macs == synaptic[0].ann_macs and report.total.sops > 0
    assert 0 < report.energy().ratio < 1
    decoded = json.loads(json.dumps(report.to_dict()))
    assert decoded["T"] == 3 and len(decoded["rows"]) == len(report.rows) and decoded["energy"]["pj_mac"] == 4.6
    table = format_activity(report)
    assert "features.0.0" in table and "total" in table and "SNN/ANN" in table


@pytest.mark.parametrize("chunk_bytes", [1, 2**40])  # one image per chunk; the whole batch at once
def test_counts_do_not_depend_on_the_chunks_a_batch_is_simulated_in(chunk_bytes, monkeypatch):
    qann = quantize(create_model("resnet20", num_classes=10, in_channels=1, width=0.25), bits=2, alpha=0.25)
    snn = convert(qann, T=3)
    images = torch.rand(5, 1, 16, 16, generator=torch.Generator().manual_seed(3))
    expected = activity(snn, [images[i : i + 1] for i in range(5)]).to_dict()  # five batches of one image
    monkeypatch.setattr(importlib.import_module("fastsnn.convert.simulation_plan"), "CHUNK_BYTES", chunk_bytes)
    assert activity(snn, [images]).to_dict() == expected


class AddInPlace(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.add_(1.0)


@pytest.mark.parametrize(
    "between, fed_by",
    [(nn.Identity(), "spikes"), (nn.Dropout(0.5), "spikes"), (AddInPlace(), "analog"), (nn.BatchNorm1d(4), "analog")],
)
def test_only_whole_unmodified_spike_tensors_count_as_spikes(between, fed_by):
    network = spiking(between, nn.Linear(4, 3), T=2)
    report = activity(network, [binary((5, 4), seed=4)])
    assert row(report, "2").fed_by == fed_by and (row(report, "2").sops > 0) == (fed_by == "spikes")


def test_resnet_shortcuts_and_blocks_read_spikes():
    torch.manual_seed(1)
    qann = quantize(create_model("resnet8", num_classes=10, in_channels=1, width=0.25), bits=2, alpha=0.5)
    report = activity(convert(qann), [torch.rand(3, 1, 12, 12)])
    fed_by = {r.name: r.fed_by for r in report.rows if r.kind != "neuron"}
    assert fed_by.pop("stem.0") == "analog" and set(fed_by.values()) == {"spikes"}
    assert "stages.1.0.shortcut.0" in fed_by and report.total.sops > 0


class _Passthrough(nn.Module):
    """YOLOv2's passthrough and DeepLab's ASPP in miniature: spikes pixel-unshuffled and concatenated."""

    def __init__(self, T: int, analog_branch: bool):
        super().__init__()
        self.fine = IFNeuron(1.0, T, signed=False)
        self.coarse = nn.Sequential(nn.Conv2d(2, 3, 3, stride=2, padding=1), IFNeuron(0.5, T, signed=True))
        self.analog_branch = analog_branch
        self.fuse = nn.Conv2d(2 * 4 + 3, 4, 3, padding=1)

    def forward(self, x):
        spikes = self.fine(x)
        coarse = self.coarse(spikes)
        fine = nn.functional.pixel_unshuffle(spikes * 2 if self.analog_branch else spikes, 2)
        return self.fuse(torch.cat([fine, coarse], dim=1))


@pytest.mark.parametrize("analog_branch", [False, True])
def test_concatenated_and_pixel_unshuffled_spikes_count_as_spikes(analog_branch):
    T = 3
    network = SpikingNetwork(_Passthrough(T, analog_branch))
    x = binary((2, 2, 8, 8), seed=5)
    report = activity(network, [x])
    fuse = row(report, "fuse")
    if analog_branch:  # one analog input makes the concatenation analog: dense MACs, T times
        assert fuse.fed_by == "analog" and fuse.sops == 0 and fuse.macs == T * fuse.ann_macs
        return
    spikes = {}
    hooks = [
        module.register_forward_hook(lambda m, i, o, key=key: spikes.__setitem__(key, (o / m.threshold).round()))
        for key, module in (("fine", network.body.fine), ("coarse", network.body.coarse[1]))
    ]
    with torch.no_grad():
        network(x)
    for hook in hooks:
        hook.remove()
    counts = torch.cat([nn.functional.pixel_unshuffle(spikes["fine"].abs(), 2), spikes["coarse"].abs()], dim=1)
    per_image = nn.functional.conv2d(counts, torch.ones_like(network.body.fuse.weight), padding=1).sum() / x.shape[0]
    assert fuse.fed_by == "spikes" and fuse.macs == 0 and fuse.sops == per_image.item() > 0
