"""``tapereader feed replay``: publish recorded ticks on the tick-feed wire."""

import argparse
import sys


def register(subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Add ``feed`` and its ``replay`` subcommand."""
    feed = subparsers.add_parser("feed", help="the ZeroMQ tick feed (docs/FEED.md)")
    sub = feed.add_subparsers(dest="feed_command", required=True, metavar="FEED_COMMAND")
    p = sub.add_parser("replay", help="publish a catalog's ticks in exchange-time order")
    p.add_argument("--catalog", required=True, help="ParquetDataCatalog folder")
    p.add_argument(
        "--endpoint", default="tcp://127.0.0.1:5555", help="bind here (default %(default)s)"
    )
    p.add_argument(
        "--speed", default="1x", help="1x, 10x, any factor, or max (default %(default)s)"
    )
    p.add_argument(
        "--instrument", action="append", default=[], help="instrument id (repeatable; default: all)"
    )
    p.add_argument(
        "--kind",
        action="append",
        choices=["quote", "trade", "book"],
        help="message kinds (repeatable; default: all)",
    )
    p.add_argument("--limit", type=int, help="publish only the first N messages")
    p.add_argument(
        "--wait",
        type=float,
        default=10.0,
        help="seconds to wait for a subscriber to every instrument (0: start at once; "
        "default %(default)s)",
    )
    p.set_defaults(run=run_replay)


def run_replay(args: argparse.Namespace) -> int:
    """Load, wait for subscribers, publish; 0 when everything was sent."""
    from tapereader.ingest.feed_publisher import KINDS, FeedPublisher, catalog_ticks, parse_speed

    try:
        speed = parse_speed(args.speed)
    except ValueError as exc:
        print(f"feed replay: {exc}", file=sys.stderr)
        return 2
    ticks = catalog_ticks(args.catalog, args.instrument or None, args.kind or KINDS, args.limit)
    if not ticks:
        print(f"feed replay: no ticks in {args.catalog} for the selection", file=sys.stderr)
        return 1
    instruments = sorted({str(t.instrument_id) for t in ticks})
    with FeedPublisher(args.endpoint) as publisher:
        print(
            f"{len(ticks)} messages of {', '.join(instruments)} on {publisher.endpoint}",
            file=sys.stderr,
        )
        if args.wait > 0 and not publisher.wait_for_subscribers(instruments, args.wait):
            print(
                f"feed replay: no subscriber after {args.wait:g} s; publishing anyway",
                file=sys.stderr,
            )
        try:
            stats = publisher.replay(ticks, speed)
        except KeyboardInterrupt:
            print("feed replay: interrupted", file=sys.stderr)
            return 130
    span = (stats.last_ts_event - stats.first_ts_event) / 1e9
    print(
        f"published {stats.published} messages covering {span:.1f} s of exchange time "
        f"in {stats.seconds:.1f} s",
        file=sys.stderr,
    )
    return 0
