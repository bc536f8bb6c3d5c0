"""Max-pools in quantize() and convert(): rate-exact after a ReLU, refused elsewhere by name, counted as spikes."""

import pytest
import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from fastsnn import QuantReLU, SpikingNetwork, convert, quantize
from fastsnn.analysis import activity, recorded_outputs
from fastsnn.convert import convert_rate_norm
from fastsnn.errors import ConversionError
from fastsnn.graph_checks import find_unsupported
from fastsnn.neuron import IFNeuron, SpikingMaxPool, over_time
from fastsnn.quant import relu_percentiles

ARCHITECTURES = [  # (conv options, pool options) of every block
    (dict(kernel_size=3, padding=1), dict(kernel_size=2)),
    (dict(kernel_size=3, stride=2, padding=1), dict(kernel_size=3, stride=2, padding=1)),
    (dict(kernel_size=5, padding=2), dict(kernel_size=2, stride=1, dilation=2)),
    (dict(kernel_size=3, padding=1), dict(kernel_size=3, stride=2, ceil_mode=True)),
]


def pooled_network(seed: int, conv: dict, pool: dict, *, blocks: int = 3, size: int = 20) -> nn.Sequential:
    """``blocks`` × (conv → BN → ReLU → MaxPool), flatten, linear; BN in eval with random statistics.
    Paths: block k's conv is ``4k``, its ReLU ``4k + 2``, its pool ``4k + 3``."""
    generator = torch.Generator().manual_seed(seed)
    layers, channels = [], 1
    for _ in range(blocks):
        out = int(torch.randint(2, 6, (), generator=generator))
        norm = nn.BatchNorm2d(out)
        with torch.no_grad():
            norm.running_mean.uniform_(-0.3, 0.3, generator=generator)
            norm.running_var.uniform_(0.5, 2.0, generator=generator)
            norm.weight.uniform_(0.5, 1.5, generator=generator)
            norm.bias.uniform_(-0.2, 0.4, generator=generator)
        layers += [nn.Conv2d(channels, out, **conv), norm, nn.ReLU(), nn.MaxPool2d(**pool)]
        channels = out
    features = nn.Sequential(*layers).eval()
    flat = features(torch.zeros(1, 1, size, size)).numel()
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(flat, 3)).eval()


def rates(snn: SpikingNetwork, paths: list[str], images: torch.Tensor) -> dict[str, torch.Tensor]:
    """Mean over T of the outputs ``[T*B, ...]`` of the body's neurons and pools at ``paths``: ``[B, ...]`` each
    (recorded_outputs gives a neuron's mean already)."""
    modules = {path: snn.body.get_submodule(path) for path in paths}
    with recorded_outputs(modules) as outputs, torch.no_grad():
        snn(images)
    return {
        path: output if isinstance(modules[path], IFNeuron) else over_time(output, snn.T).mean(0)
        for path, output in outputs.items()
    }


@pytest.mark.parametrize("bits", [2, 3, 4])
@pytest.mark.parametrize("signed", [False, True])
@pytest.mark.parametrize("architecture", range(len(ARCHITECTURES)))
def test_pools_of_spikes_pool_rates_and_the_first_layer_is_exact(bits, signed, architecture):
    conv, pool = ARCHITECTURES[architecture]
    model = pooled_network(10 * architecture + bits, conv, pool)
    images = torch.rand(24, 1, 20, 20, generator=torch.Generator().manual_seed(bits))
    qann = quantize(model, bits, alpha=relu_percentiles(model, [images], 99.0)).eval()
    snn = convert(qann, signed=signed)
    assert snn.T == 2**bits - 1
    pools = [path for path, module in snn.body.named_children() if isinstance(module, SpikingMaxPool)]
    assert pools == ["3", "7", "11"] and all(snn.body.get_submodule(path).T == snn.T for path in pools)
    assert snn.plan(images).stem == frozenset({"0", "1", "2"}), "the stem ends at the first neuron"

    with recorded_outputs({"2": qann[2], "3": qann[3]}) as target, torch.no_grad():
        qann(images)
    rate = rates(snn, ["2", *pools, "6", "10"], images)
    torch.testing.assert_close(rate["2"], target["2"], rtol=0, atol=1e-5)  # the first spiking layer is exact
    torch.testing.assert_close(rate["3"], target["3"], rtol=0, atol=1e-5)  # and so its max-pool
    assert target["3"].abs().sum() > 0
    for neuron, pooled in (("2", "3"), ("6", "7"), ("10", "11")):  # every pool's rate is the pool of its input's
        expected = snn.body.get_submodule(pooled).pool(rate[neuron])
        torch.testing.assert_close(rate[pooled], expected, rtol=0, atol=1e-5)
    with torch.no_grad():
        assert snn(images).shape == qann(images).shape == (24, 3)


