"""Command line interface: ``hubseg <command> ...``.

Each command lives in its own module exposing ``register(subparsers)``, which adds a
subparser whose ``func(args) -> int`` runs it. User errors (``HubsegError``) are printed
as one line on stderr with exit code 2. SIGTERM and SIGHUP unwind like Ctrl-C, so temporary map files
are removed whichever way a run is stopped (exit code 128 + signal number).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import re
import signal
import sys

from hubseg import __version__
from hubseg.errors import HubsegError

# Module names under hubseg.cli, in the order shown by --help.
COMMAND_MODULES = ("demo", "detect", "batch", "evaluate", "models", "train", "adapt", "serve", "project")
#: Options whose value may start with "-" (a region left of or above the origin): argparse would take
#: "--region -5,-5,100,100" for two options, so such values are glued on as "--region=-5,...".
NEGATIVE_VALUE_OPTIONS = ("--region",)
_NUMBER_START = re.compile(r"^-[0-9.]")
#: Commands that handle termination signals themselves (the server stops gracefully).
OWN_SIGNAL_HANDLING = ("serve",)


class Terminated(BaseException):
    """Raised in the main thread by SIGTERM/SIGHUP so that ``finally`` blocks and temp-file cleanup run."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


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


def glue_negative_values(argv: list[str]) -> list[str]:
    """``["--region", "-5,-5,9,9"]`` → ``["--region=-5,-5,9,9"]`` (see NEGATIVE_VALUE_OPTIONS)."""
    out: list[str] = []
    index = 0
    while index < len(argv):
        token = argv[index]
        if token in NEGATIVE_VALUE_OPTIONS and index + 1 < len(argv) and _NUMBER_START.match(argv[index + 1]):
            out.append(f"{token}={argv[index + 1]}")
            index += 2
            continue
        out.append(token)
        index += 1
    return out


@contextlib.contextmanager
def _signals_unwind():
    """While a command runs: SIGTERM/SIGHUP raise :class:`Terminated` (restored afterwards)."""

    def handler(signum, frame):
        raise Terminated(signum)

    previous = {}
    for name in ("SIGTERM", "SIGHUP"):
        number = getattr(signal, name, None)
        if number is None:
            continue
        try:
            previous[number] = signal.signal(number, handler)
        except ValueError:  # not the main thread (main() called from a worker): leave signals alone
            pass
    try:
        yield
    finally:
        for number, old in previous.items():
            signal.signal(number, old)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(glue_negative_values(list(sys.argv[1:] if argv is None else argv)))
    guard = contextlib.nullcontext() if args.command in OWN_SIGNAL_HANDLING else _signals_unwind()
    try:
        with guard:
            if args.command in ("detect", "demo", "evaluate"):
                from hubseg.tempmaps import sweep_stale_map_dirs

                sweep_stale_map_dirs()
            return int(args.func(args) or 0)
    except HubsegError as error:
        print(f"hubseg {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"hubseg {args.command}: interrupted", file=sys.stderr)
        return 130
    except Terminated as stop:
        print(f"hubseg {args.command}: stopped by {signal.Signals(stop.signum).name}", file=sys.stderr)
        return 128 + stop.signum


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
