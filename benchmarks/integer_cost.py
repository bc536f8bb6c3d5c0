"""What integerizing costs: the integer SNN against the float SNN and the QANN, at several weight widths.

For each run of a demo (``fastsnn demo``: classification, segmentation, detection), its fine-tuned SNN is
exported with ``fastsnn export`` at each ``--weight-bits`` and evaluated on the whole test set, in one pass
with the QANN and the float SNN: the task metric of each, the agreement of each integer SNN with the float
SNN and with the QANN (images; pixels for segmentation), the share of test predictions the integer SNN
changes against the float SNN (the aim: at most 0.5 % at 8 bits), synaptic operations per image
(``fastsnn.integer.activity.integer_activity``: the rules of ``fastsnn.analysis.activity``, which counts the float
SNN's),
the file size, and the time of one pass over the test set against the float SNN's. For scale, rows of the float
SNN with its weights multiplied by 1 + ε·N(0, 1) (``--noise``): how far a perturbation of rounding's size moves
the predictions of the float network itself.

    fastsnn demo && fastsnn demo --task segmentation && fastsnn demo --task detection   # the runs
    python benchmarks/integer_cost.py             # records benchmarks/results/integer_cost.json and .md
"""

import argparse
import time
from copy import deepcopy
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader

from fastsnn.analysis import activity
from fastsnn.convert import SimulationConfig
from fastsnn.integer import IntegerConfig
from fastsnn.integer.activity import integer_activity
from fastsnn.workflows.export import export_checkpoint
from fastsnn.workflows.sources import dataset_of, spiking_pair, test_loader
from harness import environment, write_json

RUNS = ("runs/demo", "runs/demo-segmentation", "runs/demo-detection")
SNN_FILE = "q2-snn-finetuned.safetensors"
ACTIVITY_IMAGES = 200


def timed_predictions(model, loader, task) -> tuple[list[torch.Tensor], float]:
    """The decoded predictions of every test batch, and the seconds the model took for them."""
    predictions, seconds = [], 0.0
    with torch.no_grad():
        model(next(iter(loader))[0])  # warm-up: the first call plans the simulation and allocates
        for images, _ in loader:
            start = time.perf_counter()
            output = model(images)
            seconds += time.perf_counter() - start
            predictions.append(task.decode(output))
    return predictions, seconds


def perturbed(snn, size: float):
    """A copy of ``snn`` whose conv and linear weights are multiplied by 1 + size·N(0, 1) (seeded)."""
    generator = torch.Generator().manual_seed(0)
    copy = deepcopy(snn)
    with torch.no_grad():
        for module in copy.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                module.weight.mul_(1 + size * torch.randn(module.weight.shape, generator=generator))
    return copy


def measure_run(run: Path, weight_bits: list[int], noise: list[float], out: Path) -> list[dict]:
    path = run / SNN_FILE
    checkpoint, snn, qann = spiking_pair(path, SimulationConfig())
    task, dataset = checkpoint.spec.task, dataset_of(checkpoint, path, None)
    loader = test_loader(dataset, None, batch_size=250)
    snn.eval()
    qann.eval()
    models = {"QANN": qann, "float SNN": snn}
    for size in noise:  # how much a float perturbation of rounding's size moves the predictions
        models[f"float SNN, weights x (1 + {size:g} N(0, 1))"] = perturbed(snn, size)
    files = {}
    for bits in weight_bits:
        files[bits] = out / f"{run.name}-w{bits}.isnn.safetensors"
        models[f"integer SNN {bits}-bit"] = export_checkpoint(path, files[bits], IntegerConfig(weight_bits=bits)).eval()
    predictions, seconds = {}, {}
    for name, model in models.items():
        predictions[name], seconds[name] = timed_predictions(model, loader, task)
        print(f"  {run.name}: {name} {seconds[name]:.1f} s", flush=True)
    targets = [targets for _, targets in loader]
    sample = next(iter(DataLoader(loader.dataset, batch_size=ACTIVITY_IMAGES)))[0]
    float_sops = activity(snn, [sample]).total.sops
    rows = []
    for name in models:
        meter = task.meter()
        versus = {reference: task.agreement_meter() for reference in ("QANN", "float SNN")}
        for index, target in enumerate(targets):
            meter.update(predictions[name][index], target)
            for reference, agreement in versus.items():
                agreement.update(predictions[name][index], predictions[reference][index])
        bits = next((b for b in weight_bits if name == f"integer SNN {b}-bit"), None)
        row = {
            "run": run.name,
            "task": task.name,
            "dataset": dataset,
            "model": name,
            "weight_bits": bits,
            "metric": task.metrics[0],
            **{key: 100 * float(value) for key, value in meter.compute().items()},  # percent
            "agreement_with_qann": 100 * float(versus["QANN"].compute()["agreement"]),
            "agreement_with_float_snn": 100 * float(versus["float SNN"].compute()["agreement"]),
            "seconds": seconds[name],
            "seconds_vs_float_snn": seconds[name] / seconds["float SNN"],
            "sops_per_image": float_sops if name == "float SNN" else None,
            "file_bytes": None,
        }
        if bits is not None:
            row["sops_per_image"] = integer_activity(models[name], [sample]).total.sops
            row["file_bytes"] = files[bits].stat().st_size
        rows.append(row)
    return rows


def markdown(rows: list[dict]) -> str:
    lines = [
        "| run | model | metric | agreement with float SNN | with QANN | SOPs / image | file | time vs float SNN |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        metric = row["metric"]
        size = f"{row['file_bytes'] / 1024:.0f} KiB" if row["file_bytes"] else ""
        sops = f"{row['sops_per_image'] / 1e6:.2f} M" if row["sops_per_image"] else ""
        lines.append(
            f"| {row['run']} | {row['model']} | {metric} {row[metric]:.2f} | {row['agreement_with_float_snn']:.2f} "
            f"| {row['agreement_with_qann']:.2f} | {sops} | {size} | {row['seconds_vs_float_snn']:.2f} |"
        )
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=Path, nargs="+", default=[Path(run) for run in RUNS])
    parser.add_argument("--weight-bits", type=int, nargs="+", default=[8, 6, 4, 16])
    parser.add_argument("--noise", type=float, nargs="*", default=[1e-5, 1e-4], help="relative weight noise rows")
    parser.add_argument("--files", type=Path, default=Path("benchmarks/runs/integer"), help="exported files")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "integer_cost.json")
    args = parser.parse_args()
    missing = [str(run / SNN_FILE) for run in args.runs if not (run / SNN_FILE).is_file()]
    if missing:
        raise SystemExit(f"missing {', '.join(missing)}: run the demos first (see the docstring)")
    rows = []
    for run in args.runs:
        rows += measure_run(run, args.weight_bits, args.noise, args.files)
        write_json(args.out, {"environment": environment(torch.device("cpu")), "rows": rows})
    args.out.with_suffix(".md").write_text(markdown(rows))
    print(markdown(rows))
    print(f"recorded in {args.out}")


if __name__ == "__main__":
    main()
