"""fastsnn against SpikingJelly 2.0.0's ANN→SNN converter: accuracy against T, and simulation time at equal T.

Per data set (MNIST, Fashion-MNIST), one progressive fastsnn training run float → 4 → 3 → 2 bits of a
small VGG (reused from ``--runs`` when complete) gives the float ANN and the QANNs. Then:

  * SpikingJelly converts the **float ANN** with its ``ann2snn.Converter`` (the FX converter) and each of
    three recipes: ``RateCodingRecipe(mode="max")``, ``RateCodingRecipe(mode="99.9%")`` (layer-wise
    thresholds, IF neurons with soft reset and v0 = 0) and ``LocalThresholdBalancingRecipe`` (channel-wise
    thresholds, half-threshold IF neurons). Calibration: the un-augmented training images, in order
    (``--calibration-images``, default all, batches of ``--calibration-batch``), as in SpikingJelly's MNIST
    example. The converted networks run in SpikingJelly's default single-step mode, the state reset with
    ``functional.reset_net`` before each batch, the output summed over the steps; the accuracy at every T
    of ``--time-steps`` comes from one simulation of max(T) steps (the network is causal, so the running
    sum after t steps is exactly the T = t simulation, as in SpikingJelly's own ``val``).
  * fastsnn converts the **QANNs** (``fastsnn.convert(qann, signed=True)``, T = 2^b − 1: b = 2, 3, 4 give
    T = 3, 7, 15) and fine-tunes the 2-bit one (``fastsnn.finetune`` with :data:`FINETUNING`: 30 ``ste`` steps
    per layer kept where the held-out output MSE falls; ``--finetune-steps 0`` skips).
  * Both use direct coding: the normalised image is the input current at every step. Both see the same
    test tensors (one list of batches, loaded once; its size and checksum are recorded).
  * Timing at equal T (``--timing-steps``, default 3 and 15): the full test set through fastsnn's signed SNN
    (time folded into the batch), SpikingJelly single-step (a Python loop over T) and SpikingJelly
    multi-step (``functional.set_step_mode(net, "m")`` on an input ``[T, B, ...]``), with the SpikingJelly
    recipe that is most accurate at max(T). Same batch (``--batch-size``), same ``torch.set_num_threads``
    (``--threads``), one process; the order is interleaved (A B C A B C ...) and each gets the best of
    ``--repeats`` passes after a one-batch warm-up. The test batches are already in memory, so data loading
    is not timed. For a T that is no 2^b − 1 of a trained QANN, fastsnn's network is the 2-bit QANN
    converted with that T (the cost depends on T and the architecture, not on b).

Installing SpikingJelly (not a fastsnn dependency; ``harness.spikingjelly_runner`` says how when it is
missing). Its wheel declares torchaudio, scipy, tensorboard and more, none of which
``spikingjelly.activation_based.ann2snn`` imports; next to the pinned torch::

    pip install --no-deps spikingjelly==2.0.0
    pip install loguru requests     # the only modules ann2snn imports beyond torch, numpy, tqdm

Runs::

    python benchmarks/spikingjelly_compare.py                       # full test sets; 2.5 h on 2 cores
    python benchmarks/spikingjelly_compare.py --test-limit 300 --train-limit 2000 --float-epochs 1 \\
        --epochs 1 --final-epochs 1 --calibration-images 1000 --finetune-steps 5 --repeats 1 \\
        --runs /tmp/sj-smoke/runs --json /tmp/sj-smoke/r.json --markdown /tmp/sj-smoke/r.md   # smoke run
    python benchmarks/spikingjelly_compare.py --render-only         # rewrite the Markdown from --json
    python benchmarks/spikingjelly_compare.py --retime              # time the kept data sets again (new code)

Everything goes to ``--json`` (settings, versions, device, threads, commit) after each data set, atomically.
Running again keeps the data sets already there; with other measurement settings it refuses to mix them
(``--fresh`` discards them).
"""

import argparse
import dataclasses
import json
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from fastsnn import convert
from fastsnn.data import load_dataset
from fastsnn.finetune import FinetuneConfig, finetune
from fastsnn.quant import levels
from fastsnn.workflows.checkpoint import load_checkpoint
from fastsnn.workflows.sources import first, tuning_split
from fastsnn.workflows.train import TrainConfig, stage_checkpoint, train_progressive
from harness import RECIPES, ResultsFile, SpikingJelly, environment, read_results, require_spikingjelly, settings_of

