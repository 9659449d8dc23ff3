"""Command line interface: ``hubseg <command> ...``.

Each command lives in its own module exposing ``register(subparsers)``, which adds a
subparser whose ``func(args) -> int`` runs it. User errors (``HubsegError``) are printed
as one line on stderr with exit code 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from hubseg import __version__
from hubseg.errors import HubsegError

# Module names under hubseg.cli, in the order shown by --help.
COMMAND_MODULES = ("demo", "detect", "evaluate", "models", "train", "serve", "project")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hubseg",
        description="Glomeruli detection with energy scores for human-in-the-loop review in QuPath.",
    )
    parser.add_argument("--version", action="version", version=f"hubseg {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for name in COMMAND_MODULES:
        module = importlib.import_module(f"hubseg.cli.{name}")
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except HubsegError as error:
        print(f"hubseg {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"hubseg {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
