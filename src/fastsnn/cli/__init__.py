"""The ``fastsnn`` command: thin argument parsing over the library and its workflows, no logic of its own.

``parser`` declares the commands and their files and generates their options from the config
dataclasses (``options``: each option declared once, checked as it is parsed); ``commands`` builds the
configs, calls one workflow per command and prints its result; ``main`` turns a FastSNNError into one
line on stderr (an OptionError under the flag the user typed) and exit status 2.
"""

import sys

from ..errors import FastSNNError, OptionError, TrainingInterrupted
from .parser import build_parser, one_line

INTERRUPTED = 130  # exit status after Ctrl-C, as shells report it


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else argv
    for arg in argv:
        # argparse (3.11) turns an option value spelt "--" (as in --batch-size=--) into [] and passes it on unchecked
        if arg.startswith("-") and arg.endswith("=--"):
            parser.error(f"argument {arg.split('=', 1)[0]}: expected a value, got '--'")
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except OptionError as error:  # named by its field: say the flag the user typed
        flag = getattr(args, "option_flags", {}).get(error.option, error.option)
        print(f"fastsnn {args.command}: error: {flag} {one_line(error.detail)}", file=sys.stderr)
        return 2
    except FastSNNError as error:
        print(f"fastsnn {args.command}: error: {one_line(str(error))}", file=sys.stderr)
        return 2
    except TrainingInterrupted as stop:
        print(f"fastsnn {args.command}: {one_line(str(stop))}", file=sys.stderr)
        return INTERRUPTED
    except KeyboardInterrupt:
        print(f"fastsnn {args.command}: interrupted", file=sys.stderr)
        return INTERRUPTED