CONTENDERS = ("fastsnn", "SpikingJelly single-step", "SpikingJelly multi-step")
# fastsnn's fine-tuning of the 2-bit SNN: layer-wise ste, kept where the held-out output MSE falls (what this
# benchmark measured before the agreement criterion, calibration and the end-to-end phase existed; any fall
# kept); --finetune-steps and --finetune-lr override its budget
FINETUNING = FinetuneConfig(objective="ste", steps_per_layer=30, criterion="mse", end_to_end_steps=0, significance=1.0)
# settings that do not change what is measured
NOT_MEASURED = {"datasets", "runs", "json", "markdown", "render_only", "progress", "fresh", "retime"}
HERE = Path(__file__).parent


def main() -> None:
    args = _arguments()
    if not args.render_only:
        run(args)
    results = read_results(args.json)
    markdown = markdown_tables(results)
    args.markdown.parent.mkdir(parents=True, exist_ok=True)
    args.markdown.write_text(markdown + "\n")
    print(markdown)


def run(args) -> None:
    sj = require_spikingjelly()
    torch.set_num_threads(args.threads)
    record = ResultsFile(
        args.json,
        settings_of(args),
        environment("cpu", spikingjelly=sj.version),
        ignored=NOT_MEASURED,
        fresh=args.fresh,
    )
    kept = {entry["dataset"]: entry for entry in record.runs}
    for dataset in args.datasets:
        if dataset not in kept:
            with record.measuring() as runs:
                runs.append(benchmark_dataset(dataset, args, sj))
        elif args.retime:
            print(f"{dataset}: kept from {args.json}, timing measured again")
            with record.measuring():
                retime(kept[dataset], args, sj)
        else:
            print(f"{dataset}: kept from {args.json}")
    print(f"total wall time {record.results['wall_seconds'] / 60:.1f} min (data sets kept from --json included)")


def _log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def _trained(dataset: str, args):
    """``(config, float ANN, {bits: QANN}, test batches)``: the progressive run (trained once, then reused)."""
    config = TrainConfig(
        model=args.model,
        dataset=dataset,
        bits=2,
        width=args.width,
        float_epochs=args.float_epochs,
        epochs=args.epochs,
        final_epochs=args.final_epochs,
        seed=args.seed,
        data_root=args.data_root,
        out_dir=str(args.runs / f"{dataset}-{args.model}"),
        progress=args.progress,
        train_limit=args.train_limit,
        test_limit=args.test_limit,
    )
    train_progressive(config)
    float_model = load_checkpoint(stage_checkpoint(config.out_dir, None)).build_model().eval()
    qanns = {
        bits: load_checkpoint(stage_checkpoint(config.out_dir, bits)).build_model().eval()
        for bits in config.stages()
        if bits is not None
    }
    # the same test tensors for every model, loaded once
    test_set = first(load_dataset(dataset, train=False, root=args.data_root), args.test_limit)
    batches = list(DataLoader(test_set, batch_size=args.batch_size))
    return config, float_model, qanns, batches


def _spikingjelly_networks(dataset: str, float_model, recipes: Iterable[str], args, sj: SpikingJelly) -> dict:
    """``{recipe: (SpikingJelly network, conversion seconds)}`` of the float ANN, calibrated on training images."""
    calibration_set = first(load_dataset(dataset, train=True, root=args.data_root), args.train_limit)
    calibration = DataLoader(first(calibration_set, args.calibration_images), batch_size=args.calibration_batch)
    networks = {}
    for recipe in recipes:
        started = time.perf_counter()
        network = sj.convert(float_model, recipe, calibration, progress=args.progress)
        networks[recipe] = (network, time.perf_counter() - started)
    return networks


