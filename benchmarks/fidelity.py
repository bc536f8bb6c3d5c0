"""Conversion fidelity on real data: how closely the SNN follows its QANN, and what each correction adds.

For each data set (MNIST, Fashion-MNIST) and model (a small VGG and a small ResNet), one progressive
training run float → 4 → 3 → 2 bits gives the QANNs for b = 4, 3, 2. For each b (T = 2^b − 1), on the
test split (the first ``--long-test-limit`` images at T ≥ 15, whose simulation is the costly part):
float ANN, QANN, SNN unsigned, SNN signed, and the signed SNN fine-tuned by each variant of
:data:`VARIANTS` (the ablation: the previous budget, the layer-wise budget of ``fastsnn finetune``, the
agreement criterion, bias calibration, the end-to-end phase); accuracy and agreement with the QANN,
the fine-tuning budget (images per layer) and its wall time. The full ablation (``--variants``) runs
at the smallest T; at larger T only ``--long-variants``. Optionally (``--baseline-limit``) rate-norm
conversion of the float ANN at T, 4T and 16T on the first test images; at b = 2, the per-layer
conversion error.

Everything is recorded in ``--json`` (settings, seeds, per-phase wall times, device) after each run.
Running again with the same measurement settings keeps the runs already in ``--json`` (``--fresh``
discards them) and reuses trained checkpoints under ``--runs``, so an interrupted benchmark resumes.
Plots (``--plots``: agreement against T per run, per-layer errors) and a Markdown table
(``--markdown``) are written from the JSON at the end, and ``--render-only`` rewrites them.

    python benchmarks/fidelity.py                      # CPU defaults: about an hour on 2 cores
    python benchmarks/fidelity.py --device cuda --batch-size 4000 --long-test-limit 10000 --models vgg11 resnet20
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
# Fine-tuning variants of the signed SNN, each adding one thing to the one before (the ablation).
# "batch" is the tuning batch; everything else goes to fastsnn.finetune. DEFAULT is what `fastsnn
# finetune` does with its defaults.
VARIANTS = {
    "layer-wise 30×32, MSE": {"steps_per_layer": 30, "batch": 32, "calibrate": False, "criterion": "mse"},
    "layer-wise 100×64, MSE": {"steps_per_layer": 100, "batch": 64, "calibrate": False, "criterion": "mse"},
    "+ agreement criterion": {"steps_per_layer": 100, "batch": 64, "calibrate": False},
    "+ agreement criterion, 400×128": {"steps_per_layer": 400, "batch": 128, "calibrate": False},  # ≈ 1 epoch/layer
    "+ calibration": {"steps_per_layer": 100, "batch": 64, "calibrate": True},
    "+ end-to-end": {"steps_per_layer": 100, "batch": 64, "calibrate": True, "end_to_end_steps": 120},
}
DEFAULT = "+ agreement criterion"
ABLATION = [name for name in VARIANTS if name != "+ agreement criterion, 400×128"]  # --variants default
AIM = 99.5  # agreement with the QANN, % (the fidelity issue's target at T = 3, 7, 15)
# settings that do not change what is measured (where results go, which runs are asked for)
NOT_MEASURED = {"datasets", "models", "runs", "json", "markdown", "plots", "render_only", "progress", "fresh", "add_to"}
RATE_NORM_PERCENTILES = (100.0, 99.9)
BASELINE_SCALES = (1, 4, 16)
HERE = Path(__file__).parent


def main() -> None:
    args = _arguments()
    if not args.render_only:
        run(args)
    if args.add_to:
        merge_into(args.add_to, json.loads(args.json.read_text()))
        args.json = args.add_to
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
        "variants": VARIANTS,
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


def merge_into(path: Path, supplement: dict) -> None:
    """Add the fine-tuned rows of ``supplement``'s runs (e.g. a variant measured later at T = 7 and 15)
    to the runs of the JSON at ``path`` with the same data set, model and T, or add whole runs it lacks.
    A run whose reference rows (float ANN, QANN, SNNs without fine-tuning) differ is not merged: its
    QANN is another one (a stage trained again). Rows and reports already there are kept; the
    supplement's settings are recorded beside them."""
    results = json.loads(path.read_text())
    for new in supplement["runs"]:
        same = [
            e for e in results["runs"] if (e["dataset"], e["model"], e["T"]) == (new["dataset"], new["model"], new["T"])
        ]
        if not same:
            results["runs"].append(new)
            continue
        entry, run = same[0], f"{new['dataset']} {new['model']} T={new['T']}"
        if [_reference_rows(entry)] != [_reference_rows(new)]:  # another QANN, or other test images
            print(f"{run}: not merged, its QANN or test images differ from those in {path}")
            continue
        names = {r["model"] for r in entry["test"]["rows"]}
        entry["test"]["rows"] += [r for r in new["test"]["rows"] if r["model"] not in names]
        entry["finetuning"] = new["finetuning"] | entry["finetuning"]
    results["variants"] = results.get("variants", {}) | supplement.get("variants", {})
    results.setdefault("supplements", []).append(
        {"settings": supplement["settings"], "wall_seconds": supplement["wall_seconds"]}
    )
    path.write_text(json.dumps(results, indent=1) + "\n")
    print(f"merged into {path}")


