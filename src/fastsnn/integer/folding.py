"""Currents that are still real-valued, and how they are made integer.

Between two layers of neurons a spiking network computes a current: a sum of terms, each a convolution, a
linear layer or a per-channel factor applied to an integer value (spikes, the quantized image, a pooled count),
plus a bias; BatchNorm in eval mode is an affine map per channel and folds into the terms and the bias. A
:class:`Current` holds such a sum with real coefficients. :func:`make_integer` chooses the unit of each output
channel, rounds the coefficients to integers of ``weight_bits`` bits in that unit and emits the ops that compute
the sum in integers.

The unit ``k_c`` of channel c: where the current feeds a neuron of threshold θ_c, ``k_c = θ_c / Θ_c`` with the
integer threshold Θ_c even (so Θ_c / 2, the initial membrane, is whole) and as large as the weights allow (the
largest coefficient of the channel divided by k_c fits ``2^(weight_bits−1) − 1``): the neuron then runs on integers
with exactly the float neuron's threshold, and only the rounding of weights and bias differs. Where the current
is an output or feeds another weighted layer, ``k_c`` is the largest coefficient over ``2^(weight_bits−1) − 1``.
"""

import dataclasses

import torch

REACH = 2**30  # the most a membrane may reach: half of int32, a margin for the rounding of weights and bias


@dataclasses.dataclass(frozen=True)
class IntegerValue:
    """An op's integer result ``X [S, B, *shape]`` and its meaning: channel c stands for ``unit[c] · X[c]``.

    ``unit``: ``[C]`` float64; ``timed``: S = T (else S = 1, the same at every step); ``bound``: max |X|.
    """

    name: str
    unit: torch.Tensor
    shape: tuple[int, ...]
    timed: bool
    bound: int


@dataclasses.dataclass(frozen=True)
class Term:
    """One summand of a current: ``kind`` ("conv2d", "linear" or "scale") applied to ``source``.

    ``coefficient``: the real weights, already multiplied by the source's unit per input channel (conv
    ``[O, I/groups, kh, kw]``, linear ``[O, I]``, scale ``[C]``); ``attrs``: the conv's stride, padding, dilation,
    groups.
    ``origin``: the module path the term came from (names the op).
    """

    kind: str
    source: IntegerValue
    coefficient: torch.Tensor
    attrs: dict
    origin: str

    def largest(self) -> torch.Tensor:
        """``[O]``: the largest |coefficient| of each output channel."""
        return self.coefficient.abs().reshape(len(self.coefficient), -1).amax(1)


@dataclasses.dataclass(frozen=True)
class Current:
    """A real-valued current ``Σ terms + bias``: per-sample ``shape`` (channel first), ``bias [C]`` float64."""

    terms: tuple[Term, ...]
    bias: torch.Tensor
    shape: tuple[int, ...]

    @classmethod
    def of(cls, value: IntegerValue, origin: str) -> "Current":
        """An integer value as a current: one per-channel factor, its unit."""
        return cls((Term("scale", value, value.unit.clone(), {}, origin),), torch.zeros_like(value.unit), value.shape)

    @property
    def timed(self) -> bool:
        return any(term.source.timed for term in self.terms)

    def __add__(self, other: "Current") -> "Current":
        return Current(self.terms + other.terms, self.bias + other.bias, self.shape)

    def affine(self, multiplier: torch.Tensor, shift: torch.Tensor) -> "Current":
        """``multiplier[c] · current[c] + shift[c]`` (BatchNorm in eval mode)."""
        terms = tuple(
            dataclasses.replace(t, coefficient=t.coefficient * multiplier.reshape(-1, *[1] * (t.coefficient.dim() - 1)))
            for t in self.terms
        )
        return Current(terms, self.bias * multiplier + shift, self.shape)


def integer_threshold(current: Current, threshold: torch.Tensor, max_weight: int, T: int) -> torch.Tensor:
    """``[C]`` int64: the largest even Θ_c ≥ 2 with every coefficient · Θ_c / θ_c within ±max_weight and the
    membrane within :data:`REACH` (it stays below Θ + T·max|current|)."""
    ratio = max_weight * threshold / _largest(current).clamp_min(1e-300)
    reach = REACH / (1 + T * _reach(current) / threshold)
    return (2 * torch.floor(torch.minimum(ratio, reach) / 2)).clamp_min(2).to(torch.int64)


def free_unit(current: Current, max_weight: int) -> torch.Tensor:
    """``[C]``: the unit in which the largest coefficient of each channel is ``max_weight``, and the current stays
    within :data:`REACH`."""
    return torch.maximum(_largest(current) / max_weight, _reach(current) / REACH).clamp_min(1e-300)


def _largest(current: Current) -> torch.Tensor:
    """``[C]``: the largest |coefficient| of each channel over the terms."""
    return torch.stack([term.largest() for term in current.terms]).amax(0)


def _reach(current: Current) -> torch.Tensor:
    """``[C]``: the largest |current| of each channel (Σ |coefficient| · the source's bound, plus |bias|)."""
    total = current.bias.abs()
    for term in current.terms:
        total = total + term.coefficient.abs().reshape(len(term.coefficient), -1).sum(1) * term.source.bound
    return total


def rounded(coefficient: torch.Tensor, unit: torch.Tensor, max_weight: int) -> tuple[torch.Tensor, int]:
    """Coefficients in ``unit`` (per output channel) rounded to integers in ±max_weight, and how many were clipped."""
    exact = coefficient / unit.reshape(-1, *[1] * (coefficient.dim() - 1))
    integers = torch.round(exact)
    clipped = int((integers.abs() > max_weight).sum())
    return integers.clamp(-max_weight, max_weight).to(torch.int64), clipped
