"""Conversion fidelity on real data: how closely the SNN follows its QANN, and what each correction adds.

For each data set and model, one progressive training run float → 4 → 3 → 2 bits gives the QANNs for
b = 4, 3, 2 (always all stages, so a run at any b uses the same QANN). Each run of the plan (data set,
model, b: see :class:`fidelity_plan.Run`) measures on the test split (the first ``--long-test-limit``
images at T ≥ 15, whose simulation is the costly part): float ANN, QANN, SNN unsigned, SNN signed (T =
2^b − 1), and the signed SNN fine-tuned by each of the run's variants (:data:`fidelity_plan.VARIANTS`, each a
``FinetuneConfig`` and a tuning batch: the ablation); accuracy and agreement with the QANN, the fine-tuning
budget (images per layer) and its wall time. Optionally (``--baseline-limit``) rate-norm conversion of the
float ANN at T, 4T and 16T on the first test images; at the smallest b, the per-layer conversion error.

The plan is a preset (``--preset cpu``: every run behind benchmarks/results/fidelity_cpu.json, with the
settings it was measured with), or the product of ``--datasets``, ``--models`` and ``--bits`` with
``--variants`` at the smallest b and ``--long-variants`` at the others; ``--datasets``, ``--models`` and
``--bits`` also narrow a preset. Everything is recorded in ``--json`` (settings, seeds, per-phase wall
times, environment) after each run, atomically. Running again keeps what ``--json`` holds and measures
only the runs, or the variants of a run, it lacks, reusing the trained checkpoints under ``--runs``; rows
are added to a run only when its reference rows (float ANN, QANN, SNNs without fine-tuning) come out the
same, i.e. the same QANN on the same test images. Other measurement settings are refused (``--fresh``
discards the JSON). ``--dry-run`` lists what would be measured. The Markdown table (``--markdown``) and the
plots (``--plots``) are written from the JSON at the end; ``--render-only`` rewrites them.

    python benchmarks/fidelity.py --preset cpu             # rebuilds benchmarks/results/fidelity_cpu.json
    python benchmarks/fidelity.py --preset cpu --dry-run   # what it would measure
    python benchmarks/fidelity.py --device cuda --batch-size 4000 --long-test-limit 10000 --models vgg11 resnet20
    python benchmarks/fidelity.py --datasets mnist --models vgg11 --bits 2 --variants "layer-wise 30×32, MSE" \
        --train-limit 2000 --test-limit 500 --float-epochs 1 --final-epochs 1 --runs /tmp/f/runs \
        --json /tmp/f/r.json --markdown /tmp/f/r.md --plots /tmp/f   # smoke run, a few minutes
"""

import argparse
import dataclasses
import time
from collections.abc import Iterable
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from fastsnn import convert
from fastsnn.analysis import compare_models, conversion_errors
from fastsnn.convert import SpikingNetwork, convert_rate_norm
from fastsnn.data import dataset_info, load_dataset
from fastsnn.finetune import finetune
from fastsnn.models import model_task
from fastsnn.tasks import Task
from fastsnn.workflows.checkpoint import load_checkpoint
from fastsnn.workflows.sources import calibration_batches, first, tuning_split
from fastsnn.workflows.train import TrainConfig, stage_checkpoint, train_progressive
from fidelity_plan import ABLATION, LONG_VARIANTS, MODELS, PRESETS, RESULTS, VARIANTS, Run, Variant, cartesian
from fidelity_report import TUNED_PREFIX, headline, markdown_table, render_plots, tuned_label
from harness import ResultsFile, environment, render, settings_of

# settings that do not change what is measured (where results go, which runs are asked for)
NOT_MEASURED = {
    "preset",
    "datasets",
    "models",
    "bits",
    "variants",
    "long_variants",
    "data_root",
    "runs",
    "json",
    "markdown",
    "plots",
    "render_only",
    "dry_run",
    "fresh",
    "progress",
}
RATE_NORM = {"rate-norm max": 100.0, "rate-norm 99.9%": 99.9}  # row name -> threshold percentile
BASELINE_SCALES = (1, 4, 16)  # rate-norm baselines at T, 4T, 16T
HERE = Path(__file__).parent


@dataclasses.dataclass
class Trained:
    """One progressive training run and the data its QANNs are measured and fine-tuned on."""

    out_dir: str
    seconds: float  # training wall time (about 0 when the checkpoints were reused)
    float_model: nn.Module
    task: Task
    test_set: Dataset
    tuning: Dataset
    held_out: Dataset


