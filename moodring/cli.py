"""The `moodring` command: one sub-command per job, each registered by the package that owns it.

Heavy imports (TensorFlow, discord.py) happen inside the handlers, so `moodring --help` and
argument errors answer at once. Expected failures (`MoodringError`) print one line and exit 2.
Logging is configured here and nowhere else (`moodring.log`).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from moodring import __version__
from moodring.errors import MoodringError
from moodring.log import configure_logging
from moodring.settings import Settings

# (module, what it registers): each module has `register(subparsers)` and owns its handlers.
COMMAND_MODULES = (
    "moodring.training.cli",
    "moodring.emotion.cli",
    "moodring.recommender.cli",
    "moodring.bot.cli",
    "moodring.store.cli",
)


def build_parser() -> argparse.ArgumentParser:
    """The full parser, assembled from every package that contributes a sub-command."""
    import importlib

    parser = argparse.ArgumentParser(
        prog="moodring", description="Read the emotion on a selfie and answer with music for it."
    )
    parser.add_argument("--version", action="version", version=f"moodring {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug details to stderr")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:  # a missing dependency inside the module is a real error
                raise
            continue
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.verbose and "tensorflow" not in sys.modules:  # TensorFlow reads it once, when it is first imported
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "0"
    try:
        configure_logging(verbose=args.verbose, settings=Settings.load())
        return int(args.handler(args) or 0)
    except MoodringError as exc:
        print(f"moodring: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("moodring: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
