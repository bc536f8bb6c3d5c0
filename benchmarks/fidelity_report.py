"""The tables and plots of benchmarks/fidelity.py, written from its results JSON alone."""

from pathlib import Path

from matplotlib.figure import Figure

from fastsnn.analysis import ConversionErrors, plot_conversion_errors, row
from fidelity_plan import AIM, DEFAULT, VARIANTS

TUNED_PREFIX = "SNN signed fine-tuned: "


def tuned_label(variant: str) -> str:
    """The row name of the signed SNN fine-tuned by ``variant``."""
    return TUNED_PREFIX + variant


def headline(block: dict) -> str:
    """The headline metric of a ``compare_models`` result (accuracy, or mIoU for segmentation)."""
    return block.get("metrics", ["accuracy"])[0]


def _cell(test: dict, model: str, metric: str) -> str:
    """``metric % (agreement %)`` of ``model``'s row in a ``compare_models`` result, – if absent."""
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
    folder.mkdir(parents=True, exist_ok=True)
    runs = sorted({(e["dataset"], e["model"]) for e in results["runs"]})
    if not runs:
        return
    figure = Figure(figsize=(4.2 * len(runs), 3.8))
    axes = figure.subplots(1, len(runs), squeeze=False)
    for axis, (dataset, model) in zip(axes[0], runs, strict=True):
        series: dict[str, list[tuple[int, float]]] = {}
        for entry in results["runs"]:
            if (entry["dataset"], entry["model"]) == (dataset, model):
                for item in entry["test"]["rows"]:
                    if item["T"] is not None and item["model"] != "SNN unsigned":
                        series.setdefault(item["model"], []).append((item["T"], 100 * item["agreement"]))
        for name, points in series.items():
            points.sort()
            label = name.removeprefix(TUNED_PREFIX)
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
    for entry in results["runs"]:
        if "conversion_errors" in entry:
            errors = ConversionErrors(**entry["conversion_errors"])
            name = f"conversion_errors_{entry['dataset']}_{entry['model']}_T{entry['T']}.png"
            title = f"{entry['dataset']} {entry['model']} T={entry['T']}"
            plot_conversion_errors(errors, title=title).savefig(folder / name, dpi=120)
    print(f"plots written to {folder}")
