"""The ``tapereader`` command line: one subcommand per part of the product."""

import argparse
import sys
from collections.abc import Sequence

from tapereader import (
    backtest_cli,
    demo,
    events_cli,
    feed_cli,
    ingest_cli,
    live,
    models_cli,
    scanners_cli,
    subscribe_cli,
)


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser, with every subcommand registered."""
    parser = argparse.ArgumentParser(
        prog="tapereader",
        description="Event-sourced actor system for low-latency trading on NautilusTrader.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    demo.register(sub)
    backtest_cli.register(sub)
    events_cli.register(sub)
    ingest_cli.register(sub)
    live.register(sub)
    feed_cli.register(sub)
    models_cli.register(sub)
    scanners_cli.register(sub)
    subscribe_cli.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit status."""
    args = build_parser().parse_args(argv)
    return int(args.run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
