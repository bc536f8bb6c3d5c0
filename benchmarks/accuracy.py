"""Accuracy on real data of what ``fastsnn train`` + ``fastsnn finetune`` give, per task: the float ANN, the QANN,
the signed SNN (converted, not tuned) and the fine-tuned SNN (issue "float-level accuracy at T = 3").

For each entry of the task's preset (:data:`accuracy_plan.PRESETS`: data set, model, width, training and test
settings), each T (3; with ``--all-T`` also 7 and 15) and each variant ("default", and the ``--ablation`` variants
of :data:`accuracy_plan.VARIANTS`), one row: the headline metric (accuracy, mIoU or mAP@0.5) of the float ANN, the
QANN, the unsigned and signed SNNs and the fine-tuned SNN, the SNNs' agreement with the QANN, and the training and
fine-tuning wall times. Everything goes through the workflows a user runs: ``train_progressive`` (one run float →
4 → 3 → 2 bits per training configuration, in its own folder under ``--runs``, reused by later invocations; its
wall time is kept in ``training.json`` there), ``finetune_checkpoint`` with ``FinetuneConfig(**overrides)`` (the
tuned checkpoint, and its wall time beside it, reused too) and ``evaluate_checkpoints`` on the QANN, the float ANN
and the tuned checkpoints together.

Rows go to ``--json``, keyed by task, data set, model, T and variant, atomically after each T of each training
run: running one task keeps the other tasks' rows, and a re-run measures only the rows the JSON lacks or whose
plan changed since (training or fine-tuning options, tuning split, test images: each row records them), unless
``--fresh``. A JSON measured with other command-line settings (limits, epochs) is refused. ``--dry-run`` lists what
would be measured. The Markdown table (``--markdown``) and one plot per task (``--plots``) are written from the
JSON at the end; ``--render-only`` rewrites them.

    python benchmarks/accuracy.py --task classification           # T = 3: MNIST, Fashion-MNIST × VGG-11, ResNet-8
    python benchmarks/accuracy.py --task classification --all-T   # and T = 7, 15
    python benchmarks/accuracy.py --task segmentation             # Fashion-MNIST scenes, DeepLab-VGG9
    python benchmarks/accuracy.py --task detection                # Fashion-MNIST scenes and tree images, Tiny-YOLOv2
    python benchmarks/accuracy.py --task classification --ablation "no distillation" "no end-to-end"
    python benchmarks/accuracy.py --task detection --dry-run      # what it would measure
    python benchmarks/accuracy.py --render-only                   # table and plots from the JSON
    python benchmarks/accuracy.py --task classification --datasets mnist --models vgg11 --train-limit 2000 \\
        --test-limit 500 --float-epochs 1 --epochs 1 --final-epochs 1 --finetune steps_per_layer=5 end_to_end_steps=5 \\
        --runs /tmp/acc/runs --json /tmp/acc/a.json --markdown /tmp/acc/a.md --plots /tmp/acc --quiet   # smoke run
"""

import argparse
import dataclasses
import hashlib
import json
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from accuracy_plan import DEFAULT, PRESETS, RESULTS, TASKS, VARIANTS, Entry
from accuracy_report import markdown_table, render_plots, summary_line
from fastsnn.analysis import row
from fastsnn.data import fetch_dataset
from fastsnn.errors import OptionError
from fastsnn.finetune import FinetuneConfig
from fastsnn.quant import levels
from fastsnn.workflows.data_config import DataConfig, TuningSplit
from fastsnn.workflows.evaluate import EvaluateConfig, evaluate_checkpoints
from fastsnn.workflows.finetune import finetune_checkpoint
from fastsnn.workflows.sources import default_device
from fastsnn.workflows.train import TrainConfig, stage_checkpoint, train_progressive
from harness import ResultsFile, environment, render, settings_of, write_json

