"""Integrate-and-fire dynamics, written once as a pure multi-step function."""

import torch


def if_scan(current: torch.Tensor, threshold: torch.Tensor | float, *, signed: bool = False) -> torch.Tensor:
    """Spikes of IF neurons with soft reset driven by ``current`` over T steps.

    The membrane starts at θ/2. At each step ``v ← v + I(t)``; if ``v ≥ θ`` the neuron emits +1 and
    ``v ← v − θ``. With ``signed=True`` it may also take a spike back: if ``v < 0`` and its net count
    ``n > 0`` it emits −1 and ``v ← v + θ``. So ``0 ≤ n ≤ T`` always, and at most one event per step.

    For a constant input I the spike count is ``clip(floor(T·I/θ + 1/2), 0, T)``: the quantized ReLU
    with L = T levels and clip θ, rounding half up.

    Args:
        current: input current ``[T, B, ...]``.
        threshold: θ > 0, a scalar or a tensor broadcastable to ``[B, ...]``.
        signed: use the signed IF neuron.
    Returns:
        spikes ``[T, B, ...]`` with values in {0, 1} (or {−1, 0, 1} if signed), dtype of ``current``.
    """
    threshold = torch.as_tensor(threshold, dtype=current.dtype, device=current.device)
    membrane = (threshold * 0.5).expand_as(current[0])
    net_count = torch.zeros_like(current[0])
    spikes = torch.empty_like(current)
    for t in range(current.shape[0]):
        membrane = membrane + current[t]
        spike = (membrane >= threshold).to(current.dtype)
        if signed:
            spike = spike - ((membrane < 0) & (net_count > 0)).to(current.dtype)
            net_count = net_count + spike
        membrane = membrane - spike * threshold
        spikes[t] = spike
    return spikes
