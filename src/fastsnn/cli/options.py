"""Command-line options generated from config dataclasses (:mod:`fastsnn.options`): one declaration each.

    add_options(parser, FinetuneConfig())          # --objective, --steps, --lr, --calibrate, ...
    config = config_from(FinetuneConfig(), args)   # the same dataclass, with what was typed

A field ``steps_per_layer`` becomes ``--steps-per-layer`` unless it declares ``flags``; a ``bool`` field that
defaults to True becomes the flag that turns it off (``signed`` → ``--unsigned``); a tuple field takes one
or more values; the bounds are checked as the option is parsed, so argparse names the option.
"""

import argparse
import dataclasses

from ..errors import OptionError
from ..options import FieldKind, Options, check_item, field_kind


def add_options(
    parser: argparse.ArgumentParser,
    base: Options,
    *,
    only: tuple[str, ...] | None = None,
    suppress: bool = False,
) -> None:
    """Add an option for each field of ``base``'s class (or the fields named in ``only``), defaulting to
    ``base``'s values; with ``suppress`` an option not typed is absent from the parsed arguments (so that
    another config's values stand, as the demo's task settings do).

    The parser's default ``option_flags`` maps each field to its flag, so that an :class:`OptionError`
    naming a field can be reported under the flag the user typed.
    """
    option_flags = dict(parser.get_default("option_flags") or {})
    for field in dataclasses.fields(base):
        if only is not None and field.name not in only:
            continue
        kind = field_kind(type(base), field)
        default = argparse.SUPPRESS if suppress else getattr(base, field.name)
        flags = field.metadata["flags"] or (f"--{field.name.replace('_', '-')}",)
        text = field.metadata["help"]
        option_flags[field.name] = "/".join(flags)
        if kind.base is bool:
            action = "store_false" if field.default else "store_true"
            text = f"turns off: {text}" if field.default else text
            parser.add_argument(*flags, dest=field.name, action=action, default=default, help=text)
            continue
        value = getattr(base, field.name)
        shown = "" if suppress or value is None else f" (default {_shown(value)})"
        parser.add_argument(
            *flags,
            dest=field.name,
            type=_parser(field, kind),
            choices=kind.choices,
            nargs="+" if kind.sequence else None,
            default=default,
            metavar=field.metadata["metavar"],
            help=text + shown,
        )
    parser.set_defaults(option_flags=option_flags)


def config_from(base: Options, args: argparse.Namespace):
    """``base`` with the fields present in ``args`` replaced (tuples for options that take several values)."""
    given = {}
    for field in dataclasses.fields(base):
        if hasattr(args, field.name):
            value = getattr(args, field.name)
            given[field.name] = tuple(value) if isinstance(value, list) else value
    return dataclasses.replace(base, **given)


def _parser(field: dataclasses.Field, kind: FieldKind):
    """argparse ``type``: reads one value as the field declares and checks it (ArgumentTypeError)."""
    read = field.metadata["parse"] or kind.base

    def parse(text: str):
        try:
            value = read(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {_article(kind.base)}") from None
        if value is None and kind.optional:
            return value
        try:
            check_item(field, kind, value)
        except OptionError as error:
            raise argparse.ArgumentTypeError(error.detail) from None
        return value

    return parse


def _article(base: type) -> str:
    return {int: "an integer", float: "a number"}.get(base, f"a {base.__name__}")


def _shown(value) -> str:
    return " ".join(map(str, value)) if isinstance(value, tuple) else str(value)
