"""``tapereader subscribe``: print the live event stream of a publisher."""

import argparse
import sys

from tapereader.core.wire import WireError, WireSubscriber
from tapereader.events_cli import summary


def register(subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Add ``subscribe``."""
    p = subparsers.add_parser("subscribe", help="print events published on ZeroMQ")
    p.add_argument("--endpoint", default="tcp://127.0.0.1:5556", help="default %(default)s")
    p.add_argument(
        "--topic",
        action="append",
        default=[],
        help="topic prefix such as SignalGenerated/ (repeatable; default: everything)",
    )
    p.add_argument("--count", type=int, help="stop after this many messages")
    p.add_argument(
        "--idle-timeout", type=float, help="stop after this many seconds without a message"
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Print one line per message until --count, --idle-timeout or Ctrl-C.

    Messages go to stdout; losses (gaps in a stream's sequence numbers, shown as they are
    found), bad messages and the final counts go to stderr.
    """
    sub = WireSubscriber(args.endpoint, args.topic or [""])
    timeout_ms = None if args.idle_timeout is None else int(args.idle_timeout * 1000)
    shown = lost = 0
    try:
        while args.count is None or shown < args.count:
            try:
                message = sub.receive(timeout_ms)
            except WireError as exc:  # counted by the subscriber; shown and skipped
                print(f"skipped a bad message: {exc}", file=sys.stderr)
                continue
            if message is None:
                break
            h = message.header
            if sub.stats.lost > lost:
                print(
                    f"lost {sub.stats.lost - lost} before {h.publisher}#{h.seq}  {message.topic}",
                    file=sys.stderr,
                )
                lost = sub.stats.lost
            print(f"{h.publisher}#{h.seq}  {message.topic}  {summary(message.event)}", flush=True)
            shown += 1
    except KeyboardInterrupt:
        pass
    finally:
        s = sub.stats
        print(f"received {s.received}, lost {s.lost}, garbage {s.garbage}", file=sys.stderr)
        sub.close()
    return 0
