"""The ``fastsnn`` argument parser: commands, their files, and options generated from the config dataclasses."""

import argparse
from pathlib import Path

from .. import __version__
from ..convert import SimulationConfig
from ..finetune import FinetuneConfig
from ..integer import SUFFIX, IntegerConfig
from ..workflows.analyze import ANALYSIS_DATA
from ..workflows.data_config import TuningSplit
from ..workflows.demo import DemoConfig
from ..workflows.evaluate import EVALUATION_DATA, EvaluateConfig
from ..workflows.finetune import FINETUNE_DATA
from ..workflows.imports import IMPORTED
from ..workflows.train import TrainConfig
from . import commands
from .options import add_options

MODEL_FIELDS = ("model", "dataset", "bits", "weight_bits", "width", "stem")  # what `import` needs to rebuild a model
CHECKPOINTS_HELP = (
    "checkpoints of one network, any kinds: float ANN, QANN, SNN (converted or fine-tuned), integer SNN (exported)"
)


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line (naming the option and what it accepts), exit status 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {one_line(message)} (see {self.prog} --help)\n")


def one_line(message: str) -> str:
    """``message`` with control characters (newlines, or a \\x1e inside a user's path) escaped."""
    return "".join(char if char.isprintable() else repr(char)[1:-1] for char in message)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="fastsnn", description="Convert quantized ANNs into fast spiking networks.")
    parser.add_argument("--version", action="version", version=f"fastsnn {__version__}")
    subcommands = parser.add_subparsers(dest="command", required=True)
    for name, run, text, add_arguments in COMMANDS:
        command = subcommands.add_parser(name, help=text, description=text)
        add_arguments(command)
        command.set_defaults(run=run)
    return parser


def _data(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", help="data set (see fastsnn.data.list_datasets)")
    parser.add_argument("--root", help="data folder (default $FASTSNN_DATA or ~/.cache/fastsnn)")
    parser.add_argument("--no-download", action="store_true", help="only look for files already present")


def _train(parser: argparse.ArgumentParser) -> None:
    add_options(parser, TrainConfig())


def _convert(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", type=Path, help="a QANN checkpoint")
    _output(parser, "the SNN checkpoint to write (.safetensors)")
    add_options(parser, SimulationConfig())


def _finetune(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", type=Path, help="an SNN checkpoint (fastsnn convert / finetune) or a QANN's")
    _output(parser, "the fine-tuned SNN checkpoint to write (.safetensors)")
    for base in (SimulationConfig(), FinetuneConfig(), FINETUNE_DATA, TuningSplit()):
        add_options(parser, base)
    _json(parser, "the per-correction report")


def _export(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", type=Path, help="an SNN checkpoint (fastsnn convert / finetune) or a QANN's")
    _output(parser, f"the integer network to write (name it *{SUFFIX})")
    add_options(parser, IntegerConfig())


def _evaluate(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoints", type=Path, nargs="+", help=CHECKPOINTS_HELP)
    add_options(parser, EvaluateConfig())
    add_options(parser, EVALUATION_DATA)
    parser.add_argument(
        "--save-predictions",
        type=Path,
        metavar="DIR",
        help="segmentation / detection: PNGs of the first test images with the target and the QANN's and SNNs' "
        "masks or boxes side by side",
    )
    _json(parser, "the results")


def _analyze(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoints", type=Path, nargs="+", help=CHECKPOINTS_HELP)
    add_options(parser, SimulationConfig(), only=("time_steps",))
    add_options(parser, ANALYSIS_DATA)
    parser.add_argument(
        "--out", type=Path, help="folder for conversion_errors and activity .json / .png (default: beside the first)"
    )


def _import(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("weights", type=Path, help="state dict file: .safetensors, or .pt/.pth with --allow-pickle")
    add_options(parser, IMPORTED, only=MODEL_FIELDS)
    parser.add_argument(
        "--allow-pickle",
        action="store_true",
        help="read a pickle-based .pt/.pth file (weights only); only for files you trust",
    )
    _output(parser, "the fastsnn checkpoint to write (.safetensors)")


def _demo(parser: argparse.ArgumentParser) -> None:
    add_options(parser, DemoConfig())
    add_options(parser, TrainConfig(), suppress=True)
    parser.add_argument("--json", type=Path, help="results file (default OUT/results.json)")


COMMANDS = [  # name, what runs it, help, its arguments
    ("data", commands.data, "locate or fetch a data set and check it", _data),
    ("train", commands.train, "train a float ANN and its quantized stages (float → 4 → 3 → 2 bits)", _train),
    ("convert", commands.convert, "convert a QANN checkpoint into an SNN checkpoint (with its QANN)", _convert),
    ("finetune", commands.finetune, "fine-tune an SNN checkpoint (or a QANN's SNN) on its data", _finetune),
    ("export", commands.export, "an SNN checkpoint as an integer network file with its graph, for hardware "
     "(NumPy reference: fastsnn.integer.reference)", _export),
    ("evaluate", commands.evaluate, "task metrics of checkpoints and their agreement with the QANN", _evaluate),
    ("analyze", commands.analyze, "per-layer conversion error and activity of SNNs against the QANN", _analyze),
    ("import", commands.import_weights, "turn a bare state dict (safetensors, trusted .pt) into a checkpoint", _import),
    ("demo", commands.demo, "train a 2-bit network on real data, convert (T = 3), fine-tune, compare with rate-norm, "
     "print a table", _demo),
]  # fmt: skip


def _output(parser: argparse.ArgumentParser, text: str) -> None:
    parser.add_argument("--out", type=Path, required=True, help=text)


def _json(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--json", type=Path, help=f"also write {what} here")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