def main() -> None:
    args = _arguments()
    if not args.render_only:
        plan = planned_runs(args)
        if args.dry_run:
            dry_run(plan, args)
            return
        measure(plan, args)
    render(args.json, args.markdown, args.plots, markdown_table, render_plots)


def planned_runs(args) -> list[Run]:
    """The runs of ``--preset`` (narrowed by ``--datasets``, ``--models``, ``--bits``), or their product."""
    if args.preset is None:
        runs = cartesian(
            args.datasets or ["mnist", "fashion-mnist"],
            args.models or ["vgg11", "resnet8"],
            args.bits or [4, 3, 2],
            args.variants or list(ABLATION),
            args.long_variants or list(LONG_VARIANTS),
        )
    else:
        runs = list(PRESETS[args.preset].runs)
    chosen = [
        run
        for run in runs
        if (args.datasets is None or run.dataset in args.datasets)
        and (args.models is None or run.model in args.models)
        and (args.bits is None or run.bits in args.bits)
    ]
    mismatched = [run for run in chosen if model_task(run.model) != dataset_info(run.dataset).task]
    for run in mismatched:
        print(f"{run}: skipped ({dataset_info(run.dataset).task} data, {model_task(run.model)} model)")
    return [run for run in chosen if run not in mismatched]


def open_results(args, plan: list[Run]) -> ResultsFile:
    """``--json`` to extend, after checking that the variants it holds are defined as they are here."""
    record = ResultsFile(args.json, settings_of(args), environment(args.device), ignored=NOT_MEASURED, fresh=args.fresh)
    recorded = record.results.setdefault("variants", {})
    for name in {name for run in plan for name in run.variants} & recorded.keys():
        if Variant.from_record(recorded[name]) != VARIANTS[name]:
            raise SystemExit(
                f"{args.json}: variant {name!r} was measured as {recorded[name]}, now defined as "
                f"{VARIANTS[name].record()}; not mixing them: rename the variant, or pass --fresh or another --json"
            )
    recorded.update({name: VARIANTS[name].record() for run in plan for name in run.variants})
    return record


def pending_variants(runs: list[dict], run: Run) -> tuple[str, ...] | None:
    """The variants of ``run`` that ``runs`` (the results' entries) lack; None for a run not measured at all."""
    entry = find_entry(runs, run)
    return None if entry is None else tuple(v for v in run.variants if v not in entry["finetuning"])


def find_entry(runs: list[dict], run: Run) -> dict | None:
    found = [e for e in runs if (e["dataset"], e["model"], e["T"]) == (run.dataset, run.model, run.T)]
    return found[0] if found else None


def dry_run(plan: list[Run], args) -> None:
    """Print, run by run, what ``--json`` holds and what would be measured (nothing is trained or written)."""
    record = open_results(args, plan)
    for run in plan:
        pending = pending_variants(record.runs, run)
        if pending is None:
            print(f"{run}: to measure, variants: {', '.join(run.variants)}")
        elif pending:
            print(f"{run}: kept from {args.json}; to add, variants: {', '.join(pending)}")
        else:
            print(f"{run}: kept from {args.json}")


def measure(plan: list[Run], args) -> None:
    """Measure every run of ``plan`` that ``--json`` lacks, training each (data set, model) once."""
    device = torch.device(args.device)
    record = open_results(args, plan)
    refused = []
    pairs = list(dict.fromkeys((run.dataset, run.model) for run in plan))
    for dataset, model in pairs:
        runs = [run for run in plan if (run.dataset, run.model) == (dataset, model)]
        smallest = min(run.bits for run in runs)
        pending = {run: pending_variants(record.runs, run) for run in runs}
        to_measure = {run: variants for run, variants in pending.items() if variants != ()}
        for run in runs:
            if run not in to_measure:
                print(f"{run}: kept from {args.json}")
        if not to_measure:
            continue
        trained = train(dataset, model, args, device)
        for run, variants in to_measure.items():
            with record.measuring() as entries:
                if not measure_run(run, variants, trained, entries, args, device, run.bits == smallest):
                    refused.append(str(run))
    print(f"total wall time {record.results['wall_seconds'] / 60:.1f} min (runs kept from --json included)")
    if refused:
        print(f"not measured (their QANN or test images differ from {args.json}'s): {'; '.join(refused)}")


