"""Event store throughput: batched appends and decoded reads, beside the ceiling.

Each run writes 200,000 realistic signal events in batches of 1,000 into a fresh
store and reads them all back decoded; in the same run, plain sqlite3 (or psycopg)
does the same with the same encoded rows into the same table: the ceiling. The
figures are medians over the runs with min-max, and store/ceiling ratios.

    .venv/bin/python tests/bench/bench_store.py [--events N] [--runs R] [--no-postgres]
"""

import argparse
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import msgspec

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tapereader.core.codec import to_msgpack  # noqa: E402
from tapereader.core.events import AnyEvent, SignalGenerated, Source  # noqa: E402
from tapereader.core.process_writer import ProcessEventWriter  # noqa: E402
from tapereader.core.store import TABLE, EventStore  # noqa: E402
from tapereader.core.writer import EventWriter, WriterConfig  # noqa: E402

BATCH = 1_000
_decoder = msgspec.msgpack.Decoder(AnyEvent)


def make_events(n: int) -> list[SignalGenerated]:
    source = Source(component="SignalActor", run_id="bench")
    t0 = 1_723_161_255_000_000_000
    return [
        SignalGenerated(
            ts_event=t0 + i * 250_000,
            ts_init=t0 + i * 250_000 + 41_000,
            source=source,
            instrument_id=("BTCUSDT-PERP.BINANCE", "ETHUSDT-PERP.BINANCE")[i % 2],
            model_version="2024.08.08-1",
            feature_spec_hash="9f2c41d0",
            horizon="50 events",
            p_up=0.41,
            p_down=0.33,
            p_flat=0.26,
            confidence=(i % 997) / 997,
            members={"lr": 0.4, "rf": 0.42, "xgb": 0.45, "lstm": 0.37},
        )
        for i in range(n)
    ]


def rows_of(events: list[SignalGenerated]) -> list[tuple[str, int, str, bytes]]:
    return [(e.event_id.hex, 0, e.stream, to_msgpack(e)) for e in events]


