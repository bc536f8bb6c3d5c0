"""``fastsnn analyze``: per-layer conversion error and activity of SNNs against their QANN on real test images."""

from collections.abc import Sequence
from pathlib import Path

import torch

from ..analysis import ActivityReport, ConversionErrors, activity, conversion_errors, plot_conversion_errors
from ..analysis.activity_plot import plot_activity
from ..atomic_file import atomic_path, write_json
from ..convert import SimulationConfig, convert
from ..errors import OptionError
from ..integer import IntegerNetwork
from .data_config import DataConfig
from .sources import dataset_of, default_device, read_compared, test_loader

ANALYSIS_DATA = DataConfig(batch_size=250, limit=1000)


def analyze_checkpoints(
    paths: Sequence[str | Path],
    *,
    simulation: SimulationConfig = SimulationConfig(),
    data: DataConfig = ANALYSIS_DATA,
    device: torch.device | None = None,
) -> tuple[ConversionErrors, dict[str, ActivityReport]]:
    """Over the first ``data.limit`` test images: :func:`~fastsnn.analysis.conversion_errors` against the
    QANN of the SNNs at ``paths`` and, when a QANN checkpoint is named, of its unsigned and signed SNNs at
    ``simulation.time_steps``; and the :func:`~fastsnn.analysis.activity` of the QANN and of each SNN,
    keyed ``"QANN"``, ``"unsigned"``, ``"signed"``, ``"signed + fine-tuned (ste)"``, ...

    The QANN is the one named, else the one an SNN checkpoint carries; with a float checkpoint among
    ``paths`` the quantization error (float ANN vs QANN) is measured too.
    """
    device = device or default_device()
    compared = read_compared(paths)
    exported = [label for label, snn in compared.snns.items() if isinstance(snn, IntegerNetwork)]
    if exported:
        raise OptionError(
            "checkpoints", f"include an exported integer network ({', '.join(exported)}), whose per-layer error is "
            "measured on the float SNN it came from; `fastsnn evaluate --activity` takes the exported file"
        )  # fmt: skip
    if compared.qann is None:
        raise OptionError("checkpoints", "name no QANN and no SNN checkpoint; the conversion error needs one")
    qann = compared.qann.to(device)
    variants = {}
    if compared.qann_given:
        T = simulation.time_steps
        variants = {"unsigned": convert(qann, signed=False, T=T), "signed": convert(qann, signed=True, T=T)}
    elif simulation.time_steps is not None:
        raise OptionError("time_steps", "applies to the SNNs of a QANN checkpoint; none was named")
    variants |= {label.removeprefix("SNN "): snn.to(device) for label, snn in compared.snns.items()}
    steps = {name: snn.T for name, snn in variants.items()}
    if len(set(steps.values())) > 1:
        raise OptionError("time_steps", f"differ between the SNNs compared ({steps}); the layers' errors need one T")
    dataset = dataset_of(compared.first.checkpoint, compared.first.path, data.dataset)
    loader = test_loader(dataset, data.data_root, batch_size=data.batch_size, limit=data.limit)
    float_model = compared.float_model.to(device) if compared.float_model is not None else None
    errors = conversion_errors(qann, variants, loader, float_model=float_model)
    return errors, {name: activity(model, loader) for name, model in {"QANN": qann, **variants}.items()}


def save_analysis(
    errors: ConversionErrors, out: str | Path, *, reports: dict[str, ActivityReport] | None = None, title: str = ""
) -> list[Path]:
    """Write ``conversion_errors.json`` / ``.png`` and, given activity ``reports``, ``activity.json`` / ``.png``
    into folder ``out``; returns the paths written."""
    out = Path(out)
    outputs = {"conversion_errors": (errors.as_dict(), plot_conversion_errors(errors, title=title))}
    if reports is not None:
        activities = {name: report.to_dict() for name, report in reports.items()}
        outputs["activity"] = (activities, plot_activity(reports, title=title))
    written = []
    for name, (record, figure) in outputs.items():
        written.append(write_json(out / f"{name}.json", record))
        with atomic_path(out / f"{name}.png") as temporary:
            figure.savefig(temporary, format="png", dpi=120)
        written.append(out / f"{name}.png")
    return written