# settings that do not change what is measured (which rows are asked for, where files go)
NOT_MEASURED = {
    "task",
    "datasets",
    "models",
    "all_T",
    "ablation",
    "data_root",
    "runs",
    "json",
    "markdown",
    "plots",
    "render_only",
    "dry_run",
    "fresh",
    "quiet",
}
COMMAND_LINE_TRAINING = ("float_epochs", "epochs", "final_epochs", "train_limit")  # TrainConfig overrides
# TrainConfig fields that leave the weights alike (test_limit: the per-epoch test; rows record their own)
# TrainConfig fields that do not name a run folder: where things go, and "init", which no entry sets (excluded so
# that run folders named before the field existed are still found)
NOT_TRAINING = {"out_dir", "progress", "data_root", "checkpoint_every", "checkpoint_seconds", "test_limit", "init"}
BITS = {levels(bits): bits for bits in (2, 3, 4)}  # T -> the QANN's bits (the progressive run trains these)
HERE = Path(__file__).parent


@dataclasses.dataclass(frozen=True)
class Planned:
    """One row to measure: an entry of a task's preset at T under a variant, and the configs it resolves to."""

    task: str
    entry: Entry
    T: int
    variant: str
    training: TrainConfig  # out_dir: the run folder, named after the configuration
    finetune: FinetuneConfig
    tuning: DataConfig
    split: TuningSplit
    test_limit: int | None

    @property
    def key(self) -> tuple:
        return (self.task, self.entry.dataset, self.entry.model, self.T, self.variant)

    @property
    def run(self) -> Path:
        return Path(self.training.out_dir)

    def __str__(self) -> str:
        return f"{self.task} {self.entry.dataset} {self.entry.model} T={self.T} {self.variant}"

    def record(self) -> dict:
        """What the row is measured under; a recorded row whose record differs is measured again."""
        tuning = {"batch_size": self.tuning.batch_size, "limit": self.tuning.limit, **dataclasses.asdict(self.split)}
        return jsonable(
            {
                "run": self.run.name,
                "training": {
                    field.name: getattr(self.training, field.name)
                    for field in dataclasses.fields(TrainConfig)
                    if field.name not in NOT_TRAINING and getattr(self.training, field.name) != field.default
                },
                "finetune": dataclasses.asdict(self.finetune),
                "tuning": tuning,
                "test_limit": self.test_limit,
            }
        )


def main() -> None:
    args = _arguments()
    if not args.render_only:
        plan = planned_rows(args)
        if args.dry_run:
            dry_run(plan, args)
            return
        measure(plan, args)
    render(args.json, args.markdown, args.plots, markdown_table, render_plots)


def planned_rows(args) -> list[Planned]:
    """The rows of ``--task``'s preset (narrowed by ``--datasets`` and ``--models``) at its T, for the default
    and each ``--ablation`` variant; SystemExit naming the row if a variant's options are not accepted."""
    entries = [
        entry
        for entry in PRESETS[args.task]
        if (args.datasets is None or entry.dataset in args.datasets)
        and (args.models is None or entry.model in args.models)
    ]
    if not entries:
        offered = ", ".join(f"{entry.dataset} {entry.model}" for entry in PRESETS[args.task])
        raise SystemExit(f"--datasets and --models leave none of the {args.task} preset's entries ({offered})")
    return [
        planned(args, entry, T, variant)
        for entry in entries
        for variant in (DEFAULT, *args.ablation)
        for T in (entry.all_time_steps if args.all_T else entry.time_steps)
    ]


