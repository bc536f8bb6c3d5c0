"""Applying a correction to a network under tuning, keeping it if the held-out criterion improves beyond
noise (:mod:`.keep_rule`), else restoring the parameters it may have changed; and the report of each."""

import dataclasses
from collections.abc import Callable, Iterable

import torch
from torch import nn

from ..analysis import ConversionErrors, conversion_errors
from ..convert import SpikingNetwork
from ..tasks import Task
from .config import Criterion
from .keep_rule import HeldOutScore, ScoreMeter, Verdict, judge


@dataclasses.dataclass
class LayerReport:
    """What one correction did (measured on the held-out data).

    ``layer`` and ``parameters`` are paths inside the network's body, as in ``snn.neurons()``;
    ``correction`` is ``"layer-wise"``, ``"calibration"`` or ``"end-to-end"`` (layer :data:`END_TO_END`).
    ``criterion_*`` is the figure judged (task metric or agreement in [0, 1], or minus the output MSE);
    ``wins`` / ``losses`` the held-out images it improved / worsened, ``p_value`` their sign test.
    """

    layer: str
    correction: str
    parameters: list[str]  # the parameters it changed
    criterion_before: float
    criterion_after: float
    wins: int
    losses: int
    p_value: float
    layer_error_before: float | None  # mean |rate − q| / θ at this layer (None for end-to-end)
    layer_error_after: float | None
    output_error_before: float  # mean squared difference of SNN and QANN outputs
    output_error_after: float
    agreement_before: float | None  # share of held-out predictions equal to the QANN's (None without a task)
    agreement_after: float | None
    kept: bool


@dataclasses.dataclass(frozen=True)
class Measurement:
    """The held-out figures of the network under tuning: its conversion errors, its criterion score and its
    agreement with the QANN's predictions (None without a task)."""

    errors: ConversionErrors
    score: HeldOutScore
    agreement: float | None


class Judge:
    """Measures the network under tuning on the held-out batches, and applies corrections to it."""

    def __init__(
        self,
        snn: SpikingNetwork,
        qann: nn.Module,
        held_out: Iterable,
        *,
        criterion: Criterion,
        task: Task | None,
        significance: float,
        on_report: Callable[[LayerReport], None] | None,
    ):
        self.snn, self.qann, self.held_out, self.task, self.on_report = snn, qann, held_out, task, on_report
        self.criterion, self.significance = criterion, significance
        self.current = self.measure()

    def measure(self) -> Measurement:
        meter = ScoreMeter(self.criterion, self.task)  # decodes once: scores and agreement
        errors = conversion_errors(
            self.qann,
            {"snn": self.snn},
            self.held_out,
            on_batch=lambda _, output, reference, targets: meter.update(output, reference, targets),
        )
        return Measurement(errors, meter.compute(errors.output["snn"]), meter.agreement)

    def attempt(
        self, layer: str, correction: str, parameters: dict[str, nn.Parameter], apply: Callable[[], list[str]]
    ) -> None:
        """``apply()`` changes some of ``parameters`` and returns the names of those it changed; the change is
        kept only if :func:`.keep_rule.judge` says so."""
        saved = {name: p.detach().clone() for name, p in parameters.items()}
        changed = apply()
        if not changed:
            return
        after = self.measure()
        verdict = judge(self.current.score, after.score, self.significance)
        if self.on_report is not None:
            self.on_report(self._report(layer, correction, changed, after, verdict))
        if verdict.kept:
            self.current = after
        else:
            with torch.no_grad():
                for name, parameter in parameters.items():
                    parameter.copy_(saved[name])

    def _report(self, layer, correction, changed, after: Measurement, verdict: Verdict) -> LayerReport:
        before = self.current
        index = before.errors.layers.index(layer) if layer in before.errors.layers else None
        return LayerReport(
            layer=layer,
            correction=correction,
            parameters=changed,
            criterion_before=before.score.figure,
            criterion_after=after.score.figure,
            wins=verdict.wins,
            losses=verdict.losses,
            p_value=verdict.p_value,
            layer_error_before=None if index is None else before.errors.accumulating["snn"][index],
            layer_error_after=None if index is None else after.errors.accumulating["snn"][index],
            output_error_before=before.errors.output["snn"],
            output_error_after=after.errors.output["snn"],
            agreement_before=before.agreement,
            agreement_after=after.agreement,
            kept=verdict.kept,
        )
