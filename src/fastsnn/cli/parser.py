"""The ``fastsnn`` argument parser: commands, options, and option types that name what they accept."""

import argparse
from pathlib import Path

from .. import __version__
from ..finetune import CRITERIA
from ..models._layers import STEMS
from ..neuron import SURROGATES
from ..quant import MAX_BITS, MAX_WEIGHT_BITS, MIN_BITS, MIN_WEIGHT_BITS
from ..workflows.demo import DEMOS
from . import commands


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line (naming the option and what it accepts), exit status 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {one_line(message)} (see {self.prog} --help)\n")


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


def one_line(message: str) -> str:
    """``message`` with control characters (newlines, or a \\x1e inside a user's path) escaped."""
    return "".join(char if char.isprintable() else repr(char)[1:-1] for char in message)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="fastsnn", description="Convert quantized ANNs into fast spiking networks.")
    parser.add_argument("--version", action="version", version=f"fastsnn {__version__}")
    subcommands = parser.add_subparsers(dest="command", required=True)

    data = subcommands.add_parser("data", help="locate or fetch a data set and check it")
    data.add_argument("name", help="mnist, fashion-mnist, cifar10, cifar100 or imagenet")
    data.add_argument("--root", help="data folder (default $FASTSNN_DATA or ~/.cache/fastsnn)")
    data.add_argument("--no-download", action="store_true", help="only look for files already present")
    data.set_defaults(run=commands.data)

    train = subcommands.add_parser("train", help="train a float ANN and its quantized stages (float → 4 → 3 → 2 bits)")
    _add_training_options(train)
    train.set_defaults(run=commands.train)

    convert = subcommands.add_parser("convert", help="convert a QANN checkpoint into a spiking-network checkpoint")
    convert.add_argument("checkpoint", type=Path)
    convert.add_argument("--out", type=Path, required=True, help="where to write the SNN checkpoint (.safetensors)")
    convert.add_argument("-T", "--time-steps", type=_int_in(1), help="time steps (default 2^bits − 1)")
    convert.add_argument("--unsigned", action="store_true", help="plain IF neurons instead of signed ones")
    convert.set_defaults(run=commands.convert)

    evaluate = subcommands.add_parser("evaluate", help="accuracy of QANN and SNNs, agreement rate, as a table and JSON")
    _add_compared_checkpoints(evaluate, also="report its accuracy too")
    evaluate.add_argument(
        "-T", "--time-steps", type=_int_in(1), nargs="+", help="time steps to simulate (default 2^bits − 1)"
    )
    evaluate.add_argument(
        "--rate-norm",
        type=_percentile,
        nargs="+",
        default=[],
        metavar="NORM",
        help="baselines: rate-norm conversion of the float ANN, thresholds at the max or a percentile (e.g. max 99.9)",
    )
    evaluate.add_argument("--rate-norm-T", type=_int_in(1), nargs="+", help="time steps of the baselines (default: -T)")
    evaluate.add_argument("--dataset", help="data set (default: the one the checkpoint was trained on)")
    evaluate.add_argument("--data-root")
    evaluate.add_argument("--batch-size", type=_int_in(1), default=500)
    evaluate.add_argument("--limit", type=_int_in(1), help="evaluate on the first N test images only")
    evaluate.add_argument("--json", type=Path, help="also write the results here")
    evaluate.add_argument(
        "--save-predictions",
        type=Path,
        metavar="DIR",
        help="segmentation / detection: PNGs of the first test images with the target and the QANN's and SNNs' "
        "masks or boxes side by side",
    )
    evaluate.add_argument(
        "--activity",
        type=_int_in(1),
        nargs="?",
        const=500,
        metavar="N",
        help="also measure firing rates, synaptic operations, MACs and energy per image of each model on the "
        "first N test images (default 500)",
    )
    evaluate.add_argument("--quiet", action="store_true", help="no progress bar")
    evaluate.set_defaults(run=commands.evaluate)

    finetune = subcommands.add_parser(
        "finetune", help="convert a QANN checkpoint and fine-tune the SNN (layer by layer, calibration, end to end)"
    )
    finetune.add_argument("checkpoint", type=Path, help="a QANN checkpoint")
    finetune.add_argument(
        "--out", type=Path, required=True, help="where to write the fine-tuned SNN checkpoint (.safetensors)"
    )
    finetune.add_argument("-T", "--time-steps", type=_int_in(1), help="time steps (default 2^bits − 1)")
    finetune.add_argument("--unsigned", action="store_true", help="plain IF neurons instead of signed ones")
    finetune.add_argument(
        "--objective",
        choices=SURROGATES,
        default="ste",
        help="ste: the paper's straight-through objective; bptt: through the T steps",
    )
    finetune.add_argument(
        "--steps", type=_int_in(0), default=100, help="layer-wise optimizer steps per spiking layer (0: none)"
    )
    finetune.add_argument("--lr", type=_positive_float, default=1e-3)
    finetune.add_argument(
        "--calibrate", action="store_true", help="also shift each layer's per-channel bias by its mean error"
    )
    finetune.add_argument(
        "--end-to-end-steps", type=_int_in(0), default=0, help="steps of end-to-end distillation at the end (0: none)"
    )
    finetune.add_argument(
        "--criterion",
        choices=CRITERIA,
        default="agreement",
        help="keep a correction if held-out agreement with the QANN rises (ties: output MSE), or if the MSE falls",
    )
    finetune.add_argument("--batch-size", type=_int_in(1), default=64)
    finetune.add_argument(
        "--held-out", type=_int_in(1), default=1000, help="last N training images that decide keep/revert"
    )
    finetune.add_argument("--limit", type=_int_in(1), help="tune on the first N training images only")
    finetune.add_argument("--dataset", help="data set (default: the one the checkpoint was trained on)")
    finetune.add_argument("--data-root")
    finetune.add_argument("--seed", type=_int_in(0, 2**32 - 1), default=0)
    finetune.add_argument("--json", type=Path, help="also write the per-layer report here")
    finetune.add_argument("--quiet", action="store_true", help="no progress bar")
    finetune.set_defaults(run=commands.finetune)

    analyze = subcommands.add_parser(
        "analyze", help="per-layer conversion error (table, JSON, PNG) of a QANN checkpoint's SNNs"
    )
    _add_compared_checkpoints(analyze, also="add the quantization error")
    analyze.add_argument("-T", "--time-steps", type=_int_in(1), help="time steps (default 2^bits − 1)")
    analyze.add_argument("--dataset", help="data set (default: the one the checkpoint was trained on)")
    analyze.add_argument("--data-root")
    analyze.add_argument("--limit", type=_int_in(1), default=1000, help="test images to measure on")
    analyze.add_argument("--batch-size", type=_int_in(1), default=250)
    analyze.add_argument(
        "--out", type=Path, help="folder for conversion_errors.json and .png (default: beside the checkpoint)"
    )
    analyze.set_defaults(run=commands.analyze)

    weights = subcommands.add_parser(
        "import", help="turn a bare state dict (safetensors, or a trusted .pt) into a checked fastsnn checkpoint"
    )
    weights.add_argument("weights", type=Path, help="state dict file: .safetensors, or .pt/.pth with --allow-pickle")
    weights.add_argument("--model", required=True, help="registry name (see fastsnn.models.list_models)")
    weights.add_argument("--dataset", required=True, help="the data set it was trained on (sets channels and classes)")
    weights.add_argument(
        "--bits", type=_int_in(MIN_BITS, MAX_BITS), help="activation bits of a QANN (omit for a float ANN)"
    )
    weights.add_argument("--weight-bits", type=_int_in(MIN_WEIGHT_BITS, MAX_WEIGHT_BITS))
    weights.add_argument("--width", type=_positive_float, default=1.0, help="channel width multiplier")
    weights.add_argument("--stem", default="cifar", choices=STEMS)
    weights.add_argument(
        "--allow-pickle",
        action="store_true",
        help="read a pickle-based .pt/.pth file (weights only); only for files you trust",
    )
    weights.add_argument("--out", type=Path, required=True, help="the fastsnn checkpoint to write (.safetensors)")
    weights.set_defaults(run=commands.import_weights)

    demo = subcommands.add_parser(
        "demo",
        help="train a 2-bit network on real data, convert (T = 3), fine-tune, compare with rate-norm, print a table",
    )
    demo.add_argument(
        "--task",
        choices=list(DEMOS),
        default="classification",
        help="classification: VGG-11 on MNIST; segmentation: DeepLab-VGG9 on Fashion-MNIST scenes; "
        "detection: Tiny-YOLOv2 on Fashion-MNIST scenes "
        "(other training options default to the task's settings)",
    )
    _add_training_options(demo, defaults=False)
    demo.add_argument(
        "--finetune-steps", type=_int_in(1), help="fine-tuning steps per spiking layer (default: the task's)"
    )
    demo.add_argument(
        "--held-out", type=_int_in(1), help="last N training images that decide keep/revert (default: the task's)"
    )
    demo.add_argument("--json", type=Path, help="results file (default OUT/results.json)")
    demo.set_defaults(run=commands.demo)
    return parser