def planned(args, entry: Entry, T: int, variant: str) -> Planned:
    """The row of ``entry`` at ``T`` under ``variant``: TrainConfig from the entry's settings, the command line's
    and the variant's overrides (in that order), FinetuneConfig from the command line's and the variant's."""
    where = f"{args.task} {entry.dataset} {entry.model} T={T} {variant!r}"
    test_limit = args.test_limit or entry.test_limit
    command_line = {key: getattr(args, key) for key in COMMAND_LINE_TRAINING if getattr(args, key) is not None}
    overrides = {"model": entry.model, "dataset": entry.dataset, "width": entry.width, "bits": 2}
    overrides |= entry.training | {"test_limit": test_limit} | command_line | VARIANTS[variant].training
    training = build(TrainConfig, overrides | {"data_root": args.data_root, "progress": not args.quiet}, where)
    if BITS.get(T) not in [bits for bits in training.stages() if bits is not None]:
        raise SystemExit(f"{where}: no QANN for T = {T} among the stages trained ({training.stages()})")
    weights = {key: value for key, value in dataclasses.asdict(training).items() if key not in NOT_TRAINING}
    out_dir = args.runs / f"{entry.dataset}-{entry.model}-{digest(weights)}"
    return Planned(
        task=args.task,
        entry=entry,
        T=T,
        variant=variant,
        training=dataclasses.replace(training, out_dir=str(out_dir)),
        finetune=build(FinetuneConfig, dict(args.finetune) | VARIANTS[variant].finetune, where),
        tuning=DataConfig(batch_size=entry.tuning_batch, data_root=args.data_root, limit=args.train_limit),
        split=TuningSplit(held_out=entry.held_out),
        test_limit=test_limit,
    )


def build(kind: type, overrides: dict, where: str):
    """``kind(**overrides)``; SystemExit naming ``where`` for a field ``kind`` lacks or a value it refuses."""
    unknown = overrides.keys() - {field.name for field in dataclasses.fields(kind)}
    if unknown:
        raise SystemExit(f"{where}: {kind.__name__} has no field {', '.join(sorted(unknown))} in this fastsnn")
    try:
        return kind(**overrides)
    except OptionError as error:
        raise SystemExit(f"{where}: {kind.__name__}: {error}") from None


def open_results(args) -> ResultsFile:
    settings = jsonable(settings_of(args))  # as the JSON will hold them, to compare with a recorded run's
    return ResultsFile(args.json, settings, environment(default_device()), ignored=NOT_MEASURED, fresh=args.fresh)


def status(rows: list[dict], planned: Planned) -> str:
    """``"kept"`` if ``rows`` hold the row measured under its plan, else what measuring it means."""
    recorded = [r for r in rows if row_key(r) == planned.key]
    if not recorded:
        return "to measure"
    same = all(recorded[0].get(key) == value for key, value in planned.record().items())
    return "kept" if same else "to measure again (its training, fine-tuning or test images changed)"


def row_key(result: dict) -> tuple:
    return (result["task"], result["dataset"], result["model"], result["T"], result["variant"])


def dry_run(plan: list[Planned], args) -> None:
    """Print, per training run, whether it is reused, and each row's status; nothing is trained or written."""
    record = open_results(args)
    for run, rows in grouped(plan, lambda planned: planned.run).items():
        print(f"{run}: training {'to run' if trained(rows[0].training) is None else 'reused'}")
        for planned in rows:
            print(f"  {planned}: {status(record.runs, planned)}")


def measure(plan: list[Planned], args) -> None:
    """Measure the rows of ``plan`` that ``--json`` lacks, training each run folder once."""
    record = open_results(args)
    for rows in grouped(plan, lambda planned: planned.run).values():
        pending = [planned for planned in rows if status(record.runs, planned) != "kept"]
        for planned in rows:
            if planned not in pending:
                print(f"{planned}: kept from {args.json}")
        if not pending:
            continue
        config = pending[0].training
        print(fetch_dataset(config.dataset, root=config.data_root))
        with record.measuring():
            train_seconds = train(config)
        for group in grouped(pending, lambda planned: planned.T).values():
            with record.measuring() as results:
                for measured in measure_group(group, train_seconds, args):
                    results[:] = [r for r in results if row_key(r) != row_key(measured)] + [measured]
                    print(summary_line(measured), flush=True)
    print(f"total wall time {record.results['wall_seconds'] / 60:.1f} min (rows kept from --json included)")


def trained(config: TrainConfig) -> float | None:
    """The wall time of ``config``'s training if its run folder holds it complete, else None."""
    path = Path(config.out_dir) / "training.json"
    record = json.loads(path.read_text()) if path.exists() else {"complete": False}
    stages = [stage_checkpoint(config.out_dir, bits) for bits in config.stages()]
    return record["seconds"] if record["complete"] and all(stage.exists() for stage in stages) else None


