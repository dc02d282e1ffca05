"""The defaults that ``--help`` states are the defaults a command really uses."""

from __future__ import annotations

import argparse
import re

import pytest

from engine.cli.commands import experiment_config
from engine.cli.parser import build_parser
from engine.core.config import demo_config


def _subparser(command: str) -> argparse.ArgumentParser:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices[command]


def stated_default(command: str, flag: str) -> int:
    """The number after 'default' in the help of ``flag`` in ``histoguard <command> --help``."""
    text = " ".join(_subparser(command).format_help().split())  # argparse wraps lines anywhere
    entry = re.search(rf"{re.escape(flag)} [A-Z_]+ (.*?)(?= --[a-z]|$)", text)
    assert entry, f"{flag} is not in the help of {command}"
    found = re.search(r"default (\d+)", entry.group(1))
    assert found, f"the help of {command} {flag} states no default: {entry.group(1)!r}"
    return int(found.group(1))


# every command that runs the Square attack, with the option that sets its queries, the arguments it needs and the
# ExperimentConfig field the option sets (None: the command's own argparse default)
QUERY_OPTIONS = [
    ("experiment", "--blackbox-queries", ["--data", "x", "--out", "y"], "blackbox_queries"),
    ("experiment", "--strong-queries", ["--data", "x", "--out", "y"], "strong_queries"),
    ("evaluate", "--strong-queries", ["--model", "m.pt", "--data", "x"], "strong_queries"),
    ("blackbox", "--queries", ["--model", "m.onnx", "--data", "x"], None),
]


@pytest.mark.parametrize(("command", "flag", "required", "field"), QUERY_OPTIONS)
def test_square_attack_queries_help_states_the_default_in_use(command, flag, required, field):
    args = build_parser().parse_args([command, *required])
    used = getattr(experiment_config(args), field) if field else args.queries
    assert stated_default(command, flag) == used


def test_every_command_with_a_queries_option_is_checked():
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    with_queries = {
        (name, opt)
        for name, p in sub.choices.items()
        for a in p._actions
        for opt in a.option_strings
        if opt.endswith("queries")
    }
    assert with_queries == {(c, f) for c, f, _, _ in QUERY_OPTIONS}


def test_the_demo_uses_the_experiment_default():
    """``histoguard demo`` takes no queries option: it runs the experiment's default, the one its help states."""
    assert demo_config().blackbox_queries == stated_default("experiment", "--blackbox-queries")


def test_experiment_blackbox_images_help_states_the_default_in_use():
    args = build_parser().parse_args(["experiment", "--data", "x", "--out", "y"])
    assert stated_default("experiment", "--blackbox-images") == experiment_config(args).blackbox_images
