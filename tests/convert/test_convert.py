"""convert(): exact where the theory says so, a pure function of the QANN, clear refusals."""

import collections

import pytest
import torch
from torch import nn

from fastsnn import IFNeuron, QuantReLU, SpikingNetwork, convert, quantize
from fastsnn.analysis import conversion_errors, recorded_outputs
from fastsnn.convert.spiking_network import join_batches
from fastsnn.errors import ConversionError, OptionError
from helpers import dyadic, loader_of, random_dyadic_network, random_qann


@pytest.mark.parametrize("bits", [2, 3, 4])
@pytest.mark.parametrize("seed", range(4))
def test_first_spiking_layer_is_exact_on_random_networks(bits, seed):
    generator = torch.Generator().manual_seed(seed)
    qann = random_dyadic_network(generator, bits, depth=int(torch.randint(1, 4, (), generator=generator)))
    snn = convert(qann, signed=bool(seed % 2))
    x = dyadic((16, 1, 6, 6), generator, low=0, high=17, denominator=16)
    with recorded_outputs({"1": qann[1]}) as target, recorded_outputs({"1": snn.body[1]}) as rate, torch.no_grad():
        qann(x)
        snn(x)
    theta = qann[1].alpha.detach()
    position = (qann[0](x) * snn.T / theta).detach()
    assert (torch.frac(position) == 0.5).any(), "the draw must reach rounding ties"
    assert torch.equal(rate["1"], target["1"]), "dyadic values: rate θ·n/T and q = (α/L)·k are both exact"


@pytest.mark.parametrize("signed", [False, True])
def test_single_spiking_layer_output_equals_qann(signed):
    qann = quantize(nn.Sequential(nn.Linear(20, 30), nn.ReLU(), nn.Linear(30, 5)), 3, alpha=0.9).eval()
    x = torch.randn(64, 20)
    with torch.no_grad():
        assert torch.allclose(convert(qann, signed=signed)(x), qann(x), atol=1e-5)


@pytest.mark.parametrize("name", ["vgg11", "resnet20"])
@pytest.mark.parametrize("bits", [2, 3])
def test_error_is_zero_at_the_first_layer_and_grows_with_depth(name, bits):
    qann = random_qann(name, bits, bits=bits, size=28)
    x = torch.rand(32, 1, 28, 28, generator=torch.Generator().manual_seed(bits))
    errors = conversion_errors(qann, {"unsigned": convert(qann, signed=False), "signed": convert(qann)}, loader_of(x))
    unsigned, signed = errors.accumulating["unsigned"], errors.accumulating["signed"]
    # truncating the network after its first spiking layer leaves a network the SNN reproduces exactly
    # (up to float rounding at ties: a mismatch there moves one level, error ≤ 1/T per element)
    assert unsigned[0] < 1e-4 and signed[0] < 1e-4
    # accumulating error: deeper truncations are further from the QANN
    half = len(unsigned) // 2
    assert sum(unsigned[half:]) / (len(unsigned) - half) > sum(unsigned[1:half]) / (half - 1) > 0
    # the signed neuron corrects the sequential error on average over the layers
    assert sum(signed) < sum(unsigned)
    # the whole network runs on a batch with residual additions and gives the QANN's output shape
    with torch.no_grad():
        assert convert(qann)(x).shape == qann(x).shape == (32, 10)


def test_T_defaults_to_levels_and_can_be_chosen():
    qann = quantize(nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2)), 3)
    snn = convert(qann)
    assert isinstance(snn, SpikingNetwork) and snn.T == 7 and all(n.T == 7 for _, n in snn.neurons())
    assert convert(qann, T=15).T == 15
    assert isinstance(qann[1], QuantReLU), "convert must not modify its input"


def test_batchnorm_stays_in_eval_mode_when_training():
    qann = quantize(nn.Sequential(nn.Conv2d(1, 2, 1), nn.BatchNorm2d(2), nn.ReLU()), 2)
    snn = convert(qann).train()
    assert snn.training and not snn.body[1].training


