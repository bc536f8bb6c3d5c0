"""The table and plots of benchmarks/accuracy.py, written from its results JSON alone."""

import itertools
from pathlib import Path

from matplotlib.figure import Figure

from accuracy_plan import AIMS, DEFAULT, TASKS

SHOWN_SETTINGS = ("train_limit", "test_limit", "float_epochs", "epochs", "final_epochs")  # command-line overrides
MARKERS = "osD^vx*P"


def float_gap(row: dict) -> float:
    """Percentage points the fine-tuned SNN lies below the float ANN (negative: above)."""
    return row["float"] - row["snn"]


def qann_gap(row: dict) -> float:
    """Percentage points the fine-tuned SNN lies below the QANN (negative: above)."""
    return row["qann"] - row["snn"]


def aim_met(row: dict) -> bool:
    """Whether the fine-tuned SNN meets its task's aim (:data:`accuracy_plan.AIMS`)."""
    aim = AIMS[row["task"]]
    return float_gap(row) <= aim.float_gap and (aim.qann_gap is None or qann_gap(row) <= aim.qann_gap)


def aim_text(task: str) -> str:
    aim = AIMS[task]
    qann = "" if aim.qann_gap is None else f"SNN ≥ QANN − {aim.qann_gap:g} and "
    return f"{task}: {qann}float − SNN ≤ {aim.float_gap:g}"


def summary_line(row: dict) -> str:
    """One line: the row's key, float, QANN, SNN signed and fine-tuned SNN (agreement), times, the aim."""
    return (
        f"{row['task']} {row['dataset']} {row['model']} T={row['T']} {row['variant']} ({row['metric']} %, "
        f"{row['test_images']} images): float {row['float']:.2f}, QANN {row['qann']:.2f}, SNN signed "
        f"{row['snn_signed']:.2f} ({row['snn_signed_agreement']:.2f}), fine-tuned {row['snn']:.2f} "
        f"({row['agreement']:.2f}); train {row['train_seconds'] / 60:.1f} min, fine-tune "
        f"{row['finetune_seconds'] / 60:.1f} min; aim {'met' if aim_met(row) else 'missed'}"
    )


def ordered(rows: list[dict]) -> list[dict]:
    """Rows by task (classification, segmentation, detection), then as measured."""
    return sorted(rows, key=lambda row: TASKS.index(row["task"]))


def markdown_table(results: dict) -> str:
    """One line per row: float, QANN, SNN signed and fine-tuned SNN (agreement with the QANN), the gaps to
    the fine-tuned SNN, training and fine-tuning minutes and the aim; then how it was measured."""
    lines = [
        "| task | data | model | T | variant | metric | test images | float | QANN | SNN signed | fine-tuned SNN "
        "| float − SNN (pp) | QANN − SNN (pp) | train / fine-tune min | aim |",
        "|---" * 15 + "|",
    ]
    for row in ordered(results["runs"]):
        cells = [
            row["task"],
            row["dataset"],
            f"{row['model']} ×{row['width']:g}",
            str(row["T"]),
            row["variant"],
            row["metric"],
            str(row["test_images"]),
            f"{row['float']:.2f}",
            f"{row['qann']:.2f}",
            f"{row['snn_signed']:.2f} ({row['snn_signed_agreement']:.2f})",
            f"{row['snn']:.2f} ({row['agreement']:.2f})",
            f"{float_gap(row):+.2f}",
            f"{qann_gap(row):+.2f}",
            f"{row['train_seconds'] / 60:.1f} / {row['finetune_seconds'] / 60:.1f}",
            "met" if aim_met(row) else "**missed**",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    tasks = [task for task in TASKS if any(row["task"] == task for row in results["runs"])]
    settings = results["settings"]
    overrides = [f"{key} {settings[key]}" for key in SHOWN_SETTINGS if settings.get(key)]
    overrides += [f"fine-tuning {field}={value}" for field, value in settings.get("finetune", [])]
    lines += [
        "",
        "Headline metric % (agreement with the QANN %: images, or pixels for segmentation). SNN signed: converted, "
        "not fine-tuned; fine-tuned SNN: `fastsnn finetune` with the variant's options, default: none. Aims: "
        + "; ".join(aim_text(task) for task in tasks)
        + ". Each row's training (TrainConfig fields that differ from the defaults) and fine-tuning options are in "
        "the JSON. "
        + (f"Command-line overrides: {', '.join(overrides)}. " if overrides else "")
        + f"Device {results['environment']['device']}, commit {results['environment']['commit']}, "
        f"wall time {results.get('wall_seconds', 0) / 60:.1f} min (trainings reused from earlier runs not counted).",
    ]
    return "\n".join(lines)


def render_plots(results: dict, folder: Path) -> None:
    """``<folder>/<task>.png`` per task: float ANN, QANN, SNN signed and the fine-tuned SNNs against T, one
    panel per (data set, model)."""
    folder.mkdir(parents=True, exist_ok=True)
    for task in TASKS:
        rows = [row for row in results["runs"] if row["task"] == task]
        if rows:
            _task_figure(rows).savefig(folder / f"{task}.png", dpi=120)
            print(f"plot written to {folder / f'{task}.png'}")


def _task_figure(rows: list[dict]) -> Figure:
    pairs = list(dict.fromkeys((row["dataset"], row["model"]) for row in rows))
    figure = Figure(figsize=(4.2 * len(pairs), 3.8))
    axes = figure.subplots(1, len(pairs), squeeze=False)[0]
    for axis, (dataset, model) in zip(axes, pairs, strict=True):
        shown = sorted(
            (row for row in rows if (row["dataset"], row["model"]) == (dataset, model)), key=lambda row: row["T"]
        )
        for (name, points), marker in zip(_series(shown).items(), itertools.cycle(MARKERS)):
            axis.plot(*zip(*points, strict=True), marker=marker, markersize=4, label=name, alpha=0.8)
        steps = sorted({row["T"] for row in shown})
        axis.set_xscale("log", base=2)
        axis.set_xticks(steps, labels=[str(T) for T in steps])
        axis.minorticks_off()
        axis.set_xlabel("time steps T")
        axis.set_ylabel(f"{shown[0]['metric']} %")
        axis.set_title(f"{dataset}, {model}", fontsize=9)
        axis.grid(alpha=0.3)
        axis.legend(fontsize=6, loc="best")
    figure.tight_layout()
    return figure


def _series(rows: list[dict]) -> dict[str, list[tuple[int, float]]]:
    """``{name: [(T, value), ...]}``: float, QANN and SNN signed from the default rows, each variant's SNN."""
    series: dict[str, list[tuple[int, float]]] = {}
    for row in rows:
        if row["variant"] == DEFAULT:
            for name, key in (("float ANN", "float"), ("QANN", "qann"), ("SNN signed", "snn_signed")):
                series.setdefault(name, []).append((row["T"], row[key]))
    for row in rows:
        name = "fine-tuned SNN" + ("" if row["variant"] == DEFAULT else f" ({row['variant']})")
        series.setdefault(name, []).append((row["T"], row["snn"]))
    return series
