"""Conversion fidelity on real data: Fast-SNN (unsigned, signed, fine-tuned) against rate-norm baselines.

For each data set (MNIST, Fashion-MNIST) and model (a small VGG and a small ResNet), one progressive
training run float → 4 → 3 → 2 bits gives the QANNs for b = 4, 3, 2. For each b (T = 2^b − 1):

  * one pass over the whole test split: float ANN, QANN, SNN unsigned, SNN signed, and SNN signed
    fine-tuned with each objective (``ste``: the paper's straight-through one; ``bptt``: through the
    T steps with a surrogate gradient); accuracy and agreement with the QANN;
  * rate-norm conversion of the float ANN (thresholds at the max and at the 99.9th percentile of
    1024 training images) at T, 4T and 16T, with the QANN as reference, on the first
    ``--baseline-limit`` test images (long simulations are the costly part);
  * at b = 2, the per-layer conversion error (float vs QANN, and SNN variants vs QANN).

Everything is recorded in ``--json`` (settings, seeds, per-phase wall times, device) after each run.
Running again with the same measurement settings keeps the runs already in ``--json`` (``--fresh``
discards them) and reuses trained checkpoints under ``--runs``, so an interrupted benchmark resumes.
Plots (``--plots``) and a Markdown table (``--markdown``) are written from the JSON at the end, and
``--render-only`` rewrites them from an existing JSON (e.g. one measured on another machine).

    python benchmarks/fidelity.py                      # CPU defaults: under an hour on 2 cores
    python benchmarks/fidelity.py --device cuda --batch-size 4000 --baseline-limit 10000
    python benchmarks/fidelity.py --datasets mnist-scenes fashion-scenes --models deeplab_vgg9 \
        --json benchmarks/results/fidelity_segmentation_cpu.json ...   # segmentation: headline metric mIoU
"""

import argparse
import json
import platform
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader

import fastsnn
from fastsnn import convert
from fastsnn.analysis import compare_models, conversion_errors, row
from fastsnn.convert import convert_rate_norm
from fastsnn.data import dataset_info, load_dataset
from fastsnn.finetune import finetune
from fastsnn.models import model_task
from fastsnn.neuron import SURROGATES as OBJECTIVES
from fastsnn.quant import levels
from fastsnn.workflows.checkpoint import load_checkpoint
from fastsnn.workflows.evaluate import rate_norm_label
from fastsnn.workflows.sources import calibration_batches, first, tuning_split
from fastsnn.workflows.train import TrainConfig, stage_checkpoint, train_progressive

MODELS = {
    "vgg11": 0.25,
    "resnet8": 1.0,
    "resnet20": 0.5,
    "deeplab_vgg9": 0.25,
    "tiny_yolov2": 0.25,
    "yolov2_resnet34": 0.25,
}  # registry name -> width multiplier
DEFAULT_MODELS = ["vgg11", "resnet8"]  # the small VGG and ResNet that fit about an hour on 2 CPU cores
# settings that do not change what is measured (where results go, which runs are asked for)
NOT_MEASURED = {"datasets", "models", "runs", "json", "markdown", "plots", "render_only", "progress", "fresh"}
RATE_NORM_PERCENTILES = (100.0, 99.9)
BASELINE_SCALES = (1, 4, 16)
HERE = Path(__file__).parent


def main() -> None:
    args = _arguments()
    if not args.render_only:
        run(args)
    results = json.loads(args.json.read_text())
    markdown = markdown_table(results)
    args.markdown.write_text(markdown + "\n")
    print(markdown)
    render_plots(results, args.plots)


def run(args) -> None:
    device = torch.device(args.device)
    settings = {key: str(value) if isinstance(value, Path) else value for key, value in vars(args).items()}
    results = {
        "settings": settings,
        "environment": {
            "torch": torch.__version__,
            "fastsnn": fastsnn.__version__,
            "python": platform.python_version(),
            "device": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu",
            "threads": torch.get_num_threads(),
        },
        "runs": [],
        "wall_seconds": 0.0,
    }
    previous = json.loads(args.json.read_text()) if args.json.exists() and not args.fresh else None
    if previous is not None and _measured(previous["settings"]) == _measured(settings):
        results["runs"], results["wall_seconds"] = previous["runs"], previous["wall_seconds"]
    done = {(entry["dataset"], entry["model"]) for entry in results["runs"]}
    for model in args.models:  # both data sets for the VGG first: an interrupted run keeps the cheaper half
        for dataset in args.datasets:
            if (dataset, model) in done:
                print(f"{dataset} {model}: kept from {args.json}")
                continue
            if model_task(model) != dataset_info(dataset).task:
                print(f"{dataset} {model}: skipped ({dataset_info(dataset).task} data, {model_task(model)} model)")
                continue
            started = time.perf_counter()
            results["runs"].extend(benchmark_run(dataset, model, args, device))
            results["wall_seconds"] += time.perf_counter() - started
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(results, indent=1) + "\n")
    print(f"total wall time {results['wall_seconds'] / 60:.1f} min (runs kept from --json included)")