def timed(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def summary(values: list[float]) -> str:
    return f"{statistics.median(values):>10,.0f}  ({min(values):,.0f}-{max(values):,.0f})"


def ratio(values: list[float]) -> str:
    return f"{statistics.median(values):.2f}  ({min(values):.2f}-{max(values):.2f})"


# --- SQLite -----------------------------------------------------------------------------


def sqlite_run(events: list[SignalGenerated], synchronous: str, folder: Path) -> dict[str, float]:
    n = len(events)
    rows = rows_of(events)

    store_path = folder / f"store-{synchronous}.db"
    store = EventStore.open(store_path, synchronous=synchronous)  # type: ignore[arg-type]
    append_s = timed(lambda: [store.append(events[i : i + BATCH]) for i in range(0, n, BATCH)])
    read_s = timed(lambda: sum(1 for _ in store.read()))
    assert store.count() == n
    store.close()

    # The ceiling: the same table and pragmas, plain sqlite3, the same encoded rows.
    plain_path = folder / f"plain-{synchronous}.db"
    EventStore.open(plain_path).close()  # same schema and indexes
    conn = sqlite3.connect(plain_path, isolation_level=None)
    conn.execute(f"PRAGMA synchronous={synchronous}")

    def plain_append() -> None:
        for i in range(0, n, BATCH):
            conn.execute("BEGIN")
            conn.executemany(f"INSERT INTO {TABLE} VALUES (?,?,?,?)", rows[i : i + BATCH])
            conn.execute("COMMIT")

    def plain_read() -> None:
        for _, _, state in conn.execute(f"SELECT rowid, topic, state FROM {TABLE} ORDER BY rowid"):
            _decoder.decode(state)

    plain_append_s = timed(plain_append)
    plain_read_s = timed(plain_read)
    conn.close()
    for path in folder.glob("*.db*"):
        path.unlink()
    return {
        "append": n / append_s,
        "append_ceiling": n / plain_append_s,
        "read": n / read_s,
        "read_ceiling": n / plain_read_s,
    }


def _work(units: int) -> int:
    """Pure-Python work standing in for the engine's own per-event share (~20 us)."""
    acc = 0
    for i in range(units):
        acc += i * i % 7
    return acc


def writer_run(events: list[SignalGenerated], folder: Path, kind: str) -> dict[str, float]:
    """A producer doing its own work per event and handing chunks of 256 to the writer (as
    the JournalActor does): its wall time beside the writer, against the same work with the
    events discarded (``kind="none"``); and the writer's end-to-end rate."""
    path = folder / f"writer-{kind}.db"
    store = None
    if kind == "thread":
        store = EventStore.open(path)
        writer = EventWriter(store, WriterConfig(max_batch=2_000, max_delay_ms=50))
    elif kind == "process":
        writer = ProcessEventWriter(path, WriterConfig(max_batch=2_000, max_delay_ms=50))
    chunk = 256

    def produce() -> None:
        held = []
        for e in events:
            _work(200)
            held.append(e)
            if len(held) >= chunk:
                if kind != "none":
                    writer.put_many(held)
                held = []
        if held and kind != "none":
            writer.put_many(held)

    produce_s = timed(produce)
    total_s = produce_s
    if kind != "none":
        total_s += timed(writer.flush)
        writer.close()
    if store is not None:
        store.close()
    for p in folder.glob("*.db*"):
        p.unlink()
    return {"produce": len(events) / produce_s, "end_to_end": len(events) / total_s}


# --- PostgreSQL -------------------------------------------------------------------------


def postgres_run(events: list[SignalGenerated], server: object, index: int) -> dict[str, float]:
    import psycopg

    n = len(events)
    db = f"bench_{index}"
    server.create_database(db)  # type: ignore[attr-defined]
    store = EventStore.open(server.url(db))  # type: ignore[attr-defined]
    append_s = timed(lambda: [store.append(events[i : i + BATCH]) for i in range(0, n, BATCH)])
    read_s = timed(lambda: sum(1 for _ in store.read()))
    assert store.count() == n
    store.close()

    plain_db = f"plain_{index}"
    server.create_database(plain_db)  # type: ignore[attr-defined]
    EventStore.open(server.url(plain_db)).close()  # type: ignore[attr-defined]
    rows = [(e.event_id, 0, e.stream, to_msgpack(e)) for e in events]
    with psycopg.connect(server.dsn(plain_db)) as conn:  # type: ignore[attr-defined]

        def plain_append() -> None:
            for i in range(0, n, BATCH):
                with conn.transaction(), conn.cursor() as cur:
                    cur.executemany(
                        f"INSERT INTO {TABLE} (originator_id, originator_version, topic, state) "
                        "VALUES (%s, %s, %s, %s)",
                        rows[i : i + BATCH],
                    )

        def plain_read() -> None:
            with conn.cursor() as cur:
                cur.execute(
                    f"SELECT notification_id, topic, state FROM {TABLE} ORDER BY notification_id"
                )
                for _, _, state in cur:
                    _decoder.decode(state)

        plain_append_s = timed(plain_append)
        plain_read_s = timed(plain_read)
    return {
        "append": n / append_s,
        "append_ceiling": n / plain_append_s,
        "read": n / read_s,
        "read_ceiling": n / plain_read_s,
    }


def report(title: str, runs: list[dict[str, float]]) -> None:
    print(f"\n{title}  ({len(runs)} runs; events/s median (min-max))")
    for kind in ("append", "read"):
        mine = [r[kind] for r in runs]
        ceiling = [r[f"{kind}_ceiling"] for r in runs]
        ratios = [r[kind] / r[f"{kind}_ceiling"] for r in runs]
        print(
            f"  {kind:<7} store {summary(mine)}   ceiling {summary(ceiling)}   "
            f"ratio {ratio(ratios)}"
        )


def writers(events: list[SignalGenerated], folder: Path, runs: int) -> None:
    """The two journal writers beside a busy producer, alternating in each run."""
    kinds = ("none", "thread", "process")
    got: dict[str, list[dict[str, float]]] = {k: [] for k in kinds}
    for _ in range(runs):
        for kind in kinds:
            got[kind].append(writer_run(events, folder, kind))
    print(
        f"\nJournal writers (chunks of 256, batches of 2,000 or 50 ms, SQLite FULL), producer "
        f"doing ~20 us of Python per event, {runs} runs"
    )
    alone = statistics.median(r["produce"] for r in got["none"])
    print(f"  producer alone            {summary([r['produce'] for r in got['none']])} events/s")
    for kind in ("thread", "process"):
        produce = statistics.median(r["produce"] for r in got[kind])
        print(
            f"  producer, {kind:<7} writer  {summary([r['produce'] for r in got[kind]])} "
            f"events/s ({produce / alone:.2f} of alone); end to end "
            f"{summary([r['end_to_end'] for r in got[kind]])}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--writers-only", action="store_true", help="only the journal writers")
    args = parser.parse_args()

    events = make_events(args.events)
    print(
        f"event store benchmark: {args.events:,} SignalGenerated events, batches of {BATCH:,}, "
        f"{len(to_msgpack(events[0]))} bytes each encoded"
    )
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        if args.writers_only:
            writers(events, folder, args.runs)
            return
        for sync in ("FULL", "NORMAL"):
            report(
                f"SQLite, WAL, synchronous={sync}",
                [sqlite_run(events, sync, folder) for _ in range(args.runs)],
            )
        writers(events, folder, args.runs)

    if args.no_postgres:
        return
    sys.path.insert(0, str(ROOT / "tests"))
    from pgserver import PostgresServer, find_pg_bin

    if find_pg_bin() is None:
        print("\nPostgreSQL: server binaries not found, skipped")
        return
    server = PostgresServer(durable=True).start()
    try:
        runs = [postgres_run(events, server, i) for i in range(max(1, args.runs - 2))]
        report("PostgreSQL (local server, fsync on, default settings)", runs)
    finally:
        server.stop()


if __name__ == "__main__":
    threading.excepthook = lambda a: sys.exit(f"benchmark thread failed: {a.exc_value}")
    main()