def _add_compared_checkpoints(parser: argparse.ArgumentParser, also: str) -> None:
    """The QANN checkpoint, its float ANN and fine-tuned SNNs: what evaluate and analyze compare."""
    parser.add_argument("checkpoint", type=Path, help="a QANN checkpoint")
    parser.add_argument("--float-checkpoint", type=Path, help=f"the float ANN it came from, to {also}")
    parser.add_argument(
        "--finetuned",
        type=Path,
        nargs="+",
        default=[],
        help="fine-tuned SNN checkpoints (from `fastsnn finetune`) to add",
    )


def _add_training_options(parser: argparse.ArgumentParser, *, defaults: bool = True) -> None:
    """The options of a training run. Without ``defaults`` (the demo) an option that is not typed is
    absent from the parsed arguments, so that the demo's task chooses it."""
    from ..workflows.train import TrainConfig

    base = TrainConfig()

    def default(value):
        return value if defaults else argparse.SUPPRESS

    parser.add_argument("--model", default=default(base.model), help="registry name (see fastsnn.models.list_models)")
    parser.add_argument("--dataset", default=default(base.dataset))
    parser.add_argument("--data-root", default=default(None))
    parser.add_argument(
        "--bits",
        type=_int_in(MIN_BITS, MAX_BITS),
        default=default(base.bits),
        help="final activation bits (T = 2^bits − 1)",
    )
    parser.add_argument("--float-only", action="store_true", default=default(False), help="train the float ANN only")
    parser.add_argument("--width", type=_positive_float, default=default(base.width), help="channel width multiplier")
    parser.add_argument("--stem", default=default(base.stem), choices=STEMS)
    parser.add_argument(
        "--weight-bits",
        type=_int_in(MIN_WEIGHT_BITS, MAX_WEIGHT_BITS),
        default=default(None),
        help="also quantize weights per channel to this many bits",
    )
    parser.add_argument("--float-epochs", type=_int_in(0), default=default(base.float_epochs))
    parser.add_argument(
        "--epochs", type=_int_in(0), default=default(base.epochs), help="epochs per intermediate quantized stage"
    )
    parser.add_argument(
        "--final-epochs",
        type=_int_in(0),
        default=default(base.final_epochs),
        help="epochs of the last stage (default --epochs)",
    )
    parser.add_argument(
        "--no-progressive", action="store_true", default=default(False), help="go from float straight to --bits"
    )
    parser.add_argument("--batch-size", type=_int_in(1), default=default(base.batch_size))
    parser.add_argument("--lr", type=_positive_float, default=default(base.lr), help="float-stage learning rate")
    parser.add_argument(
        "--quant-lr", type=_positive_float, default=default(base.quant_lr), help="quantized-stage learning rate"
    )
    parser.add_argument("--seed", type=_int_in(0, 2**32 - 1), default=default(base.seed))
    parser.add_argument(
        "--train-limit", type=_int_in(1), default=default(None), help="train on the first N images only"
    )
    parser.add_argument("--test-limit", type=_int_in(1), default=default(None), help="test on the first N images only")
    parser.add_argument("--out", default=default(base.out_dir), help="folder for the stage checkpoints")
    parser.add_argument(
        "--checkpoint-every",
        type=_int_in(1),
        metavar="STEPS",
        default=default(None),
        help="also checkpoint every STEPS steps within an epoch",
    )
    parser.add_argument(
        "--checkpoint-seconds",
        type=_positive_float,
        default=default(base.checkpoint_seconds),
        metavar="S",
        help=f"and after a step once S seconds passed since the last checkpoint (default {base.checkpoint_seconds:g})",
    )
    parser.add_argument("--quiet", action="store_true", default=default(False), help="no progress bars")
