"""A differentiable twin of :func:`if_scan`: same spikes, surrogate gradients through the T steps.

Used by fine-tuning's back-propagation-through-time objective. The forward values equal
:func:`if_scan`'s bit for bit; only the backward pass differs (if_scan has none).
"""

import torch


class _Heaviside(torch.autograd.Function):
    """``H(x) = [x ≥ 0]`` forward; triangular surrogate ``max(0, 1 − |x|/w) / w`` backward."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, width: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x, width)
        return (x >= 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        x, width = ctx.saved_tensors
        surrogate = (1 - x.abs() / width).clamp_(min=0) / width
        return grad_out * surrogate, None


def if_scan_surrogate(
    current: torch.Tensor,
    threshold: torch.Tensor | float,
    *,
    signed: bool = False,
    initial_membrane: float = 0.5,
) -> torch.Tensor:
    """Spikes ``[T, B, ...]`` of :func:`if_scan`, differentiable w.r.t. ``current [T, B, ...]``.

    Each firing decision ``[v ≥ θ]`` (and, if signed, the retraction ``[v < 0]``) back-propagates a
    triangular surrogate of width θ; the soft reset ``v ← v − θ·s`` carries gradient too, so the
    gradient of a spike reaches the currents of every earlier step. The net count n only gates
    retraction (``n > 0``) and carries no gradient. For the signed neuron the two triangles sum to
    1/θ on [0, θ], so there the reset cancels the membrane's gradient and each spike's gradient stays
    with its own step's current.
    """
    threshold = torch.as_tensor(threshold, dtype=current.dtype, device=current.device)
    width = threshold.expand_as(current[0])
    membrane = (threshold * initial_membrane).expand_as(current[0])
    net_count = torch.zeros_like(current[0])
    spikes = []
    for t in range(current.shape[0]):
        membrane = membrane + current[t]
        spike = _Heaviside.apply(membrane - threshold, width)
        if signed:
            retract = (1 - _Heaviside.apply(membrane, width)) * (net_count > 0)
            spike = spike - retract
            net_count = net_count + spike.detach()
        membrane = membrane - spike * threshold
        spikes.append(spike)
    return torch.stack(spikes)
