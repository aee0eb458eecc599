"""Top-level `rankops` command.

Each package owns its subcommands (``register(subparsers)`` in its ``commands`` module);
this module only assembles them, so serving never has to import the operator or back.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from rankops.operator import commands as operator_commands
from rankops.operator import slo_commands
from rankops.sandbox import commands as sandbox_commands
from rankops.serving import commands as serving_commands


class CommandError(Exception):
    """A user-facing failure: printed as one line, exit status 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rankops",
        description="Run the life of a search-ranking model: train, evaluate, serve, operate.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    serving_commands.register(subparsers)
    operator_commands.register(subparsers)
    slo_commands.register(subparsers)
    sandbox_commands.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        result: int = args.func(args)
    except KeyboardInterrupt:
        return 130
    except (CommandError, ValueError, FileNotFoundError, PermissionError, OSError) as exc:
        # Expected failures (bad input, missing files) get one readable line, not a traceback.
        print(f"rankops {args.command}: error: {exc}", file=sys.stderr)
        return 2
    return result


if __name__ == "__main__":
    sys.exit(main())