def benchmark_dataset(dataset: str, args, sj: SpikingJelly) -> dict:
    seconds = {}
    started = time.perf_counter()
    config, float_model, qanns, batches = _trained(dataset, args)
    seconds["train (0 if reused)"] = time.perf_counter() - started
    images = sum(len(y) for _, y in batches)
    checksum = float(sum(x.double().sum() for x, _ in batches))
    _log(f"{dataset}: {images} test images, checksum {checksum:.3f}")

    entry = {
        "dataset": dataset,
        "model": args.model,
        "width": args.width,
        "test_images": images,
        "test_checksum": checksum,
        "seconds": seconds,
    }
    started = time.perf_counter()
    labels = torch.cat([y for _, y in batches])
    float_predictions = _predictions(float_model, batches)
    qann_predictions = {bits: _predictions(qann, batches) for bits, qann in qanns.items()}
    entry["ann"] = {"float ANN": _agreement(float_predictions, labels)} | {
        f"QANN {bits}-bit": _agreement(predictions, labels) for bits, predictions in qann_predictions.items()
    }

    # fastsnn: signed SNN of each QANN at T = 2^b - 1 (agreement: with that QANN), and the fine-tuned 2-bit one
    snns = {levels(bits): convert(qann, signed=True) for bits, qann in qanns.items()}
    snn_predictions = {levels(bits): _predictions(snns[levels(bits)], batches) for bits in qanns}
    entry["fastsnn"] = {"signed": {str(T): _agreement(snn_predictions[T], labels) for T in sorted(snns)}}
    entry["agreement"] = {
        "fastsnn": {
            "signed": {str(levels(b)): _agreement(snn_predictions[levels(b)], p) for b, p in qann_predictions.items()}
        },
        "spikingjelly": {},
    }
    seconds["fastsnn accuracy"] = time.perf_counter() - started
    if args.finetune_steps > 0:
        started = time.perf_counter()
        tuning, held_out = tuning_split(dataset, args.data_root, held_out=args.held_out, limit=args.train_limit)
        generator = torch.Generator().manual_seed(args.seed)
        tuned = finetune(
            snns[levels(2)],
            qanns[2],
            DataLoader(tuning, batch_size=args.finetune_batch, shuffle=True, generator=generator),
            held_out=DataLoader(held_out, batch_size=250),
            config=dataclasses.replace(FINETUNING, steps_per_layer=args.finetune_steps, lr=args.finetune_lr),
            progress=args.progress,
        )
        variant, predictions = f"signed + fine-tuned ({FINETUNING.objective})", _predictions(tuned, batches)
        entry["fastsnn"][variant] = {str(levels(2)): _agreement(predictions, labels)}
        entry["agreement"]["fastsnn"][variant] = {str(levels(2)): _agreement(predictions, qann_predictions[2])}
        seconds["fastsnn fine-tune + accuracy"] = time.perf_counter() - started
    _log(f"{dataset}: ANN {entry['ann']}, fastsnn {entry['fastsnn']}")

    # SpikingJelly: convert the float ANN with each recipe, simulate max(T) steps single-step
    converted, entry["spikingjelly"] = {}, {}
    for name, (network, convert_seconds) in _spikingjelly_networks(dataset, float_model, RECIPES, args, sj).items():
        converted[name] = network
        seconds[f"SpikingJelly convert {name}"] = convert_seconds
        started = time.perf_counter()
        entry["spikingjelly"][name], entry["agreement"]["spikingjelly"][name] = _sj_accuracies(
            sj, network, batches, args.time_steps, float_predictions
        )
        seconds[f"SpikingJelly accuracy {name}"] = time.perf_counter() - started
        _log(f"{dataset} SpikingJelly {name}: {entry['spikingjelly'][name]}")
    top = str(max(args.time_steps))
    timed_recipe = max(RECIPES, key=lambda name: entry["spikingjelly"][name][top])
    entry["timed_recipe"] = timed_recipe
    entry["checks"] = _checks(sj, converted[timed_recipe], batches[0][0], min(args.timing_steps))
    entry["checks"]["spikingjelly_max_pools"] = {  # what SpikingJelly made of the float ANN's max-pools
        name: type(module).__name__
        for name, module in converted[timed_recipe].named_modules()
        if "MaxPool" in type(module).__name__
    }
    _time_entry(entry, snns, qanns[2], converted[timed_recipe], batches, args, sj)
    return entry


def retime(entry: dict, args, sj: SpikingJelly) -> None:
    """Measure ``entry``'s timing rows again (same networks, data and recipe; accuracies are kept)."""
    _, float_model, qanns, batches = _trained(entry["dataset"], args)
    recipe = entry["timed_recipe"]
    network, _ = _spikingjelly_networks(entry["dataset"], float_model, [recipe], args, sj)[recipe]
    snns = {levels(bits): convert(qann, signed=True) for bits, qann in qanns.items()}
    _time_entry(entry, snns, qanns[2], network, batches, args, sj)
    entry["retimed"] = {"date": time.strftime("%Y-%m-%d")} | environment("cpu", spikingjelly=sj.version)


def _time_entry(entry: dict, snns: dict, qann2, sj_net, batches, args, sj: SpikingJelly) -> None:
    started = time.perf_counter()
    entry["timing"] = [_timing(T, snns, qann2, sj_net, batches, args, sj) for T in args.timing_steps]
    entry["seconds"]["timing"] = time.perf_counter() - started
    for row in entry["timing"]:
        _log(f"{entry['dataset']} T={row['T']}: {json.dumps(row)}")