def _reference_rows(entry: dict) -> list[dict]:
    """The rows every run of a QANN measures the same way: float ANN, QANN, unsigned and signed SNN."""
    return [r for r in entry["test"]["rows"] if not r["model"].startswith(tuned_label(""))] + [entry["test"]["samples"]]


def _measured(settings: dict) -> dict:
    return {key: value for key, value in settings.items() if key not in NOT_MEASURED}


def headline(block: dict) -> str:
    """The headline metric of a :func:`compare_models` result (accuracy, or mIoU for segmentation)."""
    return block.get("metrics", ["accuracy"])[0]


def tuned_label(variant: str) -> str:
    return f"SNN signed fine-tuned: {variant}"


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
        final_epochs=args.final_epochs,
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
    tuning, held_out = tuning_split(dataset, args.data_root, held_out=args.held_out)
    measured = []
    for bits in sorted(args.bits):  # T = 3 first: the full ablation and the figure the issue is about
        T = levels(bits)
        qann = load_checkpoint(stage_checkpoint(config.out_dir, bits)).build_model().to(device)
        signed = convert(qann, signed=True)
        variants = args.variants if T == levels(min(args.bits)) else args.long_variants
        tuned, finetuning = {}, {}
        for variant in variants:
            options = dict(VARIANTS[variant])
            batch = options.pop("batch")
            generator = torch.Generator().manual_seed(args.seed)
            layers = []
            started = time.perf_counter()
            tuned[variant] = finetune(
                signed,
                qann,
                DataLoader(tuning, batch_size=batch, shuffle=True, generator=generator),
                held_out=DataLoader(held_out, batch_size=250),
                task=task,
                progress=args.progress,
                on_layer=layers.append,
                **options,
            )
            finetuning[variant] = {
                "seconds": time.perf_counter() - started,
                "images_per_layer": options["steps_per_layer"] * batch,
                "end_to_end_images": options.get("end_to_end_steps", 0) * batch,
                "layers": [vars(layer) for layer in layers],
            }
            print(f"  {dataset} {model} T={T} {variant}: {finetuning[variant]['seconds']:.0f} s", flush=True)
        started = time.perf_counter()
        models = {
            ("float ANN", None): float_model,
            ("QANN", None): qann,
            ("SNN unsigned", T): convert(qann, signed=False),
            ("SNN signed", T): signed,
        } | {(tuned_label(variant), T): network for variant, network in tuned.items()}
        limit = args.long_test_limit if T >= 15 else None
        test = compare_models(
            models, DataLoader(first(test_set, limit), batch_size=args.batch_size), task=task, progress=args.progress
        )
        entry = {
            "dataset": dataset,
            "model": model,
            "width": MODELS[model],
            "bits": bits,
            "T": T,
            "train_seconds_all_stages": train_seconds,
            "seconds": {"evaluate": time.perf_counter() - started},
            "test": test,
            "finetuning": finetuning,
        }
        if args.baseline_limit:
            entry["baselines"] = _baselines(models, float_model, dataset, test_set, T, task, args)
        if bits == min(args.bits):
            variants = {"unsigned": convert(qann, signed=False), "signed": signed} | tuned
            entry["conversion_errors"] = conversion_errors(
                qann, variants, DataLoader(first(test_set, 1000), batch_size=250), float_model=float_model
            ).as_dict()
        _print_entry(entry)
        measured.append(entry)
    return measured