def test_structured_outputs_are_averaged_over_time():
    class TwoHeads(nn.Module):
        def __init__(self):
            super().__init__()
            self.trunk = nn.Sequential(nn.Linear(3, 8), QuantReLU(2, alpha=1.0))
            self.a, self.b = nn.Linear(8, 2), nn.Linear(8, 4)

        def forward(self, x):
            h = self.trunk(x)
            return {"boxes": self.a(h), "scores": (self.b(h), self.b(h) * 2)}

    model = TwoHeads().eval()
    x = torch.randn(5, 3)
    with torch.no_grad():
        out, expected = convert(model)(x), model(x)
    assert out["boxes"].shape == (5, 2) and isinstance(out["scores"], tuple)
    assert torch.allclose(out["scores"][1], expected["scores"][1], atol=1e-5)


def test_refuses_what_it_cannot_convert():
    with pytest.raises(ConversionError, match=r"1 \(ReLU\)"):
        convert(nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 2), QuantReLU(2)))
    with pytest.raises(ConversionError, match=r"1 \(MaxPool2d\) pools the output of 0 \(Conv2d\)"):
        convert(nn.Sequential(nn.Conv2d(1, 1, 1), nn.MaxPool2d(2), QuantReLU(2)))
    with pytest.raises(ConversionError, match="no QuantReLU"):
        convert(nn.Sequential(nn.Linear(2, 2)))
    with pytest.raises(ConversionError, match="mix bit widths"):
        convert(nn.Sequential(QuantReLU(2), QuantReLU(3)))
    assert convert(nn.Sequential(QuantReLU(2), QuantReLU(3)), T=7).T == 7
    with pytest.raises(OptionError, match="T must be"):  # a value out of range, as anywhere in the library
        convert(nn.Sequential(QuantReLU(2)), T=0)
    with pytest.raises(OptionError, match="signed must be True or False"):
        convert(nn.Sequential(QuantReLU(2)), signed=1)


def test_a_non_positive_clip_is_named_by_path():
    qann = nn.Sequential(nn.Linear(2, 2), QuantReLU(2), nn.Linear(2, 2), QuantReLU(2))
    with torch.no_grad():
        qann[3].alpha.fill_(-0.1)
    with pytest.raises(ConversionError, match=r"cannot convert 3 \(QuantReLU\): threshold must be > 0"):
        convert(qann)


def test_the_swap_table_is_an_argument():
    qann = quantize(nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2)), 2)

    def classic(quant, *, T, signed):
        return IFNeuron(quant.alpha.detach(), T, signed=False, initial_membrane=0.0)

    snn = convert(qann, T=5, mapping={QuantReLU: classic})
    neuron = snn.body[1]
    assert isinstance(neuron, IFNeuron) and neuron.initial_membrane == 0.0 and not neuron.signed and snn.T == 5
    assert convert(qann).body[1].initial_membrane == 0.5, "the default table is untouched"


Heads = collections.namedtuple("Heads", ["main", "aux"])


class TwoHeads(nn.Module):
    """A body whose output is a named tuple (e.g. a detector's heads)."""

    def __init__(self):
        super().__init__()
        self.fc, self.act = nn.Linear(3, 4), nn.ReLU()
        self.main, self.aux = nn.Linear(4, 2), nn.Linear(4, 1)

    def forward(self, x):
        hidden = self.act(self.fc(x))
        return Heads(self.main(hidden), self.aux(hidden))


def test_named_tuple_outputs_keep_their_type_averaged_and_joined_over_chunks():
    qann = quantize(TwoHeads(), 2, alpha=1.0).eval()
    snn = convert(qann)
    x = torch.randn(6, 3, generator=torch.Generator().manual_seed(0))
    whole = snn(x)
    assert type(whole) is Heads and whole.main.shape == (6, 2) and whole.aux.shape == (6, 1)
    joined = join_batches([snn(part) for part in x.split(2)])  # as the plan joins a batch simulated in chunks
    assert type(joined) is Heads
    torch.testing.assert_close(joined.main, whole.main, rtol=0, atol=0)
    torch.testing.assert_close(joined.aux, whole.aux, rtol=0, atol=0)
