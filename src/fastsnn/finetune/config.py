"""The options of :func:`fastsnn.finetune`, declared once (the CLI and checkpoints derive from them)."""

import dataclasses
from typing import Literal

from ..neuron import Surrogate
from ..options import Options, option

Criterion = Literal["task", "agreement", "mse"]
EndToEndLoss = Literal["task", "qann", "task+qann"]


@dataclasses.dataclass(frozen=True)
class FinetuneConfig(Options):
    """How a converted SNN is corrected (defaults: benchmarks/accuracy.py's ablation)."""

    objective: Surrogate = option(
        "ste", "layer-wise surrogate gradient: ste (the paper's straight-through objective) or bptt (through T steps)"
    )
    steps_per_layer: int = option(100, "layer-wise Adam steps per spiking layer (0: none)", low=0, flags=("--steps",))
    lr: float = option(1e-3, "layer-wise Adam learning rate", low=0, low_open=True)
    calibrate: bool = option(
        False,
        "also shift each layer's per-channel bias by its mean error, measured on the first training batches "
        "(kept on held-out data, it lowered test agreement by 0.09-0.22 pp in benchmarks/fidelity.py)",
    )
    calibration_rounds: int = option(3, "measure-and-shift rounds of the calibration per layer", low=1)
    calibration_batches: int = option(4, "training batches on which calibration measures each layer's error", low=1)
    end_to_end_steps: int = option(
        200, "steps of end-to-end training of all spiking layers through all T steps at the end (0: none)", low=0
    )
    end_to_end_lr: float = option(1e-4, "Adam learning rate of the end-to-end phase", low=0, low_open=True)
    end_to_end_objective: Surrogate = option("bptt", "surrogate gradient of the end-to-end phase")
    end_to_end_loss: EndToEndLoss = option(
        "task+qann",
        "loss of the end-to-end phase: the task's own loss on the labels (task), the outputs' squared difference "
        "to the QANN's (qann), or both",
    )
    criterion: Criterion = option(
        "task",
        "what a correction must improve on the held-out images: the task's metric on their labels (task), the "
        "agreement of predictions with the QANN's (agreement), or the outputs' squared difference to the QANN's (mse)",
    )
    significance: float = option(
        0.05,
        "a correction is kept only if it improved more held-out images than it worsened, beyond chance at this "
        "one-sided sign-test level (1: any gain of the held-out figure)",
        low=0,
        high=1,
        low_open=True,
    )
