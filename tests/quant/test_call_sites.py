"""Every ReLU call site gets its own module (and so its own quantizer): shared modules and functional ReLUs."""

import collections
import warnings

import pytest
import torch
import torch.nn.functional as F
import torchvision
from torch import fx, nn

from fastsnn import QuantReLU, convert, quantize
from fastsnn.analysis import recorded_outputs
from fastsnn.errors import ConversionError
from fastsnn.quant import levels, quantize_activation, relu_percentiles
from fastsnn.quant.call_sites import separate_call_sites
from helpers import dyadic

WIDTH = 8


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2, self.fc3 = (nn.Linear(WIDTH, WIDTH) for _ in range(3))
        self.act = nn.ReLU()

    def forward(self, x):
        x = F.relu(self.fc1(x))
        x = self.act(self.fc2(x))
        x = self.act(self.fc3(x))
        return torch.relu(x)


class FunctionalNet(nn.Module):
    """Ten ReLU call sites: a module called twice and every functional form."""

    def __init__(self):
        super().__init__()
        self.block = Block()
        self.fc1, self.fc2, self.fc3, self.fc4 = (nn.Linear(WIDTH, WIDTH) for _ in range(4))
        for layer in self.modules():
            if isinstance(layer, nn.Linear):
                nn.init.normal_(layer.weight, 0, 0.5)  # activations keep their scale and reach the clip at 6

    def forward(self, x):
        x = self.fc1(self.block(x)).relu()
        y = self.fc2(x)
        F.relu_(y)  # y itself is read again below
        x = F.relu6(y * 4, inplace=True)
        x = F.hardtanh(self.fc3(x), 0, 6)
        z = self.fc4(x)
        z.relu_()
        return F.hardtanh(z + y, 0.0, 6.0)


RELU6_SITES = ["relu6_fn", "relu6_fn1", "relu6_fn2"]
RELU_SITES = ["block.relu_fn", "block.act", "block.act_1", "block.relu_fn1", "relu_fn", "relu_fn1", "relu_fn2"]


def functional_net_by_hand(model: FunctionalNet, x: torch.Tensor, activation) -> torch.Tensor:
    """FunctionalNet's forward with ``activation(site path, input)`` at each site, named as documented."""
    block = model.block
    x = activation("block.relu_fn", block.fc1(x))
    x = activation("block.act", block.fc2(x))
    x = activation("block.act_1", block.fc3(x))
    x = activation("relu_fn", model.fc1(activation("block.relu_fn1", x)))
    y = activation("relu_fn1", model.fc2(x))
    x = activation("relu6_fn", y * 4)
    x = activation("relu6_fn1", model.fc3(x))
    z = activation("relu_fn2", model.fc4(x))
    return activation("relu6_fn2", z + y)


def float_activation(path: str, x: torch.Tensor) -> torch.Tensor:
    return F.relu6(x) if path in RELU6_SITES else F.relu(x)


@pytest.mark.parametrize("seed", range(4))
def test_separated_float_model_computes_the_original(seed):
    torch.manual_seed(seed)
    model = FunctionalNet()
    separated = separate_call_sites(model)
    x = torch.randn(64, WIDTH) * 3
    assert isinstance(separated, fx.GraphModule)
    expected = model(x)
    assert torch.equal(separated(x), expected)
    assert torch.equal(functional_net_by_hand(model, x, float_activation), expected)
    assert (expected > 0).any() and (expected == 6).any(), "the draw must reach both clips"
    sites = {path: type(m) for path, m in separated.named_modules() if isinstance(m, (nn.ReLU, nn.ReLU6))}
    assert sites == {**dict.fromkeys(RELU_SITES, nn.ReLU), **dict.fromkeys(RELU6_SITES, nn.ReLU6)}
    assert separated.state_dict().keys() == model.state_dict().keys()


