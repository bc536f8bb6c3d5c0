import pytest
import torch

from fastsnn.quant import QuantReLU, levels, quantize_activation


@pytest.mark.parametrize("bits", [1, 2, 3, 4, 8])
def test_output_lies_on_the_quantization_grid(bits):
    alpha = torch.tensor(1.7)
    x = torch.randn(10_000) * 2
    q = quantize_activation(x, alpha, bits)
    level_index = q * levels(bits) / alpha
    assert torch.allclose(level_index, level_index.round(), atol=1e-4)
    assert q.min() >= 0 and q.max() <= alpha
    assert torch.all(q[x <= 0] == 0)
    assert torch.allclose(q[x >= alpha], alpha.expand_as(q[x >= alpha]))
    # nearest level: never further than half a step from the clipped input
    assert torch.all((q - x.clamp(0, alpha.item())).abs() <= alpha / levels(bits) / 2 + 1e-6)


@pytest.mark.parametrize("bits", [2, 3, 4])
def test_ties_round_half_up(bits):
    L = levels(bits)
    alpha = torch.tensor(float(L))  # step = 1, so the ties k + 1/2 are exact in float32
    ties = torch.arange(L, dtype=torch.float32) + 0.5
    q = quantize_activation(ties, alpha, bits)
    assert torch.equal(q, torch.arange(1, L + 1, dtype=torch.float32))
    # torch.round would round half to even and disagree on every even k
    assert not torch.equal(torch.round(ties), q)


def test_straight_through_gradients():
    alpha = torch.tensor(2.0, requires_grad=True)
    x = (torch.randn(5000) * 2).requires_grad_()
    q = quantize_activation(x, alpha, 3)
    upstream = torch.randn_like(q)
    q.backward(upstream)
    inside = (x > 0) & (x < alpha)
    assert torch.equal(x.grad, upstream * inside)
    expected_alpha = (upstream * torch.where(x >= alpha, 1.0, torch.where(inside, (q - x) / alpha, 0.0))).sum()
    assert torch.allclose(alpha.grad, expected_alpha)


def test_quantrelu_module_learns_alpha_and_validates():
    module = QuantReLU(2, alpha=1.5)
    assert module.levels == 3 and module.alpha.requires_grad
    module(torch.tensor([5.0])).sum().backward()
    assert module.alpha.grad == 1.0
    for bad_bits in (0, 9, 2.0, True):
        with pytest.raises(ValueError, match="bits"):
            QuantReLU(bad_bits)
    with pytest.raises(ValueError, match="alpha"):
        QuantReLU(2, alpha=0.0)
