"""The ``fastsnn`` command: thin argument parsing over the public API, no logic of its own."""

import argparse
import dataclasses
import sys
from pathlib import Path

from . import __version__
from .errors import FastSNNError, TrainingInterrupted
from .models._layers import STEMS
from .neuron import SURROGATES
from .quant import MAX_BITS, MAX_WEIGHT_BITS, MIN_BITS, MIN_WEIGHT_BITS

INTERRUPTED = 130  # exit status after Ctrl-C, as shells report it


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line (naming the option and what it accepts), exit status 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {_one_line(message)} (see {self.prog} --help)\n")


def _int_in(low: int, high: int | None = None):
    """argparse type: an integer in [low, high]; argparse names the option and exits with status 2."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if value < low or (high is not None and value > high):
            accepted = f"{low}..{high}" if high is not None else f">= {low}"
            raise argparse.ArgumentTypeError(f"{value} is out of range (accepted: {accepted})")
        return value

    return parse


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text} must be a finite number > 0")
    return value


def _percentile(text: str) -> float:
    """argparse type for a rate-norm threshold: ``max`` (= 100) or a percentile in (0, 100]."""
    if text == "max":
        return 100.0
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is neither 'max' nor a percentile") from None
    if not 0 < value <= 100:
        raise argparse.ArgumentTypeError(f"{text} is out of range (accepted: 'max' or a percentile in (0, 100])")
    return value


def _one_line(message: str) -> str:
    """``message`` with control characters (newlines, or a \\x1e inside a user's path) escaped."""
    return "".join(char if char.isprintable() else repr(char)[1:-1] for char in message)


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    argv = sys.argv[1:] if argv is None else argv
    for arg in argv:
        # argparse (3.11) turns an option value spelt "--" (as in --batch-size=--) into [] and passes it on unchecked
        if arg.startswith("-") and arg.endswith("=--"):
            parser.error(f"argument {arg.split('=', 1)[0]}: expected a value, got '--'")
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except FastSNNError as error:
        print(f"fastsnn {args.command}: error: {_one_line(str(error))}", file=sys.stderr)
        return 2
    except TrainingInterrupted as stop:
        print(f"fastsnn {args.command}: {_one_line(str(stop))}", file=sys.stderr)
        return INTERRUPTED
    except KeyboardInterrupt:
        print(f"fastsnn {args.command}: interrupted", file=sys.stderr)
        return INTERRUPTED


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="fastsnn", description="Convert quantized ANNs into fast spiking networks.")
    parser.add_argument("--version", action="version", version=f"fastsnn {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    data = commands.add_parser("data", help="locate or fetch a data set and check it")
    data.add_argument("name", help="mnist, fashion-mnist, cifar10, cifar100 or imagenet")
    data.add_argument("--root", help="data folder (default $FASTSNN_DATA or ~/.cache/fastsnn)")
    data.add_argument("--no-download", action="store_true", help="only look for files already present")
    data.set_defaults(run=_data)

    train = commands.add_parser("train", help="train a float ANN and its quantized stages (float → 4 → 3 → 2 bits)")
    _add_training_options(train)
    train.set_defaults(run=_train)

    convert = commands.add_parser("convert", help="convert a QANN checkpoint into a spiking-network checkpoint")
    convert.add_argument("checkpoint", type=Path)
    convert.add_argument("--out", type=Path, required=True, help="where to write the SNN checkpoint (.safetensors)")
    convert.add_argument("-T", "--time-steps", type=_int_in(1), help="time steps (default 2^bits − 1)")
    convert.add_argument("--unsigned", action="store_true", help="plain IF neurons instead of signed ones")
    convert.set_defaults(run=_convert)

    evaluate = commands.add_parser("evaluate", help="accuracy of QANN and SNNs, agreement rate, as a table and JSON")
    _add_compared_checkpoints(evaluate, also="report its accuracy too")
    evaluate.add_argument("-T", "--time-steps", type=_int_in(1), nargs="+", help="time steps to simulate (default 2^bits − 1)")
    evaluate.add_argument(
        "--rate-norm", type=_percentile, nargs="+", default=[], metavar="NORM",
        help="baselines: rate-norm conversion of the float ANN with thresholds at the max or a percentile (e.g. max 99.9)",
    )
    evaluate.add_argument("--rate-norm-T", type=_int_in(1), nargs="+", help="time steps of the baselines (default: -T)")
    evaluate.add_argument("--dataset", help="data set (default: the one the checkpoint was trained on)")
    evaluate.add_argument("--data-root")
    evaluate.add_argument("--batch-size", type=_int_in(1), default=500)
    evaluate.add_argument("--limit", type=_int_in(1), help="evaluate on the first N test images only")
    evaluate.add_argument("--json", type=Path, help="also write the results here")
    evaluate.add_argument("--quiet", action="store_true", help="no progress bar")
    evaluate.set_defaults(run=_evaluate)

    finetune = commands.add_parser("finetune", help="convert a QANN checkpoint and fine-tune the SNN layer by layer")
    finetune.add_argument("checkpoint", type=Path, help="a QANN checkpoint")
    finetune.add_argument("--out", type=Path, required=True, help="where to write the fine-tuned SNN checkpoint (.safetensors)")
    finetune.add_argument("-T", "--time-steps", type=_int_in(1), help="time steps (default 2^bits − 1)")
    finetune.add_argument("--unsigned", action="store_true", help="plain IF neurons instead of signed ones")
    finetune.add_argument("--objective", choices=SURROGATES, default="ste", help="ste: the paper's straight-through objective; bptt: through the T steps")
    finetune.add_argument("--steps", type=_int_in(1), default=100, help="optimizer steps per spiking layer")
    finetune.add_argument("--lr", type=_positive_float, default=1e-3)
    finetune.add_argument("--batch-size", type=_int_in(1), default=64)
    finetune.add_argument("--held-out", type=_int_in(1), default=1000, help="last N training images that decide keep/revert")
    finetune.add_argument("--limit", type=_int_in(1), help="tune on the first N training images only")
    finetune.add_argument("--dataset", help="data set (default: the one the checkpoint was trained on)")
    finetune.add_argument("--data-root")
    finetune.add_argument("--seed", type=_int_in(0, 2**32 - 1), default=0)
    finetune.add_argument("--json", type=Path, help="also write the per-layer report here")
    finetune.add_argument("--quiet", action="store_true", help="no progress bar")
    finetune.set_defaults(run=_finetune)

    analyze = commands.add_parser("analyze", help="per-layer conversion error (table, JSON, PNG) of a QANN checkpoint's SNNs")
    _add_compared_checkpoints(analyze, also="add the quantization error")
    analyze.add_argument("-T", "--time-steps", type=_int_in(1), help="time steps (default 2^bits − 1)")
    analyze.add_argument("--dataset", help="data set (default: the one the checkpoint was trained on)")
    analyze.add_argument("--data-root")
    analyze.add_argument("--limit", type=_int_in(1), default=1000, help="test images to measure on")
    analyze.add_argument("--batch-size", type=_int_in(1), default=250)
    analyze.add_argument("--out", type=Path, help="folder for conversion_errors.json and .png (default: beside the checkpoint)")
    analyze.set_defaults(run=_analyze)

    weights = commands.add_parser("import", help="turn a bare state dict (safetensors, or a trusted .pt) into a checked fastsnn checkpoint")
    weights.add_argument("weights", type=Path, help="state dict file: .safetensors, or .pt/.pth with --allow-pickle")
    weights.add_argument("--model", required=True, help="registry name (see fastsnn.models.list_models)")
    weights.add_argument("--dataset", required=True, help="the data set it was trained on (sets channels and classes)")
    weights.add_argument("--bits", type=_int_in(MIN_BITS, MAX_BITS), help="activation bits of a QANN (omit for a float ANN)")
    weights.add_argument("--weight-bits", type=_int_in(MIN_WEIGHT_BITS, MAX_WEIGHT_BITS))
    weights.add_argument("--width", type=_positive_float, default=1.0, help="channel width multiplier")
    weights.add_argument("--stem", default="cifar", choices=STEMS)
    weights.add_argument("--allow-pickle", action="store_true", help="read a pickle-based .pt/.pth file (weights only); only for files you trust")
    weights.add_argument("--out", type=Path, required=True, help="the fastsnn checkpoint to write (.safetensors)")
    weights.set_defaults(run=_import)

    demo = commands.add_parser("demo", help="train a small VGG on real MNIST at 2 bits, convert (T = 3), fine-tune, compare with rate-norm, print the table")
    _add_training_options(demo, demo=True)
    demo.add_argument("--finetune-steps", type=_int_in(1), default=100, help="fine-tuning steps per spiking layer")
    demo.add_argument("--held-out", type=_int_in(1), default=1000, help="last N training images that decide keep/revert")
    demo.add_argument("--json", type=Path, help="results file (default OUT/results.json)")
    demo.set_defaults(run=_demo)
    return parser


def _add_compared_checkpoints(parser: argparse.ArgumentParser, also: str) -> None:
    """The QANN checkpoint, its float ANN and fine-tuned SNNs: what evaluate and analyze compare."""
    parser.add_argument("checkpoint", type=Path, help="a QANN checkpoint")
    parser.add_argument("--float-checkpoint", type=Path, help=f"the float ANN it came from, to {also}")
    parser.add_argument("--finetuned", type=Path, nargs="+", default=[], help="fine-tuned SNN checkpoints (from `fastsnn finetune`) to add")


def _add_training_options(parser: argparse.ArgumentParser, demo: bool = False) -> None:
    from .workflows.demo import DEMO_DEFAULTS
    from .workflows.train import TrainConfig

    base = TrainConfig(**DEMO_DEFAULTS) if demo else TrainConfig()
    parser.add_argument("--model", default=base.model, help="registry name (see fastsnn.models.list_models)")
    parser.add_argument("--dataset", default=base.dataset)
    parser.add_argument("--data-root")
    parser.add_argument("--bits", type=_int_in(MIN_BITS, MAX_BITS), default=base.bits, help="final activation bits (T = 2^bits − 1)")
    parser.add_argument("--float-only", action="store_true", help="train the float ANN only")
    parser.add_argument("--width", type=_positive_float, default=base.width, help="channel width multiplier")
    parser.add_argument("--stem", default=base.stem, choices=STEMS)
    parser.add_argument("--weight-bits", type=_int_in(MIN_WEIGHT_BITS, MAX_WEIGHT_BITS), help="also quantize weights per channel to this many bits")
    parser.add_argument("--float-epochs", type=_int_in(0), default=base.float_epochs)
    parser.add_argument("--epochs", type=_int_in(0), default=base.epochs, help="epochs per intermediate quantized stage")
    parser.add_argument("--final-epochs", type=_int_in(0), default=base.final_epochs, help="epochs of the last stage (default --epochs)")
    parser.add_argument("--no-progressive", action="store_true", help="go from float straight to --bits")
    parser.add_argument("--batch-size", type=_int_in(1), default=base.batch_size)
    parser.add_argument("--lr", type=_positive_float, default=base.lr, help="float-stage learning rate")
    parser.add_argument("--quant-lr", type=_positive_float, default=base.quant_lr, help="quantized-stage learning rate")
    parser.add_argument("--seed", type=_int_in(0, 2**32 - 1), default=base.seed)
    parser.add_argument("--train-limit", type=_int_in(1), help="train on the first N images only")
    parser.add_argument("--test-limit", type=_int_in(1), help="test on the first N images only")
    parser.add_argument("--out", default=base.out_dir, help="folder for the stage checkpoints")
    parser.add_argument("--checkpoint-every", type=_int_in(1), metavar="STEPS", help="also checkpoint every STEPS steps within an epoch")
    parser.add_argument(
        "--checkpoint-seconds", type=_positive_float, default=base.checkpoint_seconds, metavar="S",
        help=f"and after a step once S seconds passed since the last checkpoint (default {base.checkpoint_seconds:g})",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def _train_config(args):
    from .workflows.train import TrainConfig

    return TrainConfig(
        model=args.model, dataset=args.dataset, bits=None if args.float_only else args.bits, width=args.width,
        stem=args.stem, weight_bits=args.weight_bits, float_epochs=args.float_epochs, epochs=args.epochs, final_epochs=args.final_epochs,
        progressive=not args.no_progressive, batch_size=args.batch_size, lr=args.lr, quant_lr=args.quant_lr,
        seed=args.seed, data_root=args.data_root, out_dir=args.out, train_limit=args.train_limit,
        test_limit=args.test_limit, checkpoint_every=args.checkpoint_every, checkpoint_seconds=args.checkpoint_seconds,
        progress=not args.quiet,
    )


def _data(args) -> int:
    from .data import fetch_dataset

    print(fetch_dataset(args.name, root=args.root, download=not args.no_download))
    return 0


def _train(args) -> int:
    from .workflows.distributed import rank
    from .workflows.train import train_progressive

    paths = train_progressive(_train_config(args))
    if rank() == 0:
        for stage, path in paths.items():
            print(f"{stage}: {path}")
    return 0


def _convert(args) -> int:
    from .workflows.convert import convert_checkpoint
    from .workflows.validation import check_paths

    check_paths(read={"checkpoint": args.checkpoint}, write={"--out": args.out})
    snn = convert_checkpoint(args.checkpoint, args.out, T=args.time_steps, signed=not args.unsigned)
    print(f"{args.out}: {len(snn.neurons())} IF neurons, T={snn.T}, signed={not args.unsigned}")
    return 0


def _evaluate(args) -> int:
    from .analysis import format_results
    from .workflows.atomic import write_json
    from .workflows.evaluate import evaluate_checkpoint
    from .workflows.validation import check_paths

    check_paths(read=_compared(args), write={"--json": args.json}, data_root=args.data_root)
    results = evaluate_checkpoint(
        args.checkpoint, float_checkpoint=args.float_checkpoint, finetuned=args.finetuned, rate_norm=args.rate_norm,
        rate_norm_time_steps=args.rate_norm_T, time_steps=args.time_steps, dataset=args.dataset,
        data_root=args.data_root, batch_size=args.batch_size, limit=args.limit, progress=not args.quiet,
    )
    print(format_results(results))
    if args.json:
        print(f"results written to {write_json(args.json, results)}")
    return 0


def _finetune(args) -> int:
    from .workflows.atomic import write_json
    from .workflows.finetune import finetune_checkpoint, format_reports
    from .workflows.validation import check_paths

    check_paths(read={"checkpoint": args.checkpoint}, write={"--out": args.out, "--json": args.json}, data_root=args.data_root)
    reports = finetune_checkpoint(
        args.checkpoint, args.out, T=args.time_steps, signed=not args.unsigned, objective=args.objective,
        steps_per_layer=args.steps, lr=args.lr, batch_size=args.batch_size, held_out=args.held_out, limit=args.limit,
        dataset=args.dataset, data_root=args.data_root, seed=args.seed, progress=not args.quiet,
    )
    print(format_reports(reports))
    print(f"{args.out}: fine-tuned SNN ({sum(r.kept for r in reports)} of {len(reports)} layers kept)")
    if args.json:
        print(f"results written to {write_json(args.json, [dataclasses.asdict(r) for r in reports])}")
    return 0


def _analyze(args) -> int:
    from .analysis import format_conversion_errors
    from .workflows.analyze import analyze_checkpoint, save_analysis
    from .workflows.validation import check_paths

    out = args.out or args.checkpoint.parent / f"{args.checkpoint.stem}-analysis"
    check_paths(read=_compared(args), write_folders={"--out": out}, data_root=args.data_root)
    errors = analyze_checkpoint(
        args.checkpoint, float_checkpoint=args.float_checkpoint, finetuned=args.finetuned, T=args.time_steps,
        dataset=args.dataset, data_root=args.data_root, limit=args.limit, batch_size=args.batch_size,
    )
    print(format_conversion_errors(errors))
    json_path, plot_path = save_analysis(errors, out, title=args.checkpoint.name)
    print(f"results written to {json_path}\nplot written to {plot_path}")
    return 0


def _import(args) -> int:
    from .data import list_datasets
    from .models import list_models
    from .workflows.imports import import_checkpoint
    from .workflows.validation import check_choice, check_paths

    check_paths(read={"weights": args.weights}, write={"--out": args.out})
    check_choice("--model", args.model, list_models())
    check_choice("--dataset", args.dataset, list_datasets())
    checkpoint = import_checkpoint(
        args.weights, args.out, model=args.model, dataset=args.dataset, bits=args.bits, weight_bits=args.weight_bits,
        width=args.width, stem=args.stem, allow_pickle=args.allow_pickle,
    )
    print(f"{args.out}: {args.model} ({len(checkpoint.model_state)} tensors checked), bits={args.bits}")
    return 0


def _demo(args) -> int:
    from .workflows.demo import run_demo

    run_demo(_train_config(args), finetune_steps=args.finetune_steps, held_out=args.held_out, json=args.json)
    return 0


def _compared(args) -> dict:
    """The input checkpoints of evaluate and analyze, by option."""
    return {"checkpoint": args.checkpoint, "--float-checkpoint": args.float_checkpoint, "--finetuned": args.finetuned}


if __name__ == "__main__":
    sys.exit(main())