def test_rate_norm_conversion_pools_spikes_too():
    conv, pool = ARCHITECTURES[1]
    model = pooled_network(5, conv, pool)
    images = torch.rand(16, 1, 20, 20, generator=torch.Generator().manual_seed(5))
    snn = convert_rate_norm(model, [images], T=12)
    spiking = dict(snn.body.named_children())
    assert [type(spiking[path]) for path in ("2", "3", "6", "7")] == [IFNeuron, SpikingMaxPool] * 2
    rate = rates(snn, ["2", "3", "6", "7"], images)
    for neuron, pooled in (("2", "3"), ("6", "7")):
        torch.testing.assert_close(rate[pooled], spiking[pooled].pool(rate[neuron]), rtol=0, atol=1e-5)
    assert isinstance(model[3], nn.MaxPool2d), "the float model keeps its pools"


def test_layers_after_a_spiking_max_pool_count_its_spikes():
    """A 1x1 conv and a linear layer fed by pooled spikes: SOPs = pooled spikes × fan-out, no MACs."""
    model = nn.Sequential(
        nn.Conv2d(1, 3, 3, padding=1), nn.BatchNorm2d(3), nn.ReLU(), nn.MaxPool2d(3, stride=2, padding=1),
        nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(4 * 4 * 4, 5),
    ).eval()  # fmt: skip
    images = torch.rand(6, 1, 16, 16, generator=torch.Generator().manual_seed(0))
    for signed in (False, True):
        snn = convert(quantize(model, 3, alpha=relu_percentiles(model, [images], 99.0)), signed=signed)
        with recorded_outputs({"3": snn.body[3], "7": snn.body[7]}) as pooled, torch.no_grad():
            snn(images)
        spikes = {
            path: (pooled[path] / snn.body[int(path) - 1].threshold).round().abs().sum().item() for path in pooled
        }
        assert spikes["3"] > 0 and spikes["7"] > 0
        report = activity(snn, [images])
        rows = {row.name: row for row in report.rows}
        assert rows["4"].fed_by == "spikes" and rows["4"].macs == 0
        assert rows["4"].sops == spikes["3"] * 4 / len(images)
        assert rows["9"].fed_by == "spikes" and rows["9"].macs == 0
        assert rows["9"].sops == spikes["7"] * 5 / len(images)


def refusal(model: nn.Module) -> str:
    with pytest.raises(ConversionError) as error:
        quantize(model, 2)
    return str(error.value)


def test_max_pools_of_no_spikes_are_refused_by_name():
    assert (
        "3 (MaxPool2d) pools the output of 2 (BatchNorm2d), an analog value, not spikes; put the max-pool after "
        "the ReLU"
    ) in refusal(nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.BatchNorm2d(2), nn.MaxPool2d(2), nn.ReLU()))
    assert "0 (MaxPool2d) pools the network input 'input', an analog value" in refusal(
        nn.Sequential(nn.MaxPool2d(2), nn.Conv2d(1, 2, 3), nn.ReLU())
    )
    chained = refusal(nn.Sequential(nn.Conv2d(1, 2, 3), nn.MaxPool2d(2), nn.MaxPool2d(2), nn.ReLU()))
    assert "1 (MaxPool2d) pools the output of 0 (Conv2d)" in chained
    assert "2 (MaxPool2d) pools the output of 1 (MaxPool2d), which pools no spikes" in chained
    with pytest.raises(ConversionError, match=r"2 \(MaxPool2d\) pools the output of 1 \(Conv2d\)"):
        convert(nn.Sequential(QuantReLU(2), nn.Conv2d(1, 1, 1), nn.MaxPool2d(2)))


def test_a_pool_returning_indices_is_refused_by_name():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.MaxPool2d(2, return_indices=True))
    assert "2 (MaxPool2d) has return_indices=True" in refusal(model)
    qann = nn.Sequential(nn.Conv2d(1, 2, 3), QuantReLU(2), nn.AdaptiveMaxPool2d(2, return_indices=True))
    with pytest.raises(ConversionError, match=r"2 \(AdaptiveMaxPool2d\) has return_indices=True"):
        convert(qann)


class FunctionalPool(nn.Module):
    def __init__(self, activation: nn.Module):
        super().__init__()
        self.conv, self.relu = nn.Conv2d(1, 2, 3), activation

    def forward(self, x):
        return F.max_pool2d(self.relu(self.conv(x)), 2, ceil_mode=True)