def train(dataset: str, model: str, args, device: torch.device) -> Trained:
    """Train (or reuse) the progressive run of ``model`` on ``dataset`` down to 2 bits."""
    config = TrainConfig(
        model=model,
        dataset=dataset,
        bits=2,
        width=MODELS[model],
        float_epochs=args.float_epochs,
        epochs=args.epochs,
        batch_size=args.train_batch_size,
        final_epochs=args.final_epochs,
        seed=args.seed,
        data_root=args.data_root,
        out_dir=str(args.runs / f"{dataset}-{model}"),
        progress=args.progress,
        train_limit=args.train_limit,
    )
    started = time.perf_counter()
    train_progressive(config)
    seconds = time.perf_counter() - started
    float_checkpoint = load_checkpoint(stage_checkpoint(config.out_dir, None))
    tuning, held_out = tuning_split(dataset, args.data_root, held_out=args.held_out)
    return Trained(
        out_dir=config.out_dir,
        seconds=seconds,
        float_model=float_checkpoint.build_model().to(device),
        task=float_checkpoint.spec.task,
        test_set=first(load_dataset(dataset, train=False, root=args.data_root), args.test_limit),
        tuning=tuning,
        held_out=held_out,
    )


def measure_run(
    run: Run, variants: tuple[str, ...] | None, trained: Trained, entries: list[dict], args, device, smallest: bool
) -> bool:
    """Measure ``run`` into ``entries``: a new entry (``variants`` None: all of the run's), or the missing
    ``variants`` of its entry, added only if its reference rows come out as recorded. False if refused."""
    T = run.T
    qann = load_checkpoint(stage_checkpoint(trained.out_dir, run.bits)).build_model().to(device)
    signed = convert(qann, signed=True)
    references = {
        ("float ANN", None): trained.float_model,
        ("QANN", None): qann,
        ("SNN unsigned", T): convert(qann, signed=False),
        ("SNN signed", T): signed,
    }
    loader = DataLoader(first(trained.test_set, args.long_test_limit if T >= 15 else None), batch_size=args.batch_size)
    started = time.perf_counter()
    test = compare_models(references, loader, task=trained.task, progress=args.progress)
    evaluate_seconds = time.perf_counter() - started
    entry = find_entry(entries, run)
    if entry is not None and _reference_rows(entry["test"]) != _reference_rows(test):
        print(f"{run}: not measured, its QANN or test images differ from those in {args.json}")
        return False
    tuned, finetuning = finetuned(run, variants or run.variants, signed, qann, trained, args)
    started = time.perf_counter()
    tuned_rows = compare_models(
        {("QANN", None): qann} | {(tuned_label(v), T): network for v, network in tuned.items()},
        loader,
        task=trained.task,
        progress=args.progress,
    )["rows"][1:]
    evaluate_seconds += time.perf_counter() - started
    if entry is None:
        entry = {
            "dataset": run.dataset,
            "model": run.model,
            "width": MODELS[run.model],
            "bits": run.bits,
            "T": T,
            "train_seconds_all_stages": trained.seconds,
            "seconds": {"evaluate": 0.0},
            "test": test,
            "finetuning": {},
        }
        if args.baseline_limit:
            entry["baselines"] = _baselines(references, tuned, trained, run, args)
        if smallest:
            snns = {"unsigned": references[("SNN unsigned", T)], "signed": signed} | tuned
            loader = DataLoader(first(trained.test_set, 1000), batch_size=250)
            entry["conversion_errors"] = conversion_errors(
                qann, snns, loader, float_model=trained.float_model
            ).as_dict()
        entries.append(entry)
    entry["test"]["rows"] += tuned_rows
    entry["finetuning"] |= finetuning
    entry["seconds"]["evaluate"] += evaluate_seconds
    _print_entry(entry)
    return True


def finetuned(
    run: Run, variants: Iterable[str], signed: SpikingNetwork, qann: nn.Module, trained: Trained, args
) -> tuple[dict[str, SpikingNetwork], dict[str, dict]]:
    """The signed SNN fine-tuned by each of ``variants``, and each one's record (budget, wall time, layers)."""
    tuned, records = {}, {}
    for name in variants:
        variant = VARIANTS[name]
        generator = torch.Generator().manual_seed(args.seed)
        layers = []
        started = time.perf_counter()
        tuned[name] = finetune(
            signed,
            qann,
            DataLoader(trained.tuning, batch_size=variant.batch, shuffle=True, generator=generator),
            held_out=DataLoader(trained.held_out, batch_size=250),
            config=variant.config,
            task=trained.task,
            progress=args.progress,
            on_layer=layers.append,
        )
        records[name] = {
            "seconds": time.perf_counter() - started,
            "images_per_layer": variant.images_per_layer,
            "end_to_end_images": variant.end_to_end_images,
            "layers": [vars(layer) for layer in layers],
        }
        print(f"  {run} {name}: {records[name]['seconds']:.0f} s", flush=True)
    return tuned, records


