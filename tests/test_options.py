"""Options declared once: a config field's declaration checks values, generates the CLI option and is recorded."""

import argparse
import dataclasses
from typing import Literal

import pytest

from fastsnn.cli import main
from fastsnn.cli.options import add_options, config_from
from fastsnn.cli.parser import build_parser
from fastsnn.convert import SimulationConfig
from fastsnn.errors import FastSNNError, OptionError
from fastsnn.finetune import FinetuneConfig
from fastsnn.options import Options, field_kind, option
from fastsnn.workflows.data_config import TuningSplit
from fastsnn.workflows.finetune import FINETUNE_DATA


@dataclasses.dataclass(frozen=True)
class Example(Options):
    count: int = option(3, "a count", low=1, high=9)
    rate: float = option(0.5, "a rate", low=0, high=1, low_open=True)
    limit: int | None = option(None, "an optional limit", low=1)
    mode: Literal["fast", "exact"] = option("fast", "a choice")
    enabled: bool = option(True, "a switch", flags=("--disabled",))
    verbose: bool = option(False, "another switch")
    steps: tuple[int, ...] | None = option(None, "several steps", low=1, flags=("-T", "--steps"))
    percent: float = option(
        100.0, "a percentile", low=0, high=100, low_open=True, parse=lambda t: 100.0 if t == "max" else float(t)
    )

    def check(self):
        if self.limit is not None and self.limit < self.count:
            raise OptionError("limit", f"must be at least count ({self.count}), got {self.limit}")


@pytest.mark.parametrize(
    "changes, field, accepted",
    [
        ({"count": 0}, "count", "1..9"),
        ({"count": 10}, "count", "1..9"),
        ({"count": 2.0}, "count", "an integer"),
        ({"count": True}, "count", "an integer"),
        ({"rate": 0}, "rate", "(0, 1]"),
        ({"rate": float("nan")}, "rate", "finite"),
        ({"rate": "0.5"}, "rate", "finite"),
        ({"limit": 0}, "limit", ">= 1"),
        ({"mode": "slow"}, "mode", "fast, exact"),
        ({"enabled": 1}, "enabled", "True or False"),
        ({"steps": ()}, "steps", "non-empty"),
        ({"steps": (3, 0)}, "steps", ">= 1"),
        ({"limit": 2}, "limit", "at least count"),  # the cross-field rule
    ],
)
def test_a_config_refuses_a_value_outside_its_declaration_naming_the_field(changes, field, accepted):
    with pytest.raises(OptionError) as info:
        Example(**changes)
    assert info.value.option == field and accepted in info.value.detail
    assert isinstance(info.value, FastSNNError) and isinstance(info.value, ValueError)


def test_a_config_accepts_every_value_inside_its_declaration():
    config = Example(count=9, rate=1, limit=None, mode="exact", enabled=False, verbose=True, steps=(1, 7))
    assert config.steps == (1, 7) and config.rate == 1
    assert dataclasses.replace(config, limit=9).limit == 9


def parse(argv, base=Example(), **kwargs):
    parser = argparse.ArgumentParser(exit_on_error=False)
    add_options(parser, base, **kwargs)
    return parser, parser.parse_args(argv)


def test_the_command_line_is_generated_from_the_fields():
    parser, args = parse(["--count", "4", "--disabled", "--verbose", "-T", "3", "7", "--mode", "exact"])
    config = config_from(Example(), args)
    assert config == Example(count=4, enabled=False, verbose=True, steps=(3, 7), mode="exact")
    assert config_from(Example(), parse([])[1]) == Example(), "untyped options keep the defaults"
    assert args.option_flags["steps"] == "-T/--steps" and args.option_flags["enabled"] == "--disabled"
    assert config_from(Example(), parse(["--percent", "max"])[1]).percent == 100.0, "the declared parse"
    helps = {action.dest: action.help for action in parser._actions}
    assert helps["count"] == "a count (default 3)" and helps["enabled"] == "turns off: a switch"


def test_defaults_come_from_the_instance_and_suppress_leaves_untyped_options_out():
    _, args = parse([], base=Example(count=7))
    assert args.count == 7
    _, args = parse(["--rate", "0.25"], suppress=True)
    assert vars(args).keys() - {"option_flags"} == {"rate"}
    assert config_from(Example(count=5), args) == Example(count=5, rate=0.25)


@pytest.mark.parametrize("argv", [["--count", "0"], ["--count", "x"], ["--mode", "slow"], ["-T", "0"], ["--rate", "2"]])
def test_a_bad_value_is_refused_by_argparse_naming_the_flag(argv):
    with pytest.raises(argparse.ArgumentError) as info:
        parse(argv)
    assert argv[0] in str(info.value)


def fields_of(*configs):
    return [field.name for config in configs for field in dataclasses.fields(config)]


def another_value(owner, field, default):
    """A value of ``field`` other than ``default``, as typed and as parsed."""
    kind = field_kind(owner, field)
    if kind.choices is not None:
        value = next(choice for choice in kind.choices if choice != default)
        return value, value
    value = default + 1 if kind.base is int else default * 2
    return str(value), value


def test_every_finetune_option_is_one_field_on_the_command_line():
    """A field added to FinetuneConfig is an option of `fastsnn finetune` without another line: each
    field's flag parses into that field, and nothing else changes."""
    parser = build_parser()
    argv = ["finetune", "snn.safetensors", "--out", "tuned.safetensors"]
    flags = parser.parse_args(argv).option_flags
    assert set(fields_of(FinetuneConfig(), SimulationConfig(), FINETUNE_DATA, TuningSplit())) <= flags.keys()
    assert config_from(FinetuneConfig(), parser.parse_args(argv)) == FinetuneConfig()
    for field in dataclasses.fields(FinetuneConfig):
        default = getattr(FinetuneConfig(), field.name)
        flag = flags[field.name].split("/")[-1]
        if isinstance(default, bool):
            typed, expected = [flag], not default
        else:
            text, expected = another_value(FinetuneConfig, field, default)
            typed = [flag, text]
        config = config_from(FinetuneConfig(), parser.parse_args([*argv, *typed]))
        assert config == dataclasses.replace(FinetuneConfig(), **{field.name: expected}), field.name


def test_an_option_error_from_the_work_is_reported_under_the_flag_typed(tmp_path, capsys):
    # the data folder is checked when the run starts: the error names the field, the command line says the flag
    code = main(["train", "--data-root", str(tmp_path / "missing"), "--out", str(tmp_path / "run"), "--quiet"])
    assert code == 2
    error = capsys.readouterr().err
    assert "--data-root" in error and "data_root" not in error and len(error.strip().splitlines()) == 1