def _measured(settings: dict) -> dict:
    return {key: value for key, value in settings.items() if key not in NOT_MEASURED}


def headline(block: dict) -> str:
    """The headline metric of a :func:`compare_models` result (accuracy, or mIoU for segmentation)."""
    return block.get("metrics", ["accuracy"])[0]


def benchmark_run(dataset: str, model: str, args, device: torch.device) -> list[dict]:
    """Train (or reuse) one progressive run and measure every bit width of it."""
    config = TrainConfig(
        model=model,
        dataset=dataset,
        bits=min(args.bits),
        width=MODELS[model],
        float_epochs=args.float_epochs,
        epochs=args.epochs,
        batch_size=args.train_batch_size,
        final_epochs=args.epochs,
        seed=args.seed,
        data_root=args.data_root,
        out_dir=str(args.runs / f"{dataset}-{model}"),
        progress=args.progress,
        train_limit=args.train_limit,
    )
    started = time.perf_counter()
    train_progressive(config)
    train_seconds = time.perf_counter() - started
    float_checkpoint = load_checkpoint(stage_checkpoint(config.out_dir, None))
    float_model, task = float_checkpoint.build_model().to(device), float_checkpoint.spec.task
    test_set = first(load_dataset(dataset, train=False, root=args.data_root), args.test_limit)
    test_loader = DataLoader(test_set, batch_size=args.batch_size)
    # the longest baseline simulation holds 16T copies of each batch: keep T·B about as for the others
    baseline_loader = DataLoader(
        first(test_set, args.baseline_limit), batch_size=max(1, args.batch_size // max(BASELINE_SCALES))
    )
    calibration = calibration_batches(load_dataset(dataset, train=True, root=args.data_root), seed=args.seed)
    tuning, held_out = tuning_split(dataset, args.data_root, held_out=args.held_out)
    measured = []
    for bits in sorted(args.bits, reverse=True):
        T = levels(bits)
        qann = load_checkpoint(stage_checkpoint(config.out_dir, bits)).build_model().to(device)
        signed = convert(qann, signed=True)
        tuned, timings, reports = {}, {}, {}
        for objective in args.objectives:
            started = time.perf_counter()
            generator = torch.Generator().manual_seed(args.seed)
            layers = []
            tuned[objective] = finetune(
                signed,
                qann,
                DataLoader(tuning, batch_size=args.finetune_batch, shuffle=True, generator=generator),
                held_out=DataLoader(held_out, batch_size=250),
                objective=objective,
                steps_per_layer=args.finetune_steps,
                lr=args.finetune_lr,
                progress=args.progress,
                on_layer=layers.append,
            )
            timings[f"finetune_{objective}"] = time.perf_counter() - started
            reports[objective] = [vars(layer) for layer in layers]
        started = time.perf_counter()
        models = {
            ("float ANN", None): float_model,
            ("QANN", None): qann,
            ("SNN unsigned", T): convert(qann, signed=False),
            ("SNN signed", T): signed,
        }
        models |= {(f"SNN signed + fine-tuned ({objective})", T): model for objective, model in tuned.items()}
        full = compare_models(models, test_loader, task=task, progress=args.progress)
        timings["evaluate"] = time.perf_counter() - started
        started = time.perf_counter()
        # the Fast-SNN rows again on the baseline images, so that the comparison is on the same images
        baselines = {key: model for key, model in models.items() if key[0] != "float ANN"}
        for percentile in RATE_NORM_PERCENTILES:
            for scale in BASELINE_SCALES:
                baselines[(rate_norm_label(percentile), scale * T)] = convert_rate_norm(
                    float_model, calibration, T=scale * T, percentile=percentile
                )
        subset = compare_models(baselines, baseline_loader, task=task, progress=args.progress)
        timings["baselines"] = time.perf_counter() - started
        entry = {
            "dataset": dataset,
            "model": model,
            "width": MODELS[model],
            "bits": bits,
            "T": T,
            "train_seconds_all_stages": train_seconds,
            "seconds": timings,
            "test": full,
            "baselines": subset,
            "finetune_layers": reports,
        }
        if bits == min(args.bits):
            variants = {"unsigned": convert(qann, signed=False), "signed": signed} | {
                f"signed + fine-tuned ({o})": model for o, model in tuned.items()
            }
            entry["conversion_errors"] = conversion_errors(
                qann, variants, DataLoader(first(test_set, 1000), batch_size=250), float_model=float_model
            ).as_dict()
        _print_entry(entry)
        measured.append(entry)
    return measured


def _print_entry(entry: dict) -> None:
    test = entry["test"]
    metric = headline(test)
    qann = row(test, "QANN")[metric]
    parts = [f"{entry['dataset']} {entry['model']} b={entry['bits']} T={entry['T']}: {metric} QANN {100 * qann:.2f}"]
    for item in test["rows"][2:]:
        parts.append(f"{item['model']} {100 * item[metric]:.2f}")
    print("; ".join(parts) + f" | {json.dumps({k: round(v, 1) for k, v in entry['seconds'].items()})}", flush=True)


def best_baseline(entry: dict, T: int) -> dict | None:
    """The best rate-norm row (by the headline metric) at ``T`` in an entry's baseline comparison."""
    rows = [r for r in entry["baselines"]["rows"] if r["model"].startswith("rate-norm") and r["T"] == T]
    return max(rows, key=lambda r: r[headline(entry["baselines"])], default=None)


def markdown_table(results: dict) -> str:
    """The headline table: QANN vs SNN per run and T (headline metric: accuracy or mIoU), the gap to the
    better fine-tuned SNN and its agreement with the QANN, and the best baseline at T, 4T and 16T."""
    lines = [
        "| data set | model | metric | T | float | QANN | SNN unsigned | SNN signed | + fine-tuned (ste) "
        "| + fine-tuned (bptt) | gap QANN − fine-tuned (pp) | agreement of the better fine-tuned % "
        "| on the baseline images: best Fast-SNN at T | best rate-norm at T | at 4T | at 16T |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for entry in results["runs"]:
        test, T, metric = entry["test"], entry["T"], headline(entry["test"])
        score = {(r["model"], r["T"]): 100 * r[metric] for r in test["rows"]}
        tuned = {o: score[key] for o in OBJECTIVES if (key := (f"SNN signed + fine-tuned ({o})", T)) in score}
        better = max(tuned, key=tuned.get)
        agreement = row(test, f"SNN signed + fine-tuned ({better})", T)["agreement"]
        cells = [
            entry["dataset"],
            f"{entry['model']} ×{entry['width']}",
            metric,
            str(T),
            f"{score[('float ANN', None)]:.2f}",
            f"{score[('QANN', None)]:.2f}",
            f"{score[('SNN unsigned', T)]:.2f}",
            f"{score[('SNN signed', T)]:.2f}",
            *(f"{tuned[o]:.2f}" if o in tuned else "–" for o in OBJECTIVES),
            f"{score[('QANN', None)] - tuned[better]:+.2f}",
            f"{100 * agreement:.2f}",
        ]
        ours = max(
            (r for r in entry["baselines"]["rows"] if r["model"].startswith("SNN signed")), key=lambda r: r[metric]
        )
        cells.append(f"{100 * ours[metric]:.2f} ({ours['model'].removeprefix('SNN signed').strip(' +') or 'signed'})")
        for scale in BASELINE_SCALES:
            best = best_baseline(entry, scale * T)
            cells.append(f"{100 * best[metric]:.2f} ({best['model'].removeprefix('rate-norm ')})")
        lines.append("| " + " | ".join(cells) + " |")
    settings = results["settings"]
    limit = settings.get("test_limit")
    test_images = "the full test split" if limit is None else f"the first {limit} test images"
    lines.append("")
    lines.append(
        f"The last four columns on the first {settings['baseline_limit']} test images "
        f"(Fast-SNN rows measured there too); the others on {test_images}. "
        f"Epochs: float {settings['float_epochs']}, each quantized stage {settings['epochs']}; fine-tuning "
        f"{settings['finetune_steps']} steps/layer, batch {settings['finetune_batch']}, lr {settings['finetune_lr']}, "
        f"held-out {settings['held_out']} training images; seed {settings['seed']}. "
        f"Device {results['environment']['device']}, wall time {results.get('wall_seconds', 0) / 60:.1f} min."
    )
    return "\n".join(lines)


def render_plots(results: dict, folder: Path) -> None:
    """Accuracy against T per run (Fast-SNN at its T; baselines at T, 4T, 16T) and the per-layer errors."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        from matplotlib import pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no plots (rerun with --render-only where it is)")
        return
    from fastsnn.analysis import ConversionErrors, plot_conversion_errors

    folder.mkdir(parents=True, exist_ok=True)
    runs = sorted({(e["dataset"], e["model"]) for e in results["runs"]})
    figure, axes = plt.subplots(1, len(runs), figsize=(4.2 * len(runs), 3.8), squeeze=False)
    for axis, (dataset, model) in zip(axes[0], runs, strict=True):
        entries = sorted(
            (e for e in results["runs"] if (e["dataset"], e["model"]) == (dataset, model)), key=lambda e: e["T"]
        )
        series: dict[str, list[tuple[int, float]]] = {}
        for entry in entries:
            metric = headline(entry["test"])
            for item in entry["test"]["rows"][1:]:
                series.setdefault(item["model"], []).append((item["T"] or entry["T"], 100 * item[metric]))
            for item in entry["baselines"]["rows"]:
                if item["model"].startswith("rate-norm"):
                    series.setdefault(item["model"], []).append((item["T"], 100 * item[metric]))
        for name, points in series.items():
            points.sort()
            style = "--" if name.startswith("rate-norm") else "-"
            axis.plot([p[0] for p in points], [p[1] for p in points], style, marker="o", markersize=3, label=name)
        axis.set_xscale("log", base=2)
        axis.set_xlabel("time steps T")
        axis.set_ylabel(f"test {metric} %")
        axis.set_ylim(max(0, min(p[1] for s in series.values() for p in s) - 2), 100)
        axis.set_title(f"{dataset}, {model}", fontsize=9)
        axis.grid(alpha=0.3)
    axes[0][-1].legend(fontsize=6, loc="lower right")
    figure.tight_layout()
    figure.savefig(folder / "fidelity_accuracy.png", dpi=120)
    plt.close(figure)
    for entry in results["runs"]:
        if "conversion_errors" in entry:
            errors = ConversionErrors(**entry["conversion_errors"])
            name = f"conversion_errors_{entry['dataset']}_{entry['model']}_T{entry['T']}.png"
            plot_conversion_errors(errors, folder / name, title=f"{entry['dataset']} {entry['model']} T={entry['T']}")
    print(f"plots written to {folder}")


def _arguments():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", nargs="+", default=["mnist", "fashion-mnist"])
    parser.add_argument("--models", nargs="+", default=DEFAULT_MODELS, choices=list(MODELS))
    parser.add_argument("--bits", nargs="+", type=int, default=[4, 3, 2], choices=[2, 3, 4])
    parser.add_argument("--float-epochs", type=int, default=2)
    parser.add_argument("--train-batch-size", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=1, help="epochs of each quantized stage (4, 3, 2 bits)")
    parser.add_argument(
        "--objectives", nargs="+", default=list(OBJECTIVES), choices=OBJECTIVES, help="fine-tuning objectives"
    )
    parser.add_argument("--finetune-steps", type=int, default=30)
    parser.add_argument("--finetune-batch", type=int, default=32)
    parser.add_argument("--finetune-lr", type=float, default=1e-3)
    parser.add_argument("--held-out", type=int, default=1000)
    parser.add_argument("--baseline-limit", type=int, default=500, help="test images for the rate-norm baselines")
    parser.add_argument("--batch-size", type=int, default=500, help="evaluation batch (baselines: a sixteenth of it)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--train-limit", type=int, help="train on the first N images only (smoke runs)")
    parser.add_argument("--test-limit", type=int, help="test on the first N images only (smoke runs)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--data-root")
    parser.add_argument("--runs", type=Path, default=HERE / "runs" / "fidelity", help="training checkpoints (reused)")
    parser.add_argument("--json", type=Path, default=HERE / "results" / "fidelity.json")
    parser.add_argument("--markdown", type=Path, default=HERE / "results" / "fidelity.md")
    parser.add_argument("--plots", type=Path, default=HERE / "results")
    parser.add_argument("--render-only", action="store_true", help="only rewrite the table and plots from --json")
    parser.add_argument("--fresh", action="store_true", help="measure every run again, discarding those in --json")
    parser.add_argument("--progress", action="store_true", help="progress bars")
    return parser.parse_args()


if __name__ == "__main__":
    main()