def train(config: TrainConfig) -> float:
    """Train ``config``'s stages (resuming an interrupted run) unless its folder holds them; the training wall
    time, summed over invocations in ``<out_dir>/training.json`` so that a reused run reports it too."""
    seconds = trained(config)
    if seconds is not None:
        print(f"training reused from {config.out_dir} ({seconds / 60:.1f} min when trained)")
        return seconds
    path = Path(config.out_dir) / "training.json"
    record = json.loads(path.read_text()) if path.exists() else {"seconds": 0.0}
    record |= {"complete": False, "config": dataclasses.asdict(config)}
    started = time.perf_counter()
    try:
        train_progressive(config)
        record["complete"] = True
    finally:
        record["seconds"] += time.perf_counter() - started
        write_json(path, record)
    return record["seconds"]


def finetuned(planned: Planned, qann: Path) -> tuple[Path, dict]:
    """The SNN of ``qann`` fine-tuned as ``planned`` says (``finetune_checkpoint``), reused if an earlier
    invocation wrote it, and its record beside it: wall time, corrections kept, options."""
    options = {key: planned.record()[key] for key in ("finetune", "tuning")}
    trained_at = qann.stat().st_mtime_ns  # a QANN trained again gets its own tuned SNNs
    path = planned.run / f"{qann.stem}-snn-{digest(options | {'qann': trained_at})}.safetensors"
    record_path = path.with_suffix(".json")
    if path.exists() and record_path.exists():
        return path, json.loads(record_path.read_text())
    started = time.perf_counter()
    reports = finetune_checkpoint(
        qann,
        path,
        config=planned.finetune,
        data=planned.tuning,
        split=planned.split,
        progress=planned.training.progress,
    )
    record = {"seconds": time.perf_counter() - started, "kept": sum(r.kept for r in reports), "of": len(reports)}
    write_json(record_path, record | options)
    return path, record


def measure_group(group: list[Planned], train_seconds: float, args) -> list[dict]:
    """The rows of ``group`` (one run folder, one T): each variant's fine-tuning, then one evaluation of the
    QANN (and its SNNs), the float ANN and every tuned SNN on the test images."""
    first = group[0]
    qann = stage_checkpoint(first.run, BITS[first.T])
    tuned = {planned.variant: finetuned(planned, qann) for planned in group}
    paths = list(dict.fromkeys(path for path, _ in tuned.values()))  # variants fine-tuned alike share one
    started = time.perf_counter()
    results = evaluate_checkpoints(
        [qann, stage_checkpoint(first.run, None), *paths],
        config=EvaluateConfig(),
        data=DataConfig(data_root=args.data_root, limit=first.test_limit, batch_size=first.entry.eval_batch),
        progress=not args.quiet,
    )
    evaluate_seconds = time.perf_counter() - started
    if len(results["rows"]) != 4 + len(paths):
        raise RuntimeError(f"evaluate_checkpoints returned rows {[r['model'] for r in results['rows']]}")
    tuned_rows = dict(zip(paths, results["rows"][4:], strict=True))  # the SNN checkpoints' rows, in order
    return [
        result_row(planned, results, tuned_rows[tuned[planned.variant][0]], tuned[planned.variant][1])
        | {"train_seconds": round(train_seconds, 1), "evaluate_seconds": round(evaluate_seconds, 1)}
        | planned.record()
        for planned in group
    ]


