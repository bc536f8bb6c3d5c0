"""What benchmarks/fidelity.py measures: the fine-tuning variants of the ablation (each a ``FinetuneConfig``
and a tuning batch size), the runs (data set, model, bits and the variants measured there), and the named
presets, each the whole set of runs behind one results JSON, so that one command rebuilds it."""

import dataclasses
from pathlib import Path

from fastsnn.finetune import FinetuneConfig
from fastsnn.quant import levels

RESULTS = Path(__file__).parent / "results"
MODELS = {
    "vgg11": 0.25,
    "resnet8": 1.0,
    "resnet20": 0.5,
    "deeplab_vgg9": 0.25,
    "tiny_yolov2": 0.25,
    "yolov2_resnet34": 0.25,
}  # registry name -> width multiplier
AIM = 99.5  # agreement with the QANN, % (the fidelity issue's target at T = 3, 7, 15)


@dataclasses.dataclass(frozen=True)
class Variant:
    """One way to fine-tune the signed SNN: :func:`fastsnn.finetune`'s config and the tuning batch size."""

    config: FinetuneConfig
    batch: int

    @property
    def images_per_layer(self) -> int:
        return self.config.steps_per_layer * self.batch

    @property
    def end_to_end_images(self) -> int:
        return self.config.end_to_end_steps * self.batch

    def record(self) -> dict:
        """The JSON record: the batch and every field of the config."""
        return {"batch": self.batch, **dataclasses.asdict(self.config)}

    @classmethod
    def from_record(cls, record: dict) -> "Variant":
        """The variant a JSON record describes; fields it lacks (older records listed only the options that
        differed) take ``FinetuneConfig``'s defaults."""
        options = dict(record)
        batch = options.pop("batch")
        return cls(FinetuneConfig(**options), batch)


# The ablation: each variant adds one thing to the one before. Measured before the accuracy issue, with the
# fine-tuning of that time: its options are pinned here (no end-to-end phase unless named, any gain of the figure
# kept, the end-to-end phase towards the QANN's outputs); that keep rule's tie-break by the output MSE is gone.
EARLIER = {"end_to_end_steps": 0, "significance": 1.0, "end_to_end_loss": "qann"}
VARIANTS = {
    "layer-wise 30×32, MSE": Variant(FinetuneConfig(**EARLIER, steps_per_layer=30, criterion="mse"), batch=32),
    "layer-wise 100×64, MSE": Variant(FinetuneConfig(**EARLIER, steps_per_layer=100, criterion="mse"), batch=64),
    "+ agreement criterion": Variant(FinetuneConfig(**EARLIER, steps_per_layer=100, criterion="agreement"), batch=64),
    "+ agreement criterion, 400×128": Variant(
        FinetuneConfig(**EARLIER, steps_per_layer=400, criterion="agreement"), batch=128
    ),  # ≈ 1 epoch/layer
    "+ calibration": Variant(FinetuneConfig(**EARLIER, steps_per_layer=100, calibrate=True, criterion="agreement"), 64),
    "+ end-to-end": Variant(
        FinetuneConfig(
            **EARLIER | {"end_to_end_steps": 120}, steps_per_layer=100, calibrate=True, criterion="agreement"
        ),
        batch=64,
    ),
}
DEFAULT = "+ agreement criterion"
ABLATION = tuple(name for name in VARIANTS if name != "+ agreement criterion, 400×128")
LONG_VARIANTS = ("layer-wise 30×32, MSE", DEFAULT)  # measured at T > 3 unless told otherwise


@dataclasses.dataclass(frozen=True)
class Run:
    """One block of the fidelity table: a data set, a model, the QANN's activation bits (its SNN runs
    T = 2^bits − 1 steps) and the fine-tuning variants measured on that SNN."""

    dataset: str
    model: str
    bits: int
    variants: tuple[str, ...]

    @property
    def T(self) -> int:
        return levels(self.bits)

    def __str__(self) -> str:
        return f"{self.dataset} {self.model} T={self.T}"


@dataclasses.dataclass(frozen=True)
class Preset:
    """The runs behind one results JSON and the option values they were measured with (defaults of
    fidelity.py's options: the command line still overrides them, e.g. ``--json`` for a trial elsewhere)."""

    runs: tuple[Run, ...]
    options: dict


def cartesian(
    datasets: list[str], models: list[str], bits: list[int], variants: list[str], long_variants: list[str]
) -> list[Run]:
    """Every data set for every model (the VGG first: an interrupted benchmark keeps the cheaper half), each
    bit width; ``variants`` at the smallest bit width (the ablation at T = 3), ``long_variants`` at the others."""
    return [
        Run(dataset, model, b, tuple(variants if b == min(bits) else long_variants))
        for model in models
        for dataset in datasets
        for b in sorted(bits)
    ]


def cpu_runs() -> tuple[Run, ...]:
    """benchmarks/results/fidelity_cpu.json: VGG-11 and ResNet-8 on MNIST and Fashion-MNIST; at T = 3 the
    ablation (and on Fashion-MNIST the one-epoch budget), at T = 7 and 15 the previous benchmark's variant,
    the default and calibration."""
    runs = []
    for model in ("vgg11", "resnet8"):
        for dataset in ("mnist", "fashion-mnist"):
            budget = ("+ agreement criterion, 400×128",) if dataset == "fashion-mnist" else ()
            runs.append(Run(dataset, model, 2, ABLATION + budget))
            runs += [Run(dataset, model, b, (*LONG_VARIANTS, "+ calibration")) for b in (3, 4)]
    return tuple(runs)


PRESETS = {
    "cpu": Preset(
        cpu_runs(),
        {
            "long_test_limit": 1000,
            "json": RESULTS / "fidelity_cpu.json",
            "markdown": RESULTS / "fidelity_cpu.md",
            "plots": RESULTS / "fidelity_cpu",
        },
    ),
}
