"""SpikingJelly, the peer the benchmarks compare with: imported on demand (it is no fastsnn dependency), its
``ann2snn`` converter, and its single-step and multi-step simulations of T steps under direct input coding
(the image is the input at every step; the output is summed over the steps)."""

import contextlib
import copy
import dataclasses
import io
from collections.abc import Iterable, Iterator
from importlib import metadata
from types import ModuleType

import torch
from torch import nn

VERSION = "2.0.0"  # the version the benchmarks were written for
INSTALL = f"pip install --no-deps spikingjelly=={VERSION} && pip install loguru requests"
RECIPES = ("RateCoding max", "RateCoding 99.9%", "LocalThresholdBalancing")


@dataclasses.dataclass(frozen=True)
class SpikingJelly:
    """SpikingJelly's modules that the benchmarks use, and its installed version."""

    ann2snn: ModuleType
    functional: ModuleType
    neuron: ModuleType
    version: str

    def convert(self, float_model: nn.Module, recipe: str, calibration: Iterable, *, progress: bool = False):
        """SpikingJelly's SNN (single-step mode, eval mode, CPU) of a copy of ``float_model``.

        Args:
            recipe: one of :data:`RECIPES`: ``RateCodingRecipe(mode="max" | "99.9%")`` (layer-wise thresholds,
                soft reset, v0 = 0) or ``LocalThresholdBalancingRecipe`` (channel-wise thresholds).
            calibration: batches ``(images [B, C, H, W], ...)`` that set the thresholds.
            progress: show SpikingJelly's calibration progress bar.
        """
        recipes = {
            "RateCoding max": lambda: self.ann2snn.RateCodingRecipe(dataloader=calibration, mode="max"),
            "RateCoding 99.9%": lambda: self.ann2snn.RateCodingRecipe(dataloader=calibration, mode="99.9%"),
            "LocalThresholdBalancing": lambda: self.ann2snn.LocalThresholdBalancingRecipe(dataloader=calibration),
        }
        if recipe not in recipes:
            raise ValueError(f"recipe must be one of {', '.join(RECIPES)}, got {recipe!r}")
        converter = self.ann2snn.Converter(recipe=recipes[recipe](), device="cpu")
        quiet = contextlib.nullcontext() if progress else contextlib.redirect_stderr(io.StringIO())
        with quiet:
            return converter.convert(copy.deepcopy(float_model).cpu()).eval()

    def multi_step_copy(self, net: nn.Module) -> nn.Module:
        """A copy of ``net`` in multi-step mode: it takes ``[T, B, ...]`` and returns ``[T, B, ...]``."""
        multi = copy.deepcopy(net)
        self.functional.set_step_mode(multi, "m")
        return multi

    @torch.no_grad()
    def single_step_sums(self, net: nn.Module, x: torch.Tensor, T: int) -> Iterator[torch.Tensor]:
        """The output of single-step ``net`` on image ``x [B, ...]`` summed over steps 1..t, for t = 1..T.

        The state is reset before the first step; the network is causal, so the sum after t steps is the
        output of a T = t simulation.
        """
        self.functional.reset_net(net)
        total = None
        for _ in range(T):
            out = net(x)
            total = out if total is None else total + out
            yield total

    def single_step(self, net: nn.Module, x: torch.Tensor, T: int) -> torch.Tensor:
        """``[B, classes]``: single-step ``net`` on ``x [B, ...]`` for T steps (a Python loop), summed."""
        *_, total = self.single_step_sums(net, x, T)
        return total

    @torch.no_grad()
    def multi_step(self, multi: nn.Module, x: torch.Tensor, T: int) -> torch.Tensor:
        """``[B, classes]``: multi-step ``multi`` (:meth:`multi_step_copy`) on ``x`` repeated ``[T, B, ...]``, summed
        (the state reset first)."""
        self.functional.reset_net(multi)
        return multi(x.unsqueeze(0).expand(T, *x.shape)).sum(0)


def require_spikingjelly() -> SpikingJelly:
    """SpikingJelly, or SystemExit saying why it cannot be imported and how to install it."""
    try:
        from spikingjelly.activation_based import ann2snn, functional, neuron
    except ImportError as error:
        raise SystemExit(
            f"SpikingJelly's ann2snn converter cannot be imported ({error}); install SpikingJelly {VERSION} next to "
            f"the pinned torch with `{INSTALL}` (--no-deps: its declared torchaudio, scipy, tensorboard are unused)"
        ) from None
    version = metadata.version("spikingjelly")
    if version != VERSION:
        print(f"warning: SpikingJelly {version} is installed; the benchmarks were written for {VERSION}")
    return SpikingJelly(ann2snn, functional, neuron, version)


def find_spikingjelly(skipped: str) -> SpikingJelly | None:
    """SpikingJelly if it can be imported; else None, after saying why and that ``skipped`` is skipped."""
    try:
        return require_spikingjelly()
    except SystemExit as missing:
        print(f"{missing}\n{skipped} skipped")
        return None