@torch.no_grad()
def _correct(predict: Callable[[torch.Tensor], torch.Tensor], batches) -> int:
    """How many images of ``batches`` ``(images [B, ...], labels [B])`` get the right class from ``predict``
    (images → outputs ``[B, classes]``)."""
    return sum(int((predict(x).argmax(1) == y).sum()) for x, y in batches)


@torch.no_grad()
def _predictions(model, batches) -> torch.Tensor:
    """The class ``model`` predicts for every image of ``batches`` ``(images [B, ...], labels [B])``: ``[N]``."""
    return torch.cat([model(x).argmax(1) for x, _ in batches])


def _agreement(predictions: torch.Tensor, reference: torch.Tensor) -> float:
    """The fraction of images on which ``predictions [N]`` equal ``reference [N]`` (labels: the accuracy)."""
    return float((predictions == reference).double().mean())


@torch.no_grad()
def _sj_accuracies(sj: SpikingJelly, net, batches, time_steps: list[int], reference: torch.Tensor) -> tuple[dict, dict]:
    """Accuracy of a SpikingJelly SNN (single-step) at every T of ``time_steps``, and its agreement with the
    ``reference [N]`` predictions (of the float ANN it was converted from), from one max(T) simulation."""
    predictions = {T: [] for T in time_steps}
    for x, _ in batches:
        for t, total in enumerate(sj.single_step_sums(net, x, max(time_steps)), start=1):
            if t in predictions:
                predictions[t].append(total.argmax(1))
    labels = torch.cat([y for _, y in batches])
    joined = {T: torch.cat(values) for T, values in predictions.items()}
    return (
        {str(T): _agreement(joined[T], labels) for T in time_steps},
        {str(T): _agreement(joined[T], reference) for T in time_steps},
    )


def _checks(sj: SpikingJelly, net, x: torch.Tensor, T: int) -> dict:
    """That the timed SpikingJelly network spikes (firing rate per neuron layer at T on one batch) and that
    its multi-step mode gives the single-step outputs."""
    rates, hooks = {}, []
    for name, module in net.named_modules():
        if isinstance(module, sj.neuron.BaseNode):

            def record(module, inputs, output, name=name):
                rates.setdefault(name, []).append(float(output.float().mean()))

            hooks.append(module.register_forward_hook(record))
    single = sj.single_step(net, x, T)
    for hook in hooks:
        hook.remove()
    multi = sj.multi_step(sj.multi_step_copy(net), x, T)
    return {
        "T": T,
        "firing_rate_per_layer": {name: sum(values) / len(values) for name, values in rates.items()},
        "multi_vs_single_step_max_abs_difference": float((multi - single).abs().max()),
    }


def _timing(T: int, snns: dict, qann2, sj_net, batches, args, sj: SpikingJelly) -> dict:
    """Best-of-``args.repeats`` wall time of the full test set for each contender at ``T``, interleaved."""
    snn = snns.get(T) or convert(qann2, signed=True, T=T)
    multi = sj.multi_step_copy(sj_net)
    contenders = {
        "fastsnn": snn,
        "SpikingJelly single-step": lambda x: sj.single_step(sj_net, x, T),
        "SpikingJelly multi-step": lambda x: sj.multi_step(multi, x, T),
    }
    for predict in contenders.values():  # warm-up
        _correct(predict, batches[:1])
    best = dict.fromkeys(contenders, float("inf"))
    correct = {}
    for _ in range(args.repeats):
        for name, predict in contenders.items():
            started = time.perf_counter()
            correct[name] = _correct(predict, batches)
            best[name] = min(best[name], time.perf_counter() - started)
    images = sum(len(y) for _, y in batches)
    faster_sj = min(best["SpikingJelly single-step"], best["SpikingJelly multi-step"])
    return {
        "T": T,
        "seconds": best,
        "ms_per_step": {name: 1000 * value / T for name, value in best.items()},
        "accuracy": {name: value / images for name, value in correct.items()},
        "fastsnn_speedup_vs_faster_spikingjelly": faster_sj / best["fastsnn"],
        "faster_spikingjelly_mode": min(
            ("SpikingJelly single-step", "SpikingJelly multi-step"), key=lambda name: best[name]
        ),
    }


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.2f}"


