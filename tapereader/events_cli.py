"""``tapereader events``: look into an event store (stats, tail, dump)."""

import argparse
import datetime as dt
import os
import sys
import threading
from typing import Any

import msgspec

from tapereader.core.codec import to_json
from tapereader.core.events import DomainEvent
from tapereader.core.store import EventStore, EventStoreError, StoredRecord

DEFAULT_STORE = "var/events.db"
_ENVELOPE = {
    "event_id",
    "ts_event",
    "ts_init",
    "source",
    "causation_id",
    "correlation_id",
    "schema_version",
    "type",
}


def register(subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Add ``events`` and its subcommands."""
    events = subparsers.add_parser("events", help="look into an event store")
    events.add_argument(
        "--store",
        default=os.environ.get("TAPEREADER_STORE", DEFAULT_STORE),
        help="SQLite path or postgresql:// URL (default: $TAPEREADER_STORE or %(default)s)",
    )
    sub = events.add_subparsers(dest="events_command", required=True, metavar="ACTION")

    stats = sub.add_parser("stats", help="counts, positions, time span and streams")
    stats.add_argument("--streams", type=int, default=20, help="how many streams to list")
    stats.set_defaults(run=_stats)

    tail = sub.add_parser("tail", help="the newest events, one line each")
    tail.add_argument("-n", type=int, default=20, help="how many events (default %(default)s)")
    tail.add_argument("-f", "--follow", action="store_true", help="keep printing new events")
    tail.add_argument("--stream", help="only this stream")
    tail.set_defaults(run=_tail)

    dump = sub.add_parser("dump", help="events as JSON lines on stdout")
    dump.add_argument("--from", dest="start", type=int, default=1, help="first position")
    dump.add_argument("--to", dest="stop", type=int, help="last position")
    dump.add_argument("--stream", help="only this stream")
    dump.set_defaults(run=_dump)


def _open(args: argparse.Namespace) -> EventStore:
    return EventStore.open(args.store, create=False)


def _guarded(fn: Any) -> Any:
    def run(args: argparse.Namespace) -> int:
        try:
            return fn(args)
        except EventStoreError as exc:
            print(f"tapereader events: {exc}", file=sys.stderr)
            return 2
        except BrokenPipeError:  # `... | head` closed the pipe: not an error
            return 0

    return run


def _iso(ts_ns: int) -> str:
    return dt.datetime.fromtimestamp(ts_ns / 1e9, dt.UTC).isoformat(timespec="microseconds")


def summary(event: DomainEvent) -> str:
    """The event's own fields (not the envelope) as compact JSON."""
    fields = {k: v for k, v in msgspec.to_builtins(event).items() if k not in _ENVELOPE}
    return msgspec.json.encode(fields).decode()


def format_line(record: StoredRecord) -> str:
    """One human-readable line per event."""
    e = record.event
    return (
        f"{record.position:>9}  {_iso(e.ts_event)}  {type(e).__name__:<26} "
        f"{record.stream}  {summary(e)}"
    )


@_guarded
def _stats(args: argparse.Namespace) -> int:
    with _open(args) as store:
        count, last = store.count(), store.last_position()
        streams = store.streams()
        first = next(iter(store.read(page_size=1)), None)
        newest = next(iter(store.read(last, page_size=1)), None) if last else None
    print(f"store          {store.description}")
    print(f"events         {count}")
    print(f"last position  {last}")
    if first and newest:
        print(f"first event    {_iso(first.event.ts_event)}  ({type(first.event).__name__})")
        print(f"newest event   {_iso(newest.event.ts_event)}  ({type(newest.event).__name__})")
    by_category: dict[str, int] = {}
    for stream, n in streams:
        category = stream.split("/", 1)[0]
        by_category[category] = by_category.get(category, 0) + n
    print(f"streams        {len(streams)}")
    for category, n in sorted(by_category.items()):
        print(f"  {category:<20} {n:>10}")
    if streams:
        print(f"largest streams (of {len(streams)}):")
        for stream, n in sorted(streams, key=lambda s: -s[1])[: args.streams]:
            print(f"  {n:>10}  {stream}")
    return 0


@_guarded
def _tail(args: argparse.Namespace) -> int:
    with _open(args) as store:
        last = store.last_position()
        start = max(1, last - args.n + 1)
        records = (
            list(store.read_stream(args.stream))[-args.n :]
            if args.stream
            else list(store.read(start))
        )
        for record in records:
            print(format_line(record), flush=True)
        if args.follow:
            stop = threading.Event()
            try:
                for record in store.follow(last, stop=stop):
                    if args.stream is None or record.stream == args.stream:
                        print(format_line(record), flush=True)
            except KeyboardInterrupt:
                stop.set()
    return 0


@_guarded
def _dump(args: argparse.Namespace) -> int:
    out = sys.stdout.buffer
    with _open(args) as store:
        records = (
            store.read_stream(args.stream, args.start)
            if args.stream
            else store.read(args.start, stop=args.stop)
        )
        for record in records:
            if args.stop is not None and record.position > args.stop:
                break
            out.write(
                b'{"position":%d,"stream":%s,"event":%s}\n'
                % (record.position, msgspec.json.encode(record.stream), to_json(record.event))
            )
    out.flush()
    return 0
