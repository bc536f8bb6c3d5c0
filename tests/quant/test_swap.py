import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

from fastsnn import QuantReLU, quantize
from fastsnn.errors import ConversionError
from fastsnn.quant import relu_percentiles


def small_net():
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Conv2d(4, 4, 3), nn.ReLU6(), nn.Flatten(), nn.Linear(16, 3))


def test_every_relu_swapped_on_a_copy():
    model = small_net()
    quantized = quantize(model, 3, alpha={"1": 0.5})
    assert isinstance(model[1], nn.ReLU), "the original must stay untouched"
    assert [type(m) for m in quantized if isinstance(m, (nn.ReLU, nn.ReLU6, QuantReLU))] == [QuantReLU, QuantReLU]
    assert quantized[1].alpha.item() == 0.5 and quantized[3].alpha.item() == 6.0
    assert quantized[1].bits == quantized[3].bits == 3
    assert torch.equal(quantized[0].weight, model[0].weight)


def test_progressive_requantization_keeps_alpha():
    stage4 = quantize(small_net(), 4, alpha=1.25)
    with torch.no_grad():
        stage4[1].alpha.fill_(0.75)
    stage3 = quantize(stage4, 3)
    assert stage3[1].bits == 3 and stage3[1].alpha.item() == 0.75
    assert stage4[1].bits == 4


@pytest.mark.parametrize(
    "bad, culprit",
    [
        (nn.GELU(), "1 (GELU)"),
        (nn.MaxPool2d(2), "1 (MaxPool2d)"),
        (nn.LeakyReLU(), "1 (LeakyReLU)"),
        (nn.SiLU(), "1 (SiLU)"),
    ],
)
def test_unsupported_modules_are_named(bad, culprit):
    model = nn.Sequential(nn.Conv2d(1, 2, 3), bad, nn.ReLU())
    with pytest.raises(ConversionError, match=culprit.replace("(", r"\(").replace(")", r"\)")):
        quantize(model, 2)


class FunctionalRelu(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.act = nn.ReLU()

    def forward(self, x):
        return self.act(F.max_pool1d(F.relu(self.fc(x)), 1))


def test_functional_max_pooling_is_refused_while_functional_relus_are_quantized():
    with pytest.raises(ConversionError) as error:
        quantize(FunctionalRelu(), 2)
    assert "max_pool1d" in str(error.value) and "relu" not in str(error.value).replace("max_pool1d", "")


def test_no_relu_is_an_error():
    with pytest.raises(ConversionError, match="no nn.ReLU"):
        quantize(nn.Sequential(nn.Linear(2, 2)), 2)


@pytest.mark.parametrize("weight_bits", [2, 4])
def test_weight_quantization_per_channel(weight_bits):
    quantized = quantize(small_net(), 2, weight_bits=weight_bits)
    conv = quantized[0]
    assert parametrize.is_parametrized(conv, "weight")
    weight = conv.weight.detach().flatten(1)
    max_level = 2 ** (weight_bits - 1) - 1
    scale = weight.abs().amax(1, keepdim=True) / max_level
    steps = weight / scale
    assert torch.allclose(steps, steps.round(), atol=1e-4)
    assert all(len(row.unique()) <= 2 * max_level + 1 for row in steps.round())
    # straight-through: the float parameter receives gradients
    quantized(torch.randn(2, 1, 6, 6)).sum().backward()
    assert conv.parametrizations.weight.original.grad is not None


def test_relu_percentiles_match_direct_computation():
    model = nn.Sequential(nn.Identity(), nn.ReLU())
    batches = [torch.randn(100, 50) for _ in range(3)]
    stats = relu_percentiles(model, batches, percentile=90)
    expected = torch.quantile(torch.cat(batches).relu().flatten(), 0.9).item()
    assert stats.keys() == {"1"}
    assert abs(stats["1"] - expected) < 1e-3