def _cell(accuracy: float | None, agreement: float | None) -> str:
    """Accuracy %, and the agreement % with the network converted in parentheses where measured."""
    return _pct(accuracy) if agreement is None else f"{_pct(accuracy)} ({_pct(agreement)})"


def markdown_tables(results: dict) -> str:
    """An accuracy table (rows: method; columns: T) and a timing table, from the JSON."""
    settings, environment = results["settings"], results["environment"]
    steps = [str(T) for T in settings["time_steps"]]
    lines = [
        "| data set | model | converter (network converted) | " + " | ".join(f"T = {T}" for T in steps) + " |",
        "|---|---|---|" + "---|" * len(steps),
    ]
    aims = []
    for entry in results["runs"]:
        head = f"| {entry['dataset']} | {entry['model']} ×{entry['width']} | "
        ann = entry["ann"]
        anns = ", ".join(f"{name} {_pct(value)}" for name, value in ann.items())
        lines.append(head + f"ANN accuracy: {anns} |" + " |" * len(steps))
        agreement = entry.get("agreement", {})
        for variant, values in entry["fastsnn"].items():
            label = f"fastsnn {variant} (QANN, 2^b − 1 = T)"
            agreed = agreement.get("fastsnn", {}).get(variant, {})
            lines.append(head + label + " | " + " | ".join(_cell(values.get(T), agreed.get(T)) for T in steps) + " |")
        for recipe, values in entry["spikingjelly"].items():
            label = f"SpikingJelly {recipe} (float ANN)"
            agreed = agreement.get("spikingjelly", {}).get(recipe, {})
            lines.append(head + label + " | " + " | ".join(_cell(values.get(T), agreed.get(T)) for T in steps) + " |")
        ours = max(values.get("3", 0.0) for values in entry["fastsnn"].values())
        best_recipe = max(entry["spikingjelly"], key=lambda name: entry["spikingjelly"][name][steps[-1]])
        theirs = entry["spikingjelly"][best_recipe][steps[-1]]
        verdict = "met" if ours > theirs else "missed"
        aims.append(
            f"{entry['dataset']}: fastsnn at T = 3 {_pct(ours)} vs SpikingJelly's best at T = {steps[-1]} "
            f"{_pct(theirs)} ({best_recipe}): aim {verdict}."
        )
    lines += ["", *aims, ""]
    lines += [
        "| data set | T | fastsnn s | SpikingJelly single-step s | SpikingJelly multi-step s "
        "| ms per step (fastsnn / single / multi) | fastsnn speed-up vs SpikingJelly's faster mode |",
        "|---|---|---|---|---|---|---|",
    ]
    speedups = []
    for entry in results["runs"]:
        for row in entry["timing"]:
            s, per = row["seconds"], row["ms_per_step"]
            ratio = row["fastsnn_speedup_vs_faster_spikingjelly"]
            speedups.append(ratio)
            lines.append(
                f"| {entry['dataset']} | {row['T']} | "
                + " | ".join(f"{s[name]:.2f}" for name in CONTENDERS)
                + " | "
                + " / ".join(f"{per[name]:.0f}" for name in CONTENDERS)
                + f" | {ratio:.2f}× (vs {row['faster_spikingjelly_mode'].removeprefix('SpikingJelly ')}) |"
            )
    limit = settings.get("test_limit")
    test_images = "the full test sets" if limit is None else f"the first {limit} test images"
    entry0 = results["runs"][0] if results["runs"] else {}
    lines.append("")
    lines.append(
        f"Accuracy in % on {test_images} (in parentheses, where measured: agreement % of the predictions with "
        "the network converted, the QANN for fastsnn, the float ANN for SpikingJelly); direct (constant) input "
        "coding for both. SpikingJelly "
        f"{environment['spikingjelly']}: `ann2snn.Converter` of the float ANN, calibrated on "
        f"{settings['calibration_images'] or 'all'} training images (batch {settings['calibration_batch']}), "
        "simulated single-step with `functional.reset_net` per batch. fastsnn: `convert(qann, signed=True)` "
        "of the 2-, 3- and 4-bit QANNs of the same progressive run (T = 3, 7, 15); fine-tuning "
        f"{settings['finetune_steps']} ste steps per layer. Timing: the full evaluation of {test_images}, "
        f"batch {settings['batch_size']}, {environment['threads']} threads, best of {settings['repeats']} "
        f"interleaved passes, SpikingJelly with the recipe most accurate at T = {steps[-1]} "
        f"({entry0.get('timed_recipe', '–')}). Training: float {settings['float_epochs']} epochs, 4 and 3 bits "
        f"{settings['epochs']}, 2 bits {settings['final_epochs']}; seed {settings['seed']}. "
        f"torch {environment['torch']}, {environment['device']}; wall time {results['wall_seconds'] / 60:.1f} min."
    )
    if speedups:
        lines.append(f"Speed-up range: {min(speedups):.2f}× – {max(speedups):.2f}× (aim ≥ 1.5×).")
    for entry in results["runs"]:
        pools = entry.get("checks", {}).get("spikingjelly_max_pools")
        if pools:
            lines.append(
                f"{entry['dataset']}, {entry['model']}: SpikingJelly's converter left the float ANN's {len(pools)} "
                f"max-pools as they were ({', '.join(sorted(set(pools.values())))}), so they pool each step's spikes, "
                "not rates; fastsnn pools the cumulative spike counts (`SpikingMaxPool`)."
            )
        if "retimed" in entry:
            lines.append(
                f"{entry['dataset']}: timing measured again on {entry['retimed']['date']} (commit "
                f"{entry['retimed']['commit']}); its accuracies are from the first run."
            )
    for entry in results["runs"]:  # time to accuracy: not interleaved, so only indicative
        ours = next((row for row in entry["timing"] if row["T"] == 3), None)
        recipe = max(entry["spikingjelly"], key=lambda name: entry["spikingjelly"][name][steps[-1]])
        theirs = entry["seconds"].get(f"SpikingJelly accuracy {recipe}")
        if ours is not None and theirs is not None:
            lines.append(
                f"{entry['dataset']}: SpikingJelly's single-step accuracy pass up to T = {steps[-1]} ({recipe}, "
                f"{_pct(entry['spikingjelly'][recipe][steps[-1]])} %) took {theirs:.1f} s against fastsnn's "
                f"{ours['seconds']['fastsnn']:.1f} s at T = 3 ({_pct(ours['accuracy']['fastsnn'])} %): "
                f"{theirs / ours['seconds']['fastsnn']:.0f}× (not interleaved; indicative only)."
            )
    return "\n".join(lines)


