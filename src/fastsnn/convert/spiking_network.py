"""SpikingNetwork: runs a converted body on T time steps folded into the batch."""

import torch
from torch import nn

from ..errors import ConversionError
from ..neuron import IFNeuron, SpikingMaxPool, configured, over_time, repeat_over_time
from .simulation_plan import SimulationPlan


class SpikingNetwork(nn.Module):
    """A QANN body whose quantized activations are IF neurons, simulated for T steps.

    Direct coding: the image is the input current at every step. Time is folded into the batch,
    so every stateless layer runs once on all steps, and only the neurons know T::

        x [B, ...] -> repeated T times [T*B, ...] -> body -> mean over T -> [B, ...]

    The last step is the readout: whatever follows the last neuron is averaged over T, so outputs are
    on the QANN's scale. Outputs may be a tensor or a (nested) tuple / list / dict of tensors with batch
    dimension first.

    How a batch is simulated is planned once per input shape (:meth:`plan`, a :class:`SimulationPlan`):
    the stem (the layers before any neuron) runs once on ``[B, ...]`` instead of T times, and without
    autograd a batch runs in chunks along B that fit the CPU caches and free memory; with autograd, a
    batch too large for free memory is refused, naming a batch size that fits. Neither changes a spike.

    T is the neurons' (all must agree); BatchNorm always runs in eval mode (running statistics),
    also after ``.train()``, because batch statistics over ``T*B`` would mix time steps.

    Raises:
        ConversionError: the body has no IF neuron, or its neurons disagree on T.
    """

    def __init__(self, body: nn.Module):
        super().__init__()
        self.body = body
        _shared_time_steps(self.body)
        self._plans: dict[tuple, SimulationPlan] = {}  # (image shape, dtype, device) -> how to simulate it

    @property
    def T(self) -> int:
        """Number of simulated time steps: that of every IF neuron in the body."""
        return _shared_time_steps(self.body)

    def neurons(self) -> list[tuple[str, IFNeuron]]:
        """``(path, neuron)`` for every IF neuron, in module-definition order."""
        return [(name, m) for name, m in self.body.named_modules() if isinstance(m, IFNeuron)]

    def train(self, mode: bool = True) -> "SpikingNetwork":
        super().train(mode)
        for module in self.body.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.eval()
        return self

    def forward(self, x: torch.Tensor):
        """``x [B, ...]`` -> body output averaged over T (same structure as the QANN's output).

        :meth:`simulate` on each chunk of the batch that the plan makes (:meth:`plan`), outputs joined.
        """
        return join_batches([self.simulate(part) for part in self.plan(x).split(x)])

    def simulate(self, x: torch.Tensor):
        """``x [B, ...]`` in one call of the body: x repeated T times ``[T*B, ...]`` -> body -> mean over T.

        Where the plan runs the stem once, the body gets ``x`` itself, and the neurons the stem feeds
        read their current as T equal steps (:attr:`IFNeuron.constant_current`, set for the call).
        """
        T, plan = self.T, self.plan(x)
        with configured([self.body.get_submodule(path) for path in plan.stem_fed], constant_current=True):
            current = x if plan.stem_once else repeat_over_time(x, T).reshape(T * x.shape[0], *x.shape[1:])
            return mean_over_time(self.body(current), T, x.shape[0])

    def plan(self, x: torch.Tensor) -> SimulationPlan:
        """How inputs shaped like ``x [B, ...]`` are simulated: made at the first call for their image shape,
        dtype and device (:meth:`SimulationPlan.measure`), then kept."""
        key = (tuple(x.shape[1:]), x.dtype, x.device)
        if key not in self._plans:
            self._plans[key] = SimulationPlan.measure(self.body, self.T, x)
        return self._plans[key]

    def extra_repr(self) -> str:
        return f"T={self.T}"


def _shared_time_steps(body: nn.Module) -> int:
    """The T that the IF neurons and spiking max-pools of ``body`` share; ConversionError naming each one's T if
    there is no single one or no neuron."""
    timed = [(path, m) for path, m in body.named_modules() if isinstance(m, (IFNeuron, SpikingMaxPool))]
    steps = {module.T for _, module in timed}
    if len(steps) != 1 or not any(isinstance(module, IFNeuron) for _, module in timed):
        found = ", ".join(f"{path}: T={module.T}" for path, module in timed) or "no IF neuron"
        raise ConversionError(
            f"a SpikingNetwork needs IF neurons (and spiking max-pools) that all share one T; found {found}"
        )
    return steps.pop()


def mean_over_time(output, T: int, batch: int):
    """The readout: ``[T*B, ...]`` tensors averaged over T to ``[B, ...]``, through tuples, lists and dicts.

    A ``[B, ...]`` tensor (reached by no neuron from a stem run once, so the same at every step) is its own mean.
    """
    if isinstance(output, torch.Tensor):
        rows = output.shape[0] if output.dim() > 0 else None
        if rows == batch:
            return output
        if rows != T * batch:
            raise ValueError(
                f"SpikingNetwork expects outputs with T*B = {T * batch} (or B = {batch}) rows, "
                f"got shape {tuple(output.shape)}"
            )
        return over_time(output, T).mean(0)
    if isinstance(output, dict):
        return {key: mean_over_time(value, T, batch) for key, value in output.items()}
    if isinstance(output, (tuple, list)):
        return _same_sequence(output, [mean_over_time(value, T, batch) for value in output])
    raise TypeError(f"SpikingNetwork cannot average an output of type {type(output).__name__} over time")


def join_batches(outputs: list):
    """Outputs of consecutive parts of a batch joined along the batch dimension, through tuples, lists and dicts."""
    first = outputs[0]
    if len(outputs) == 1:
        return first
    if isinstance(first, torch.Tensor):
        return torch.cat(outputs)
    if isinstance(first, dict):
        return {key: join_batches([o[key] for o in outputs]) for key in first}
    return _same_sequence(first, [join_batches(list(parts)) for parts in zip(*outputs, strict=True)])


def _same_sequence(like: tuple | list, values: list):
    """``values`` in a sequence of ``like``'s type: a list, a tuple, or a named tuple (built field by field)."""
    return type(like)(*values) if hasattr(like, "_fields") else type(like)(values)
