"""Arguments the serving subcommands share (``commands``, ``chore_commands``): value types that
refuse bad input at parse time, and the option groups several subcommands take alike."""

from __future__ import annotations

import argparse
import math
import os
import re

# The RankingModel CRD's pattern for spec.model.version, verbatim: a version trained here must be one
# the operator accepts (serving may not import the operator; tests/unit/test_spec_defaults.py checks
# that both copies equal the CRD's).
SEMVER_PATTERN = (
    r"^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)"
    r"(-((0|[1-9][0-9]*|[0-9]*[a-zA-Z-][0-9a-zA-Z-]*)(\.(0|[1-9][0-9]*|[0-9]*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(\+([0-9a-zA-Z-]+(\.[0-9a-zA-Z-]+)*))?$"
)
SPLITS = ["train", "dev", "test"]


def check_semver(version: str) -> None:
    """``--version`` as the operator will accept it, or ValueError (the CLI's exit 2)."""
    if not re.fullmatch(SEMVER_PATTERN, version):
        raise ValueError(f"--version must be semver (MAJOR.MINOR.PATCH), got {version!r}")


def positive_int(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {value!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {n}")
    return n


def probability(value: str) -> float:
    x = float(value)
    if not 0 < x < 1:
        raise argparse.ArgumentTypeError(f"must be in (0, 1), got {value}")
    return x


def unit_interval(value: str) -> float:
    """A fraction in [0, 1] (a score floor), as the CRD bounds it."""
    x = float(value)
    if not 0 <= x <= 1:
        raise argparse.ArgumentTypeError(f"must be in [0, 1], got {value}")
    return x


def non_negative(value: str) -> float:
    x = float(value)
    if not (x >= 0 and math.isfinite(x)):
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return x


def add_dataset(parser: argparse.ArgumentParser, help: str = "dataset directory in BEIR layout") -> None:
    parser.add_argument("--data", required=True, help=help)


def add_split(parser: argparse.ArgumentParser, default: str) -> None:
    parser.add_argument("--split", default=default, choices=SPLITS, help="(default: %(default)s)")


def add_feedback_log(parser: argparse.ArgumentParser, help: str) -> None:
    """``--feedback-log URI``, by default ``$RANKOPS_FEEDBACK_LOG``."""
    default = os.environ.get("RANKOPS_FEEDBACK_LOG")
    parser.add_argument("--feedback-log", default=default, metavar="URI", help=help)


def add_training(parser: argparse.ArgumentParser) -> None:
    """What a subcommand that trains takes: ``--epochs``, ``--seed``, ``--force``."""
    parser.add_argument("--epochs", type=positive_int, default=None, help="training epochs (default: 25)")
    parser.add_argument("--seed", type=int, default=13, help="random seed (default: %(default)s)")
    parser.add_argument("--force", action="store_true", help="overwrite an existing artifact at --out")
