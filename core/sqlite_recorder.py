"""The SQLite recorder of tapereader's event store (the embedded default).

The store keeps each domain event as one stored event whose ``originator_id`` is the
event's own ``event_id`` (version 0), so the table's primary key makes appends
idempotent across processes and crashes. The ``topic`` column holds the event's
stream name, indexed, so one stream reads without scanning the log.

Both recorders add the same three things to eventsourcing's own: the stream index,
an exact event count, and a look-up of which event ids are already stored.
"""

import sqlite3
from collections.abc import Iterable, Sequence
from contextlib import closing
from typing import Any, Literal
from uuid import UUID

from eventsourcing.persistence import OperationalError, StoredEvent
from eventsourcing.sqlite import (
    SQLiteApplicationRecorder,
    SQLiteConnection,
    SQLiteConnectionPool,
    SQLiteCursor,
    SQLiteDatastore,
)

Synchronous = Literal["FULL", "NORMAL"]

ID_CHUNK = 500  # bounds the size of one IN (...) list


def chunks(ids: Sequence[UUID], size: int = ID_CHUNK) -> Iterable[Sequence[UUID]]:
    for i in range(0, len(ids), size):
        yield ids[i : i + size]


def switch_to_wal(db_name: str, *, lock_timeout: float) -> None:
    """Put the database file in WAL mode, or raise ``OperationalError`` to be retried.

    eventsourcing switches a new file to WAL as its pool opens the first connection. Two
    processes creating one file at once can both try, and SQLite refuses one of them
    ("database is locked") without waiting for the lock. Inside the pool that failure
    cannot be retried: the pool keeps the writer lock it took for the connection. Done
    first, here, the pool finds the file in WAL mode and changes nothing.
    """
    try:
        with closing(sqlite3.connect(db_name, timeout=lock_timeout, isolation_level=None)) as c:
            if c.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                c.execute("PRAGMA journal_mode=WAL")
    except sqlite3.OperationalError as exc:
        raise OperationalError(exc) from exc


class _TapeConnectionPool(SQLiteConnectionPool):
    def __init__(self, *, synchronous: Synchronous, **kwargs: Any) -> None:
        self.synchronous = synchronous
        super().__init__(**kwargs)

    def _create_connection(self) -> SQLiteConnection:
        connection = super()._create_connection()
        connection.cursor().execute(f"PRAGMA synchronous={self.synchronous}")
        return connection


class TapeSQLiteDatastore(SQLiteDatastore):
    """eventsourcing's SQLite datastore (WAL) with a chosen ``synchronous`` level.

    ``FULL`` syncs the log at every commit: an acknowledged batch survives a power cut.
    ``NORMAL`` syncs at checkpoints only: an acknowledged batch survives a killed
    process but the last batches may be lost in a power cut; appends run faster.
    """

    def __init__(
        self, db_name: str, *, lock_timeout: float, synchronous: Synchronous = "FULL"
    ) -> None:
        super().__init__(db_name, lock_timeout=lock_timeout)  # type: ignore[arg-type]
        self.pool.close()
        self.pool = _TapeConnectionPool(
            synchronous=synchronous, db_name=db_name, lock_timeout=lock_timeout
        )


class SQLiteTapeRecorder(SQLiteApplicationRecorder):
    """SQLite recorder (rowid is the position: no gaps, commit order is id order)."""

    def construct_create_table_statements(self) -> list[str]:
        statements = super().construct_create_table_statements()
        statements.append(
            f"CREATE INDEX IF NOT EXISTS {self.events_table_name}_topic_idx "
            f"ON {self.events_table_name} (topic)"
        )
        return statements

    def _insert_events(
        self, c: SQLiteCursor, stored_events: Sequence[StoredEvent], **_: Any
    ) -> Sequence[int]:
        # One executemany, not eventsourcing's execute per row. This runs inside the
        # write transaction, no row is ever deleted and rowids are not AUTOINCREMENT,
        # so the new rows hold MAX(rowid) - n + 1 ... MAX(rowid), in batch order.
        c.executemany(
            self.insert_events_statement,
            [(s.originator_id.hex, s.originator_version, s.topic, s.state) for s in stored_events],
        )
        c.execute(self.select_max_notification_id_statement)
        last = int(c.fetchone()[0])
        return list(range(last - len(stored_events) + 1, last + 1))

    def select_records(
        self, start: int, limit: int, stop: int | None = None, topic: str | None = None
    ) -> list[tuple[int, str, bytes]]:
        """``(position, stream, state)`` rows from ``start`` on: what replay needs, no more."""
        sql = f"SELECT rowid, topic, state FROM {self.events_table_name} WHERE rowid>=?"
        params: list[Any] = [start]
        if stop is not None:
            sql += " AND rowid<=?"
            params.append(stop)
        if topic is not None:
            sql += " AND topic=?"
            params.append(topic)
        sql += " ORDER BY rowid LIMIT ?"
        params.append(limit)
        with self.datastore.transaction(commit=False) as c:
            # Plain tuples: building an sqlite3.Row per record costs more than the decode.
            c.sqlite_cursor.row_factory = None
            c.execute(sql, params)
            return c.fetchall()

    def count_events(self) -> int:
        """Exact number of stored events."""
        with self.datastore.transaction(commit=False) as c:
            c.execute(f"SELECT COUNT(*) FROM {self.events_table_name}")
            return int(c.fetchone()[0])

    def stored_ids(self, ids: Sequence[UUID]) -> set[UUID]:
        """The subset of ``ids`` already stored."""
        found: set[UUID] = set()
        with self.datastore.transaction(commit=False) as c:
            for chunk in chunks(ids):
                marks = ",".join("?" * len(chunk))
                c.execute(
                    f"SELECT originator_id FROM {self.events_table_name} "
                    f"WHERE originator_id IN ({marks})",
                    [i.hex for i in chunk],
                )
                found.update(UUID(row[0]) for row in c.fetchall())
        return found

    def list_streams(self) -> list[tuple[str, int]]:
        """Every stream name with its number of events, sorted by name."""
        with self.datastore.transaction(commit=False) as c:
            c.execute(
                f"SELECT topic, COUNT(*) FROM {self.events_table_name} "
                "GROUP BY topic ORDER BY topic"
            )
            return [(row[0], int(row[1])) for row in c.fetchall()]
