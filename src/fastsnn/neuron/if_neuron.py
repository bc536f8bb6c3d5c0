"""The IF neuron module: the spiking replacement of a quantized activation, and the only owner of T."""

import contextlib
from collections.abc import Iterable, Iterator
from typing import Literal

import torch
from torch import nn

from ..errors import OptionError
from ..quant.activation import QuantReLU
from .dynamics import if_scan
from .surrogate import if_scan_surrogate

Surrogate = Literal["ste", "bptt"]
SURROGATES: tuple[Surrogate, ...] = ("ste", "bptt")
SETTINGS = ("surrogate", "constant_current")  # what an IFNeuron lets change between calls (see configured)


def check_time_steps(T) -> int:
    """``T`` if it is a positive integer, else OptionError: the one check of T in the library."""
    if not isinstance(T, int) or isinstance(T, bool) or T < 1:
        raise OptionError("T", f"must be a positive integer, got {T!r}")
    return T


def over_time(values: torch.Tensor, T: int) -> torch.Tensor:
    """``[T*B, ...]`` viewed as ``[T, B, ...]``: the one place where time is unfolded from the batch.

    Raises:
        ValueError: the leading dimension is no multiple of T.
    """
    if values.dim() == 0 or values.shape[0] % T:
        raise ValueError(f"IFNeuron expects a leading dimension T*B with T={T}, got shape {tuple(values.shape)}")
    return values.reshape(T, -1, *values.shape[1:])


def repeat_over_time(values: torch.Tensor, T: int) -> torch.Tensor:
    """``[B, ...]`` -> ``[T, B, ...]``, the same at every step (stride 0 along T, no copy)."""
    return values.unsqueeze(0).expand(T, *values.shape)


def constant_over_time(by_time: torch.Tensor) -> bool:
    """Whether ``by_time [T, B, ...]`` is the same at every step (a :func:`repeat_over_time` always is)."""
    return by_time.shape[0] == 1 or by_time.stride(0) == 0 or bool((by_time == by_time[:1]).all())


class IFNeuron(nn.Module):
    """Integrate-and-fire neurons with soft reset over T steps folded into the batch.

    The only module of a spiking network that knows T: it views its input ``[T*B, ...]`` as
    ``[T, B, ...]``, runs :func:`if_scan`, and returns ``θ · spikes`` as ``[T*B, ...]``. T is fixed
    at construction (read-only), and a :class:`~fastsnn.SpikingNetwork` takes its T from its neurons.

    With ``constant_current`` set, the input is the current of one step ``[B, ...]``, the same at every
    step, and is read as its T-fold repetition: a SpikingNetwork sets it, for the duration of a call, on
    the neurons fed by its stem (the layers before any neuron, whose input under direct coding is the
    image at every step), which then runs once instead of T times.

    Spikes carry no gradient unless ``surrogate`` is set (fine-tuning sets it for the layer it tunes):
      ``"ste"``  the output keeps its value, the gradient is that of clip(mean current over T, 0, θ);
      ``"bptt"`` back-propagation through the T steps with a triangular surrogate spike gradient.

    Args:
        threshold: θ (the QANN layer's clip α), a scalar or a tensor broadcastable to ``[B, ...]``.
        T: number of time steps.
        signed: use the signed neuron that can take back spikes (corrects the sequential error).
        initial_membrane: v0 as a fraction of θ: 0.5 (Fast-SNN's equivalence) or 0 (classic rate-norm).
    """

    def __init__(self, threshold: float | torch.Tensor, T: int, *, signed: bool = True, initial_membrane: float = 0.5):
        super().__init__()
        self._T = check_time_steps(T)
        threshold = torch.as_tensor(threshold, dtype=torch.float32).detach().clone()
        if not bool((threshold > 0).all()):
            raise ValueError(f"threshold must be > 0, got {threshold}")
        if not 0 <= initial_membrane < 1:
            raise ValueError(
                f"initial_membrane must be in [0, 1) (a fraction of the threshold), got {initial_membrane!r}"
            )
        self.register_buffer("threshold", threshold)
        self.signed = signed
        self.initial_membrane = initial_membrane
        self.surrogate: Surrogate | None = None
        self.constant_current = False

    @property
    def T(self) -> int:
        """Number of time steps (fixed at construction)."""
        return self._T

    @classmethod
    def from_quant(cls, quant: QuantReLU, *, T: int | None = None, signed: bool = True) -> "IFNeuron":
        """The neuron equivalent to ``quant``: θ = α, and T = 2^b − 1 unless given."""
        return cls(quant.alpha.detach(), quant.levels if T is None else T, signed=signed)

    def forward(self, current: torch.Tensor) -> torch.Tensor:
        """Input current ``[T*B, ...]`` (``[B, ...]`` with ``constant_current``) -> output ``θ · s`` ``[T*B, ...]``."""
        by_time = self.current_over_time(current)
        options = {"signed": self.signed, "initial_membrane": self.initial_membrane}
        if self.surrogate == "bptt":
            output = if_scan_surrogate(by_time, self.threshold, **options) * self.threshold
        else:
            output = if_scan(by_time, self.threshold, **options).mul_(self.threshold)
        if self.surrogate == "ste":
            smooth = by_time.mean(0).clamp(min=torch.zeros_like(self.threshold), max=self.threshold)  # [B, ...]
            output = smooth + (output - smooth).detach()  # value θ·s(t), gradient of clip(mean current, 0, θ)
        return output.reshape(-1, *output.shape[2:])

    def current_over_time(self, current: torch.Tensor) -> torch.Tensor:
        """The input current as ``[T, B, ...]``: ``[T*B, ...]`` unfolded, or with ``constant_current`` the one
        step ``[B, ...]`` repeated (:func:`repeat_over_time`)."""
        return repeat_over_time(current, self.T) if self.constant_current else over_time(current, self.T)

    def average_over_time(self, values: torch.Tensor) -> torch.Tensor:
        """``[T*B, ...]`` -> ``[B, ...]`` mean over the T steps: of the output, the neuron's rate."""
        return over_time(values, self.T).mean(0)

    def extra_repr(self) -> str:
        threshold = (
            f"{self.threshold.item():.4g}" if self.threshold.numel() == 1 else f"<{tuple(self.threshold.shape)}>"
        )
        membrane = "" if self.initial_membrane == 0.5 else f", initial_membrane={self.initial_membrane:g}"
        return f"threshold={threshold}, T={self.T}, signed={self.signed}{membrane}"


@contextlib.contextmanager
def configured(neurons: Iterable[IFNeuron], **settings) -> Iterator[None]:
    """Within the block every neuron of ``neurons`` has the given settings (``surrogate``, ``constant_current``);
    afterwards they are as they were.

    Raises:
        ValueError: a setting that is not one of :data:`SETTINGS` (named).
    """
    unknown = sorted(set(settings) - set(SETTINGS))
    if unknown:
        raise ValueError(f"unknown IFNeuron setting(s) {', '.join(unknown)}; the settings are {', '.join(SETTINGS)}")
    neurons = list(neurons)
    before = [{name: getattr(neuron, name) for name in settings} for neuron in neurons]
    for neuron in neurons:
        for name, value in settings.items():
            setattr(neuron, name, value)
    try:
        yield
    finally:
        for neuron, values in zip(neurons, before, strict=True):
            for name, value in values.items():
                setattr(neuron, name, value)