def _baselines(models: dict, float_model, dataset: str, test_set, T: int, task, args) -> dict:
    """Rate-norm conversion of the float ANN at T, 4T and 16T beside the Fast-SNN rows, on the first
    ``--baseline-limit`` test images (the longest simulation holds 16T copies of each batch)."""
    calibration = calibration_batches(load_dataset(dataset, train=True, root=args.data_root), seed=args.seed)
    baselines = {key: model for key, model in models.items() if key[0] != "float ANN"}
    for percentile in RATE_NORM_PERCENTILES:
        for scale in BASELINE_SCALES:
            baselines[(rate_norm_label(percentile), scale * T)] = convert_rate_norm(
                float_model, calibration, T=scale * T, percentile=percentile
            )
    loader = DataLoader(first(test_set, args.baseline_limit), batch_size=max(1, args.batch_size // 16))
    return compare_models(baselines, loader, task=task, progress=args.progress)


def _print_entry(entry: dict) -> None:
    test = entry["test"]
    metric = headline(test)
    parts = [f"{entry['dataset']} {entry['model']} T={entry['T']} ({test['samples']} images)"]
    for item in test["rows"][1:]:
        agreement = "" if item["agreement"] is None else f" / {100 * item['agreement']:.2f}"
        parts.append(f"{item['model']} {100 * item[metric]:.2f}{agreement}")
    print("; ".join(parts), flush=True)


def _cell(test: dict, model: str, metric: str) -> str:
    """``metric % (agreement %)`` of ``model``'s row in a :func:`compare_models` result, – if absent."""
    found = [r for r in test["rows"] if r["model"] == model]
    if not found:
        return "–"
    agreement = found[0]["agreement"]
    return f"{100 * found[0][metric]:.2f}" + ("" if agreement is None else f" ({100 * agreement:.2f})")


def markdown_table(results: dict) -> str:
    """Per run and T: QANN, then each SNN's headline metric and agreement with the QANN; then the
    fine-tuning wall time per variant."""
    variants = list(results.get("variants", VARIANTS))
    lines = [
        "| data set | model | T | test images | float | QANN | SNN unsigned | SNN signed | "
        + " | ".join(f"fine-tuned: {v}" for v in variants)
        + f" | gap QANN − {DEFAULT}¹ (pp) | agreement ≥ {AIM} %¹ |",
        "|---" * (10 + len(variants)) + "|",
    ]
    for entry in results["runs"]:
        test, T, metric = entry["test"], entry["T"], headline(entry["test"])
        measured = [v for v in variants if v in entry["finetuning"]]
        shown = DEFAULT if DEFAULT in measured else measured[-1]
        default = row(test, tuned_label(shown), T)
        note = "" if shown == DEFAULT else f" ({shown})"
        qann = row(test, "QANN")[metric]
        cells = [
            entry["dataset"],
            f"{entry['model']} ×{entry['width']}",
            str(T),
            str(test["samples"]),
            _cell(test, "float ANN", metric),
            _cell(test, "QANN", metric),
            _cell(test, "SNN unsigned", metric),
            _cell(test, "SNN signed", metric),
            *(_cell(test, tuned_label(v), metric) for v in variants),
            f"{100 * (qann - default[metric]):+.2f}{note}",
            ("yes" if 100 * default["agreement"] >= AIM else "**no**") + note,
        ]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "Fine-tuning wall time, s (images per layer):", ""]
    lines += ["| data set | model | T | " + " | ".join(variants) + " |", "|---" * (3 + len(variants)) + "|"]
    for entry in results["runs"]:
        timing = entry["finetuning"]
        cells = [entry["dataset"], entry["model"], str(entry["T"])]
        cells += [
            f"{timing[v]['seconds']:.0f} ({timing[v]['images_per_layer']})" if v in timing else "–" for v in variants
        ]
        lines.append("| " + " | ".join(cells) + " |")
    settings = results["settings"]
    lines.append("")
    lines.append(
        f"Cells: headline metric % (agreement with the QANN %). T ≥ 15 on the first {settings['long_test_limit']} "
        f"test images, otherwise the full test split. Training: float {settings['float_epochs']} epochs, "
        f"4 and 3 bits {settings['epochs']}, 2 bits {settings['final_epochs']}. Held-out: the last "
        f"{settings['held_out']} training images; seed {settings['seed']}. ¹ Where {DEFAULT} was not "
        "measured, the last variant that was (named). "
        f"Device {results['environment']['device']}, wall time {results.get('wall_seconds', 0) / 60:.1f} min."
    )
    return "\n".join(lines)


def render_plots(results: dict, folder: Path) -> None:
    """Agreement with the QANN against T per run (one line per SNN variant), and the per-layer errors."""
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
        series: dict[str, list[tuple[int, float]]] = {}
        for entry in results["runs"]:
            if (entry["dataset"], entry["model"]) == (dataset, model):
                for item in entry["test"]["rows"]:
                    if item["T"] is not None and item["model"] != "SNN unsigned":
                        series.setdefault(item["model"], []).append((item["T"], 100 * item["agreement"]))
        for name, points in series.items():
            points.sort()
            label = name.removeprefix("SNN signed fine-tuned: ")
            axis.plot([p[0] for p in points], [p[1] for p in points], marker="o", markersize=3, label=label)
        axis.axhline(AIM, color="k", linestyle=":", linewidth=1)
        axis.set_xscale("log", base=2)
        axis.set_xlabel("time steps T")
        axis.set_ylabel("agreement with the QANN %")
        axis.set_title(f"{dataset}, {model}", fontsize=9)
        axis.grid(alpha=0.3)
    axes[0][-1].legend(fontsize=6, loc="lower right")
    figure.tight_layout()
    figure.savefig(folder / "fidelity_agreement.png", dpi=120)
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
    parser.add_argument("--float-epochs", type=int, default=3)
    parser.add_argument("--train-batch-size", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=1, help="epochs of the 4- and 3-bit stages")
    parser.add_argument("--final-epochs", type=int, default=3, help="epochs of the last (2-bit) stage")
    parser.add_argument(
        "--variants",
        nargs="+",
        default=list(VARIANTS),
        choices=list(VARIANTS),
        help="fine-tuning variants at the smallest T",
    )
    parser.add_argument(
        "--long-variants",
        nargs="+",
        default=[next(iter(VARIANTS)), DEFAULT],
        choices=list(VARIANTS),
        help="fine-tuning variants measured at T > 3",
    )
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
    parser.add_argument("--json", type=Path, default=HERE / "results" / "fidelity.json")
    parser.add_argument("--markdown", type=Path, default=HERE / "results" / "fidelity.md")
    parser.add_argument("--plots", type=Path, default=HERE / "results")
    parser.add_argument("--render-only", action="store_true", help="only rewrite the table and plots from --json")
    parser.add_argument(
        "--add-to", type=Path, help="then merge the rows measured here into this JSON (same data set, model and T)"
    )
    parser.add_argument("--fresh", action="store_true", help="measure every run again, discarding those in --json")
    parser.add_argument("--progress", action="store_true", help="progress bars")
    return parser.parse_args()


if __name__ == "__main__":
    main()