@pytest.mark.parametrize("seed", range(3))
def test_each_site_quantizes_with_its_own_clip(seed):
    torch.manual_seed(seed)
    model = FunctionalNet()
    quantized = quantize(model, 8)  # fine levels: every site sees varied inputs
    quantizers = {path: m for path, m in quantized.named_modules() if isinstance(m, QuantReLU)}
    assert sorted(quantizers) == sorted(RELU_SITES + RELU6_SITES)
    clips = dict(zip(quantizers, torch.randperm(len(quantizers)).add(1).mul(0.5).tolist(), strict=True))
    with torch.no_grad():
        for path, quantizer in quantizers.items():
            quantizer.alpha.fill_(clips[path])
    x = torch.randn(64, WIDTH) * 3
    by_hand = {}

    def quantized_site(path, v):
        by_hand[path] = (v, quantize_activation(v, torch.tensor(clips[path]), 8))
        return by_hand[path][1]

    with recorded_outputs(quantizers) as outputs, torch.no_grad():
        assert torch.equal(quantized(x), functional_net_by_hand(model, x, quantized_site))
    for path, (site_input, site_output) in by_hand.items():
        assert torch.equal(outputs[path], site_output)
        for other, clip in clips.items():
            if other != path:
                assert not torch.equal(site_output, quantize_activation(site_input, torch.tensor(clip), 8)), (
                    f"the draw must tell {path}'s clip from {other}'s"
                )


def test_requantization_keeps_the_graph_module_and_its_clips():
    stage4 = quantize(FunctionalNet(), 4, alpha=1.5)
    with torch.no_grad():
        stage4.get_submodule("block.act_1").alpha.fill_(0.75)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        stage3 = quantize(stage4, 3)
    assert isinstance(stage3, fx.GraphModule) and stage3.state_dict().keys() == stage4.state_dict().keys()
    assert stage3.get_submodule("block.act_1").alpha.item() == 0.75
    assert stage3.get_submodule("block.act").alpha.item() == 1.5
    assert {m.bits for m in stage3.modules() if isinstance(m, QuantReLU)} == {3}
    assert {m.bits for m in stage4.modules() if isinstance(m, QuantReLU)} == {4}


def test_a_shared_quant_relu_takes_its_other_paths():
    shared = QuantReLU(2, alpha=0.5)
    model = nn.Sequential(nn.Linear(4, 4), shared, nn.Linear(4, 4), shared)
    quantized = quantize(model, 3)
    first, second = quantized.get_submodule("1"), quantized.get_submodule("3")
    assert first is not second and first.alpha.item() == second.alpha.item() == 0.5 and first.bits == 3
    assert quantized.state_dict().keys() == model.state_dict().keys()
    x = torch.randn(16, 4)
    with torch.no_grad():
        second.alpha.fill_(2.0)
    expected = quantize_activation(model[2](quantize_activation(model[0](x), first.alpha, 3)), second.alpha, 3)
    assert torch.equal(quantized(x), expected)


def test_modules_parameters_and_buffers_forward_does_not_use_keep_their_keys():
    class WithSpares(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3, 3)
            self.spare = nn.Sequential(nn.Conv2d(1, 1, 1), nn.BatchNorm2d(1))
            self.register_buffer("scale", torch.tensor(2.0))
            self.offset = nn.Parameter(torch.ones(3))

        def forward(self, x):
            return F.relu(self.fc(x))

    model = WithSpares()
    separated = separate_call_sites(model)
    assert separated.state_dict().keys() == model.state_dict().keys()
    for key, value in model.state_dict(keep_vars=True).items():
        assert separated.state_dict(keep_vars=True)[key] is value
    assert isinstance(separated.get_parameter("offset"), nn.Parameter)
    assert separate_call_sites(nn.Sequential(nn.Linear(2, 2), nn.ReLU())).__class__ is nn.Sequential


def test_clip_statistics_are_per_site():
    model = FunctionalNet()
    x = torch.randn(256, WIDTH) * 3
    stats = relu_percentiles(model, [x[:128], x[128:]], percentile=100)
    maxima = {}

    def record(path, v):
        out = float_activation(path, v)
        maxima[path] = out.max().item()
        return out

    functional_net_by_hand(model, x, record)
    assert stats.keys() == set(RELU_SITES)
    assert all(abs(stats[path] - max(maxima[path], 1e-3)) < 1e-6 for path in RELU_SITES)
    assert stats["block.act"] != stats["block.act_1"]
    quantized = quantize(model, 2, alpha=stats)
    assert all(quantized.get_submodule(path).alpha.item() == pytest.approx(stats[path]) for path in RELU_SITES)
    assert all(quantized.get_submodule(path).alpha.item() == 6.0 for path in RELU6_SITES)