def _reference_rows(test: dict) -> list:
    """The rows every measurement of a QANN gives alike (float ANN, QANN, unsigned and signed SNN), and the
    number of test images."""
    return [r for r in test["rows"] if not r["model"].startswith(TUNED_PREFIX)] + [test["samples"]]


def _baselines(references: dict, tuned: dict, trained: Trained, run: Run, args) -> dict:
    """Rate-norm conversion of the float ANN at T, 4T and 16T beside the Fast-SNN rows, on the first
    ``--baseline-limit`` test images (the longest simulation holds 16T copies of each batch)."""
    calibration = calibration_batches(load_dataset(run.dataset, train=True, root=args.data_root), seed=args.seed)
    baselines = {key: model for key, model in references.items() if key[0] != "float ANN"}
    baselines |= {(tuned_label(name), run.T): network for name, network in tuned.items()}
    for label, percentile in RATE_NORM.items():
        for scale in BASELINE_SCALES:
            baselines[(label, scale * run.T)] = convert_rate_norm(
                trained.float_model, calibration, T=scale * run.T, percentile=percentile
            )
    loader = DataLoader(first(trained.test_set, args.baseline_limit), batch_size=max(1, args.batch_size // 16))
    return compare_models(baselines, loader, task=trained.task, progress=args.progress)


def _print_entry(entry: dict) -> None:
    test = entry["test"]
    metric = headline(test)
    parts = [f"{entry['dataset']} {entry['model']} T={entry['T']} ({test['samples']} images)"]
    for item in test["rows"][1:]:
        agreement = "" if item["agreement"] is None else f" / {100 * item['agreement']:.2f}"
        parts.append(f"{item['model']} {100 * item[metric]:.2f}{agreement}")
    print("; ".join(parts), flush=True)


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", choices=list(PRESETS), help="the runs (and settings) behind a results JSON")
    parser.add_argument("--datasets", nargs="+", help="default: mnist fashion-mnist (with --preset: all of its)")
    parser.add_argument("--models", nargs="+", choices=list(MODELS), help="default: vgg11 resnet8 (preset: its)")
    parser.add_argument("--bits", nargs="+", type=int, choices=[2, 3, 4], help="default: 4 3 2 (preset: its)")
    names = "; ".join(VARIANTS)
    parser.add_argument(
        "--variants",
        nargs="+",
        choices=list(VARIANTS),
        metavar="VARIANT",
        help=f"fine-tuning variants at the smallest bits, without --preset (default: the ablation, "
        f"{'; '.join(ABLATION)}); accepted: {names}",
    )
    parser.add_argument(
        "--long-variants",
        nargs="+",
        choices=list(VARIANTS),
        metavar="VARIANT",
        help=f"fine-tuning variants at the other bits, without --preset (default: {'; '.join(LONG_VARIANTS)})",
    )
    parser.add_argument("--float-epochs", type=int, default=3)
    parser.add_argument("--train-batch-size", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=1, help="epochs of the 4- and 3-bit stages")
    parser.add_argument("--final-epochs", type=int, default=3, help="epochs of the last (2-bit) stage")
    parser.add_argument("--held-out", type=int, default=1000)
    parser.add_argument("--long-test-limit", type=int, default=2000, help="test images at T ≥ 15")
    parser.add_argument("--baseline-limit", type=int, default=0, help="test images for rate-norm baselines (0: none)")
    parser.add_argument("--batch-size", type=int, default=500, help="evaluation batch")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--train-limit", type=int, help="train on the first N images only (smoke runs)")
    parser.add_argument("--test-limit", type=int, help="test on the first N images only (smoke runs)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--data-root")
    parser.add_argument("--runs", type=Path, default=HERE / "runs" / "fidelity", help="training checkpoints (reused)")
    parser.add_argument("--json", type=Path, default=RESULTS / "fidelity.json")
    parser.add_argument("--markdown", type=Path, default=RESULTS / "fidelity.md")
    parser.add_argument("--plots", type=Path, default=RESULTS)
    parser.add_argument("--render-only", action="store_true", help="only rewrite the table and plots from --json")
    parser.add_argument("--dry-run", action="store_true", help="only list what --json holds and what would be measured")
    parser.add_argument("--fresh", action="store_true", help="measure every run again, discarding those in --json")
    parser.add_argument("--progress", action="store_true", help="progress bars")
    preset = parser.parse_known_args()[0].preset
    if preset is not None:
        parser.set_defaults(**PRESETS[preset].options)
    args = parser.parse_args()
    if args.preset is not None and (args.variants or args.long_variants):
        parser.error("--variants and --long-variants choose the runs without --preset; a preset lists its own")
    return args


if __name__ == "__main__":
    main()
