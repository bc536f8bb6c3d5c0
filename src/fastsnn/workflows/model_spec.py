"""ModelSpec: the recipe that rebuilds a model (registry name and options, bits, spiking settings)."""

import dataclasses

from torch import nn

from ..convert import convert
from ..data import dataset_info
from ..errors import CheckpointError, DataError
from ..models import create_model, model_task
from ..neuron import check_time_steps
from ..quant import check_bits, check_weight_bits, quantize
from ..tasks import TASKS, Task, create_task


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """What rebuilds a model: registry name and options, activation / weight bits (None = float),
    and for a spiking network its simulation settings ``snn = {"T": int, "signed": bool}``."""

    name: str
    num_classes: int
    in_channels: int
    options: dict = dataclasses.field(default_factory=dict)
    bits: int | None = None
    weight_bits: int | None = None
    snn: dict | None = None

    def build(self) -> nn.Module:
        """A fresh model of this spec (quantized if ``bits`` is set, converted if ``snn``), untrained."""
        model = create_model(self.name, num_classes=self.num_classes, in_channels=self.in_channels, **self.options)
        if self.bits is not None:
            model = quantize(model, self.bits, weight_bits=self.weight_bits)
        if self.snn is not None:
            model = convert(model, **self.snn)
        return model

    def with_bits(self, bits: int | None) -> "ModelSpec":
        return dataclasses.replace(self, bits=bits)

    @property
    def task(self) -> Task:
        """The task of the model's output (its loss, decoding and metrics)."""
        name = model_task(self.name)
        options = {key: self.options[key] for key in TASKS[name].model_options if key in self.options}
        return create_task(name, num_classes=self.num_classes, **options)

    def check_dataset(self, dataset: str) -> None:
        """Raise :class:`DataError` unless data set ``dataset`` serves this model's task with its input
        channels and classes."""
        info = dataset_info(dataset)
        if info.task != self.task.name:
            raise DataError(
                f"data set {dataset} is a {info.task} data set, but model {self.name} is a {self.task.name} model; "
                "pass a data set of its task"
            )
        if (info.in_channels, info.num_classes) != (self.in_channels, self.num_classes):
            raise DataError(
                f"data set {dataset} has {info.in_channels} channel(s) and {info.num_classes} classes, but model "
                f"{self.name} takes {self.in_channels} channel(s) and predicts {self.num_classes} classes; "
                "pass the data set it was trained on"
            )

    def check_same_network(self, other: "ModelSpec", what: str) -> None:
        """Raise :class:`CheckpointError` unless ``other`` is the same network (bit widths aside)."""
        if dataclasses.replace(other, bits=None, weight_bits=None, snn=None) != dataclasses.replace(
            self, bits=None, weight_bits=None, snn=None
        ):
            raise CheckpointError(
                f"{what} is a different network ({other.name}, {other.options}) than {self.name}, {self.options}"
            )


def spec_from_json(fields) -> ModelSpec:
    """A ModelSpec from JSON-like ``fields`` whose every field has a valid type and range, else ValueError."""
    if not isinstance(fields, dict):
        raise ValueError("spec is not a JSON object")
    spec = ModelSpec(**fields)
    checks = {
        "name": isinstance(spec.name, str),
        "num_classes": _is_int(spec.num_classes) and spec.num_classes >= 1,
        "in_channels": _is_int(spec.in_channels) and spec.in_channels >= 1,
        "options": isinstance(spec.options, dict),
        "bits": spec.bits is None or _passes(check_bits, spec.bits),
        "weight_bits": spec.weight_bits is None or _passes(check_weight_bits, spec.weight_bits),
        "snn": spec.snn is None
        or (
            isinstance(spec.snn, dict)
            and spec.snn.keys() == {"T", "signed"}
            and _passes(check_time_steps, spec.snn["T"])
            and isinstance(spec.snn["signed"], bool)
        ),
    }
    bad = [name for name, ok in checks.items() if not ok]
    if bad:
        raise ValueError(f"spec field(s) {', '.join(bad)} invalid: {fields}")
    return spec


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _passes(check, value) -> bool:
    """Whether the library's ``check`` (e.g. :func:`~fastsnn.quant.check_bits`) accepts ``value``."""
    try:
        check(value)
    except ValueError:
        return False
    return True
