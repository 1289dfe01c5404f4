"""The ``imet`` command: parses arguments and hands them to the package.

Each subcommand lives in a module of this package that exposes
``register(subparsers)``. Those modules import torch and friends inside their
handlers, so that ``imet --help`` answers at once.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

# Explicit registry of command modules, in the order `imet --help` lists them.
COMMAND_MODULES = (
    "imet.cli.data",
    "imet.cli.train",
    "imet.cli.tanb",
    "imet.cli.explain",
)


class UsageError(Exception):
    """A problem with the user's input: printed without a traceback, exit 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="imet",
        description=(
            "Train multi-label attribute classifiers on iMet-format museum "
            "collections, screen predictions with a Tree-Augmented Naive Bayes "
            "network, and explain them."
        ),
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="log debug messages"
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except UsageError as err:
        print(f"imet {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
