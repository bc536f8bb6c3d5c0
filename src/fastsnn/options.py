"""Options declared once: a config dataclass field carries its default, bounds and help.

Each operation takes one frozen config dataclass (``FinetuneConfig`` beside :func:`fastsnn.finetune`,
``TrainConfig`` beside training, ...) whose fields are declared with :func:`option`. The field's type
annotation and bounds are checked when the config is built, whoever builds it (the API, the CLI, a
checkpoint's JSON), and the ``fastsnn`` command generates its options from the same fields
(:mod:`fastsnn.cli.options`); checkpoints and JSON records store ``dataclasses.asdict(config)``::

    @dataclasses.dataclass(frozen=True)
    class FinetuneConfig(Options):
        lr: float = option(1e-3, "layer-wise Adam learning rate", low=0, low_open=True)

A new option is one field.
"""

import dataclasses
import functools
import math
import numbers
import types
import typing
from typing import Any, Literal

from .errors import OptionError


def option(
    default: Any,
    help: str,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
    flags: tuple[str, ...] = (),
    parse: typing.Callable[[str], Any] | None = None,
    metavar: str | None = None,
):
    """A config field with its ``default``, ``help`` and bounds.

    Args:
        low, high: inclusive bounds of a number (``low_open`` / ``high_open``: exclusive).
        flags: the command-line spelling (default ``--field-name``); for a ``bool`` field that defaults
            to True, the flag that turns it off (e.g. ``--unsigned`` for ``signed``).
        parse: how the command line reads a value, when not by the field's type (e.g. ``max`` → 100).
    The choices of a ``Literal[...]`` annotation are the accepted values.
    """
    metadata = {"help": help, "low": low, "high": high, "low_open": low_open, "high_open": high_open}
    metadata |= {"flags": flags, "parse": parse, "metavar": metavar}
    return dataclasses.field(default=default, metadata=metadata)


@dataclasses.dataclass(frozen=True)
class FieldKind:
    """What a field accepts: a base type (``int``, ``float``, ``str``, ``bool``), whether None is allowed,
    whether it is a tuple of such values, and the choices of a ``Literal``."""

    base: type
    optional: bool = False
    sequence: bool = False
    choices: tuple | None = None


def field_kind(owner: type, field: dataclasses.Field) -> FieldKind:
    """The :class:`FieldKind` of ``field`` of config class ``owner``, from its type annotation."""
    annotation = _annotations(owner)[field.name]
    optional, sequence = False, False
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        arguments = [a for a in typing.get_args(annotation) if a is not type(None)]
        optional, (annotation,) = True, arguments
    if typing.get_origin(annotation) is tuple:
        sequence, annotation = True, typing.get_args(annotation)[0]
    if typing.get_origin(annotation) is Literal:
        choices = typing.get_args(annotation)
        return FieldKind(type(choices[0]), optional, sequence, choices)
    return FieldKind(annotation, optional, sequence)


@functools.cache
def _annotations(owner: type) -> dict:
    """The resolved type annotations of config class ``owner``, read once per class (not once per field
    of every config built)."""
    return typing.get_type_hints(owner)


class Options:
    """Base of the config dataclasses: every field is checked against its declaration when built.

    Subclasses add cross-field rules in :meth:`check`.
    """

    def __post_init__(self):
        for field in dataclasses.fields(self):
            check_value(type(self), field, getattr(self, field.name))
        self.check()

    def check(self) -> None:
        """Rules between fields (none by default); raise :class:`OptionError` naming the field."""


def check_value(owner: type, field: dataclasses.Field, value) -> None:
    """Raise :class:`OptionError` naming ``field`` unless ``value`` is what its declaration accepts."""
    kind = field_kind(owner, field)
    if value is None and kind.optional:
        return
    if kind.sequence:
        if not isinstance(value, (tuple, list)) or not value:
            raise OptionError(field.name, f"must be a non-empty sequence, got {value!r}")
        for item in value:
            check_item(field, kind, item)
    else:
        check_item(field, kind, value)


def check_item(field: dataclasses.Field, kind: FieldKind, value) -> None:
    """Raise :class:`OptionError` unless ``value`` is one value ``field`` (of ``kind``) accepts."""
    meta = field.metadata
    if kind.choices is not None:
        if value not in kind.choices:
            raise OptionError(field.name, f"must be one of {', '.join(map(str, kind.choices))}, got {value!r}")
        return
    if kind.base is bool:
        if not isinstance(value, bool):
            raise OptionError(field.name, f"must be True or False, got {value!r}")
        return
    if kind.base is str:
        if not isinstance(value, str) or not value:
            raise OptionError(field.name, f"must be a non-empty string, got {value!r}")
        return
    if kind.base is int:
        ok = isinstance(value, numbers.Integral) and not isinstance(value, bool)
        description = "an integer"
    else:
        ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
        description = "a finite number"
    low, high = meta.get("low"), meta.get("high")
    if ok and low is not None:
        ok = value > low if meta["low_open"] else value >= low
    if ok and high is not None:
        ok = value < high if meta["high_open"] else value <= high
    if not ok:
        bounds = f" in {low}..{high}" if kind.base is int and None not in (low, high) else interval(meta)
        raise OptionError(field.name, f"must be {description}{bounds}, got {value!r}")


def interval(meta: typing.Mapping) -> str:
    """`` in [low, high)``-style text of a field's bounds (empty without bounds)."""
    low, high = meta.get("low"), meta.get("high")
    if low is None and high is None:
        return ""
    if high is None:
        return f" {'>' if meta['low_open'] else '>='} {low:g}"
    if low is None:
        return f" {'<' if meta['high_open'] else '<='} {high:g}"
    return f" in {'(' if meta['low_open'] else '['}{low:g}, {high:g}{')' if meta['high_open'] else ']'}"