class Untraceable(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv, self.relu, self.pool = nn.Conv2d(1, 2, 3), nn.ReLU(), nn.MaxPool2d(2)

    def forward(self, x):
        y = self.relu(self.conv(x))
        return self.pool(y) if y.sum() > 0 else y


def test_functional_max_pools_become_modules_in_quantize_and_unverifiable_ones_are_refused():
    qann = quantize(FunctionalPool(nn.ReLU()), 2)
    pool = qann.get_submodule("max_pool_fn")
    assert type(pool) is nn.MaxPool2d and (pool.kernel_size, pool.ceil_mode) == (2, True)
    assert isinstance(convert(qann).body.get_submodule("max_pool_fn"), SpikingMaxPool)
    with pytest.raises(ConversionError) as error:  # convert() itself rewrites nothing: quantize first
        convert(FunctionalPool(QuantReLU(2)))
    assert "functional.max_pool2d called in forward() (fx node 'max_pool2d'); use nn.MaxPool2d after the" in str(
        error.value
    )
    message = refusal(Untraceable())
    assert "pool (MaxPool2d) cannot be checked to pool spikes: torch.fx could not trace Untraceable.forward" in message
    assert "TraceError: symbolically traced variables cannot be used as inputs to control flow" in message


@pytest.mark.parametrize(
    "pool", [nn.MaxPool1d(2), nn.MaxPool3d(2), nn.AdaptiveMaxPool1d(2), nn.LPPool2d(2, 2), nn.MaxUnpool2d(2)]
)
def test_other_pools_stay_refused_even_after_a_relu(pool):
    assert f"2 ({type(pool).__name__})" in refusal(nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), pool))


def test_chains_through_shape_only_modules_are_accepted():
    model = nn.Sequential(
        nn.Conv2d(1, 2, 3), nn.ReLU6(), nn.Dropout(0.2), nn.MaxPool2d(2), nn.Identity(), nn.AdaptiveMaxPool2d(2),
        nn.Flatten(), nn.Linear(8, 2),
    ).eval()  # fmt: skip
    snn = convert(quantize(model, 2))
    assert isinstance(snn.body[3], SpikingMaxPool) and isinstance(snn.body[5], SpikingMaxPool)
    assert find_unsupported(snn.body) == [], "a spiking network's own pools are checked as a whole"
    images = torch.rand(4, 1, 11, 11)
    with torch.no_grad():
        assert snn(images).shape == (4, 2)


@pytest.mark.parametrize("name", ["resnet18", "vgg11_bn", "alexnet"])
def test_torchvision_models_with_max_pools_after_relus_pass_the_checks(name):
    with torch.device("meta"):  # structure only: no weights allocated
        model = getattr(torchvision.models, name)(weights=None)
    assert any(isinstance(module, nn.MaxPool2d) for module in model.modules())
    assert find_unsupported(model) == []
    assert find_unsupported(model, extra_types=(nn.ReLU6,)) == []


class Branches(nn.Module):
    """Two conv → BN → ReLU branches of the input concatenated along ``dim`` and max-pooled (GoogLeNet's
    Inception output, pooled by the next block), with the functional ``F.max_pool2d`` if ``functional``."""

    def __init__(self, seed: int, dim: int = 1, functional: bool = False):
        super().__init__()
        generator = torch.Generator().manual_seed(seed)
        self.left = nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.BatchNorm2d(3), nn.ReLU())
        right = 2 if dim == 1 else 3  # channels: concatenated along space, the branches must have the same
        self.right = nn.Sequential(nn.Conv2d(1, right, 5, padding=2), nn.BatchNorm2d(right), nn.ReLU())
        for branch in (self.left, self.right):
            with torch.no_grad():
                branch[1].running_mean.uniform_(-0.3, 0.3, generator=generator)
                branch[1].bias.uniform_(-0.2, 0.4, generator=generator)
        self.pool = nn.MaxPool2d(3, stride=2, padding=1)
        self.dim, self.functional = dim, functional
        self.head = nn.Linear(5 * 6 * 6 if dim == 1 else 3 * 12 * 6, 4)

    def forward(self, x):
        joined = torch.cat([self.left(x), self.right(x)], self.dim)
        pooled = F.max_pool2d(joined, 3, 2, 1) if self.functional else self.pool(joined)
        return self.head(pooled.flatten(1))


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("bits", [2, 3])
@pytest.mark.parametrize("functional", [False, True])
def test_a_max_pool_of_channel_concatenated_spikes_is_exact(seed, bits, functional):
    model = Branches(seed, functional=functional).eval()
    images = torch.rand(16, 1, 12, 12, generator=torch.Generator().manual_seed(seed))
    qann = quantize(model, bits, alpha=relu_percentiles(model, [images], 99.0)).eval()
    thresholds = [module.alpha.item() for module in qann.modules() if isinstance(module, QuantReLU)]
    assert len(thresholds) == 2 and thresholds[0] != thresholds[1], "the branches' spikes differ in amplitude"
    pool_path = "max_pool_fn" if functional else "pool"
    snn = convert(qann, signed=True)
    assert isinstance(snn.body.get_submodule(pool_path), SpikingMaxPool)
    with recorded_outputs({pool_path: qann.get_submodule(pool_path)}) as target, torch.no_grad():
        qann(images)
    rate = rates(snn, [pool_path], images)[pool_path]  # both branches are first spiking layers: exact
    torch.testing.assert_close(rate, target[pool_path], rtol=0, atol=1e-5)
    assert target[pool_path].abs().sum() > 0


def test_a_max_pool_of_spikes_concatenated_along_space_is_refused():
    with pytest.raises(ConversionError, match=r"pool \(MaxPool2d\) pools the output of cat"):
        quantize(Branches(0, dim=2).eval(), 2)