def _arguments():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", nargs="+", default=["mnist", "fashion-mnist"])
    parser.add_argument("--model", default="vgg11")
    parser.add_argument("--width", type=float, default=0.25)
    parser.add_argument("--time-steps", nargs="+", type=int, default=[3, 7, 15, 31, 63], help="SpikingJelly's T")
    parser.add_argument("--timing-steps", nargs="+", type=int, default=[3, 15], help="T of the timed evaluations")
    parser.add_argument("--batch-size", type=int, default=100, help="evaluation batch, for every contender")
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads for the whole run")
    parser.add_argument("--repeats", type=int, default=2, help="timed passes per contender (best is kept)")
    parser.add_argument("--float-epochs", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=1, help="epochs of the 4- and 3-bit stages")
    parser.add_argument("--final-epochs", type=int, default=3, help="epochs of the 2-bit stage")
    parser.add_argument("--calibration-images", type=int, help="SpikingJelly calibration images (default: all)")
    parser.add_argument("--calibration-batch", type=int, default=100)
    parser.add_argument("--finetune-steps", type=int, default=30, help="fastsnn fine-tuning steps/layer; 0: none")
    parser.add_argument("--finetune-batch", type=int, default=32)
    parser.add_argument("--finetune-lr", type=float, default=1e-3)
    parser.add_argument("--held-out", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--train-limit", type=int, help="train (and calibrate) on the first N images (smoke runs)")
    parser.add_argument("--test-limit", type=int, help="test on the first N images only (smoke runs)")
    parser.add_argument("--data-root")
    parser.add_argument(
        "--runs", type=Path, default=HERE / "runs" / "spikingjelly_compare", help="training checkpoints (reused)"
    )
    parser.add_argument("--json", type=Path, default=HERE / "results" / "spikingjelly_compare.json")
    parser.add_argument("--markdown", type=Path, default=HERE / "results" / "spikingjelly_compare.md")
    parser.add_argument("--render-only", action="store_true", help="only rewrite the Markdown from --json")
    parser.add_argument("--fresh", action="store_true", help="measure every data set again, discarding --json")
    parser.add_argument(
        "--retime", action="store_true", help="measure the timing of data sets kept from --json again (new code)"
    )
    parser.add_argument("--progress", action="store_true", help="progress bars")
    args = parser.parse_args()
    args.time_steps = sorted(set(args.time_steps))
    return args


if __name__ == "__main__":
    main()
