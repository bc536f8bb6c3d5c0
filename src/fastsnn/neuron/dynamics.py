"""Integrate-and-fire dynamics, written once as a pure multi-step function."""

import torch


def if_scan(
    current: torch.Tensor, threshold: torch.Tensor | float, *, signed: bool = False, initial_membrane: float = 0.5
) -> torch.Tensor:
    """Spikes of IF neurons with soft reset driven by ``current`` over T steps.

    The membrane starts at ``initial_membrane · θ`` (θ/2 by default; classic rate-norm conversion
    uses 0). At each step ``v ← v + I(t)``; if ``v ≥ θ`` the neuron emits +1 and ``v ← v − θ``.
    With ``signed=True`` it may also take a spike back: if ``v < 0`` and its net count ``n > 0`` it
    emits −1 and ``v ← v + θ``. So ``0 ≤ n ≤ T`` always, and at most one event per step.

    For a constant input I the spike count is ``clip(floor(T·I/θ + 1/2), 0, T)``: the quantized ReLU
    with L = T levels and clip θ, rounding half up.

    Spikes carry no gradient (the input is detached); surrogate gradients are a separate concern.

    Args:
        current: input current ``[T, B, ...]``.
        threshold: θ > 0, a scalar or a tensor broadcastable to ``[B, ...]``.
        signed: use the signed IF neuron.
        initial_membrane: v0 as a fraction of θ; only 0.5 gives the rounding-half-up equivalence.
    Returns:
        spikes ``[T, B, ...]`` with values in {0, 1} (or {−1, 0, 1} if signed), dtype of ``current``, which may be
        an integer dtype (for integer currents and an even threshold: exact, as the integer network runs it).
    """
    # In-place updates of a few preallocated buffers: the scan is memory-bound, and this runs
    # about 2x (unsigned) to 3x (signed) faster than the out-of-place form on CPU.
    current = current.detach()
    threshold = torch.as_tensor(threshold, dtype=current.dtype, device=current.device)
    membrane = (threshold * initial_membrane).to(current.dtype).expand_as(current[0]).clone()  # integer dtypes too
    spikes = torch.empty_like(current)
    if signed:
        net_count = torch.zeros_like(current[0])
        retract = torch.empty_like(current[0])
        has_spikes = torch.empty_like(current[0])
    for t in range(current.shape[0]):
        membrane.add_(current[t])
        spike = spikes[t]
        torch.ge(membrane, threshold, out=spike)
        if signed:
            torch.lt(membrane, 0, out=retract)
            torch.clamp(net_count, max=1, out=has_spikes)  # n is a whole number ≥ 0: min(n, 1) = [n > 0]
            spike.addcmul_(retract, has_spikes, value=-1)
            net_count.add_(spike)
        membrane.addcmul_(spike, threshold, value=-1)
    return spikes