def result_row(planned: Planned, results: dict, tuned: dict, finetuning: dict) -> dict:
    """The row's figures (percent) from ``evaluate_checkpoints``' ``results`` and the tuned SNN's row."""
    metric, T = results["metrics"][0], planned.T
    signed = row(results, "SNN signed", T)
    return {
        "task": planned.task,
        "dataset": planned.entry.dataset,
        "model": planned.entry.model,
        "width": planned.entry.width,
        "bits": BITS[T],
        "T": T,
        "variant": planned.variant,
        "metric": metric,
        "float": percent(row(results, "float ANN")[metric]),
        "qann": percent(row(results, "QANN")[metric]),
        "snn_unsigned": percent(row(results, "SNN unsigned", T)[metric]),
        "snn_signed": percent(signed[metric]),
        "snn_signed_agreement": percent(signed["agreement"]),
        "snn": percent(tuned[metric]),
        "agreement": percent(tuned["agreement"]),
        "agreement_unit": results["agreement_unit"],
        "test_images": results["samples"],
        "finetune_seconds": round(finetuning["seconds"], 1),
        "corrections_kept": f"{finetuning['kept']}/{finetuning['of']}",
    }


def percent(share: float) -> float:
    return round(100 * share, 3)


def digest(value) -> str:
    """8 hex digits naming a JSON value (a run folder, a tuned checkpoint)."""
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:8]


def jsonable(value):
    """``value`` as it reads back from JSON (tuples as lists), so that records compare with recorded ones."""
    return json.loads(json.dumps(value))


def grouped(items: Iterable, key: Callable) -> dict:
    """``{key(item): [items with that key, in order]}``, keys in order of first appearance."""
    groups: dict = {}
    for item in items:
        groups.setdefault(key(item), []).append(item)
    return groups


def finetune_option(text: str) -> tuple[str, object]:
    """``FIELD=VALUE`` as typed after ``--finetune``: the value read as JSON (5, 1e-3, true), else as text."""
    field, equals, value = text.partition("=")
    if not equals:
        raise argparse.ArgumentTypeError(f"{text!r} is not FIELD=VALUE")
    try:
        return field, json.loads(value)
    except ValueError:
        return field, value


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", choices=TASKS, help="the preset measured (required unless --render-only)")
    parser.add_argument("--all-T", dest="all_T", action="store_true", help="T = 3, 7, 15 (default: 3)")
    ablation = [name for name in VARIANTS if name != DEFAULT]
    parser.add_argument(
        "--ablation", nargs="+", default=[], choices=ablation, metavar="NAME", help=f"also: {'; '.join(ablation)}"
    )
    parser.add_argument("--datasets", nargs="+", help="only these data sets of the preset")
    parser.add_argument("--models", nargs="+", help="only these models of the preset")
    parser.add_argument("--train-limit", type=int, help="train and fine-tune on the first N images (smoke runs)")
    parser.add_argument("--test-limit", type=int, help="test on the first N images (default: the preset's)")
    parser.add_argument("--float-epochs", type=int, help="overrides the preset's (smoke runs)")
    parser.add_argument("--epochs", type=int, help="epochs of the 4- and 3-bit stages; overrides the preset's")
    parser.add_argument("--final-epochs", type=int, help="epochs of the 2-bit stage; overrides the preset's")
    parser.add_argument(
        "--finetune",
        nargs="+",
        default=[],
        type=finetune_option,
        metavar="FIELD=VALUE",
        help="FinetuneConfig overrides of every variant but its own, e.g. steps_per_layer=5 (smoke runs)",
    )
    parser.add_argument("--data-root")
    parser.add_argument("--runs", type=Path, default=HERE / "runs" / "accuracy", help="training runs (reused)")
    parser.add_argument("--json", type=Path, default=RESULTS / "accuracy.json")
    parser.add_argument("--markdown", type=Path, default=RESULTS / "accuracy.md")
    parser.add_argument("--plots", type=Path, default=RESULTS / "accuracy", help="folder of <task>.png")
    parser.add_argument("--render-only", action="store_true", help="only rewrite the table and plots from --json")
    parser.add_argument("--dry-run", action="store_true", help="only list what --json holds and what would be measured")
    parser.add_argument("--fresh", action="store_true", help="measure every row again, discarding --json's")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args()
    if args.task is None and not args.render_only:
        parser.error("--task is required (or --render-only)")
    return args


if __name__ == "__main__":
    main()