@pytest.mark.parametrize("bits", [2, 3])
def test_converted_functional_model_is_exact_at_its_first_spiking_layer(bits):
    generator = torch.Generator().manual_seed(bits)
    model = FunctionalNet().eval()
    with torch.no_grad():
        for layer in model.modules():
            if isinstance(layer, nn.Linear):
                layer.weight.copy_(dyadic(layer.weight.shape, generator, low=-4, high=5))
                layer.bias.copy_(dyadic(layer.bias.shape, generator, low=-2, high=3))
    qann = quantize(model, bits, alpha=levels(bits) / 8)
    snn = convert(qann)
    assert [path for path, _ in snn.neurons()] == [p for p, m in qann.named_modules() if isinstance(m, QuantReLU)]
    x = dyadic((32, WIDTH), generator, low=0, high=17, denominator=16)
    first = "block.relu_fn"
    with (
        recorded_outputs({first: qann.get_submodule(first)}) as target,
        recorded_outputs({first: snn.body.get_submodule(first)}) as rate,
        torch.no_grad(),
    ):
        expected = qann(x)
        output = snn(x)
    assert torch.equal(rate[first], target[first]) and (target[first] > 0).any()
    assert output.shape == expected.shape == (32, WIDTH)


class Gate(nn.Module):
    def forward(self, x):
        return x if x.sum() > 0 else -x


def test_an_untraceable_model_still_quantizes_its_modules_with_a_warning():
    class Gated(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc, self.gate, self.act = nn.Linear(3, 3), Gate(), nn.ReLU()

        def forward(self, x):
            return self.act(self.gate(self.fc(x)))

    with pytest.warns(UserWarning, match=r"could not trace gate \(Gate\): TraceError") as caught:
        quantized = quantize(Gated(), 2)
    assert any("were not separated" in str(w.message) for w in caught)
    assert type(quantized) is Gated and isinstance(quantized.act, QuantReLU)


def test_functional_relus_behind_untraceable_code_are_refused_naming_the_blocker():
    class GatedFunctional(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc, self.gate = nn.Linear(3, 3), Gate()

        def forward(self, x):
            return F.relu(self.gate(self.fc(x)))

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the refusal says it all: no warning besides
        with pytest.raises(ConversionError, match=r"gate \(Gate\): TraceError"):
            quantize(GatedFunctional(), 2)


@pytest.mark.parametrize("seed", range(2))
def test_torchvision_resnet_separated_in_float_is_the_same_network(seed):
    torch.manual_seed(seed)
    model = torchvision.models.resnet18(num_classes=10).eval()
    separated = separate_call_sites(model)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(separated(x), model(x))
    assert separated.state_dict().keys() == model.state_dict().keys()
    relus = [path for path, m in separated.named_modules() if isinstance(m, nn.ReLU)]
    assert len(relus) == 17 and "layer1.0.relu_1" in relus and "layer4.1.relu_1" in relus


@pytest.mark.parametrize(
    "build, quantizers",
    [(torchvision.models.resnet18, 17), (torchvision.models.vgg11_bn, 10), (torchvision.models.alexnet, 7)],
)
def test_torchvision_models_get_one_quantizer_per_relu_call(build, quantizers):
    model = build(num_classes=10)
    quantized = quantize(model, 2)
    paths = [path for path, m in quantized.named_modules() if isinstance(m, QuantReLU)]
    assert len(paths) == quantizers
    assert quantized.state_dict().keys() == model.state_dict().keys() | {f"{path}.alpha" for path in paths}


Heads = collections.namedtuple("Heads", ["main", "aux"])


class TrainingBranch(nn.Module):
    """A forward that branches on ``self.training`` (as GoogLeNet's auxiliary head does)."""

    def __init__(self):
        super().__init__()
        self.fc, self.aux = nn.Linear(4, 4), nn.Linear(4, 2)

    def forward(self, x):
        hidden = F.relu(self.fc(x))
        return Heads(hidden, self.aux(hidden)) if self.training else hidden


def test_a_forward_branching_on_training_is_traced_in_eval_mode_and_the_flags_are_kept():
    model = TrainingBranch().train()
    separated = separate_call_sites(model)
    assert model.training and model.fc.training, "the caller's flags are restored"
    x = torch.randn(5, 4, generator=torch.Generator().manual_seed(0))
    expected = model.eval()(x)
    assert torch.equal(separated.eval()(x), expected)
    assert torch.equal(separated.train()(x), expected), "the eval branch, also in training mode"
    assert isinstance(separated.get_submodule("relu_fn"), nn.ReLU)
