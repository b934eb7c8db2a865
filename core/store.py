"""The event store: every domain fact, appended in batches, read back in global order.

One API over eventsourcing's application recorders, SQLite (embedded, the default)
or PostgreSQL. A position is eventsourcing's notification id: strictly increasing
in commit order. Each event is stored under its own ``event_id`` (see
:mod:`tapereader.core.sqlite_recorder`), so appending an event already stored is a
no-op and a retried batch never duplicates anything.
"""

import os
import sqlite3
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Protocol, Self
from uuid import UUID

import msgspec
from eventsourcing.persistence import (
    IntegrityError,
    OperationalError,
    PersistenceError,
    StoredEvent,
)

from tapereader.core.codec import EventDecodeError, to_msgpack
from tapereader.core.events import AnyEvent, DomainEvent
from tapereader.core.sqlite_recorder import (
    SQLiteTapeRecorder,
    Synchronous,
    TapeSQLiteDatastore,
    switch_to_wal,
)

TABLE = "tape_events"


class EventStoreError(Exception):
    """The event store could not do what was asked; nothing was half done."""


class InvalidEventError(EventStoreError):
    """A batch held an event that does not satisfy its schema; nothing was appended."""


class StoreLockedError(EventStoreError):
    """The database stayed locked or unreachable through every retry."""


class StoredRecord(msgspec.Struct, frozen=True):
    """One event as stored: its global position and stream."""

    position: int
    stream: str
    event: DomainEvent


class AppendResult(msgspec.Struct, frozen=True):
    """What one append did: positions of the new events, ids that were already stored."""

    positions: list[int]
    duplicates: list[UUID]

    @property
    def last_position(self) -> int | None:
        """Position of the last newly stored event, if any."""
        return self.positions[-1] if self.positions else None


class RetryPolicy(msgspec.Struct, frozen=True, kw_only=True):
    """Bounded exponential backoff for a locked or briefly unreachable database."""

    attempts: int = 8
    initial_backoff_s: float = 0.01
    max_backoff_s: float = 1.0


DEFAULT_RETRY = RetryPolicy()


class _Recorder(Protocol):
    def insert_events(self, stored_events: Sequence[StoredEvent]) -> Sequence[int] | None: ...
    def select_records(
        self, start: int, limit: int, stop: int | None = None, topic: str | None = None
    ) -> list[tuple[int, str, bytes]]: ...
    def max_notification_id(self) -> int | None: ...
    def count_events(self) -> int: ...
    def stored_ids(self, ids: Sequence[UUID]) -> set[UUID]: ...
    def list_streams(self) -> list[tuple[str, int]]: ...


class _Closeable(Protocol):
    def close(self) -> None: ...


# Decoding a page as one msgpack array costs one call instead of one per event.
_page_decoder = msgspec.msgpack.Decoder(list[AnyEvent])


def _as_array(states: Sequence[bytes]) -> bytes:
    return b"\xdd" + len(states).to_bytes(4, "big") + b"".join(states)


class EventStore:
    """Append and read domain events; open with :meth:`open`."""

    def __init__(
        self,
        recorder: _Recorder,
        *,
        description: str,
        datastore: _Closeable,
        retry: RetryPolicy = DEFAULT_RETRY,
    ) -> None:
        self._recorder = recorder
        self._datastore = datastore
        self._retry = retry
        self.description = description
        """Where the store lives, safe to print (no password)."""

    # --- opening -----------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        url: str | Path,
        *,
        lock_timeout_s: float = 5.0,
        retry: RetryPolicy = DEFAULT_RETRY,
        synchronous: Synchronous = "FULL",
        create: bool = True,
    ) -> Self:
        """Open a store from a path or URL; ``create=False`` refuses a missing SQLite file.

        ``events.db`` or ``sqlite:///events.db`` is SQLite; ``postgresql://user@host:port/db``
        is PostgreSQL, with the password in the URL or in ``PGPASSWORD``.
        ``synchronous`` applies to SQLite (see :class:`TapeSQLiteDatastore`).
        """
        text = str(url)
        if text.startswith(("postgresql://", "postgres://")):
            return cls._open_postgres(text, lock_timeout_s=lock_timeout_s, retry=retry)
        path = Path(text.removeprefix("sqlite:///").removeprefix("sqlite://"))
        if not create and not path.is_file():
            raise EventStoreError(f"{path}: no event store there")
        return cls._open_sqlite(
            path, lock_timeout_s=lock_timeout_s, retry=retry, synchronous=synchronous
        )

    @classmethod
    def _open_sqlite(
        cls, path: Path, *, lock_timeout_s: float, retry: RetryPolicy, synchronous: Synchronous
    ) -> Self:
        if path.is_dir():
            raise EventStoreError(f"{path}: is a directory, expected an SQLite file")
        if not path.parent.exists():
            raise EventStoreError(f"{path}: folder {path.parent} does not exist")
        description = f"sqlite:///{path}"
        try:
            _retrying(
                lambda: switch_to_wal(str(path), lock_timeout=lock_timeout_s),
                what="switch the file to WAL",
                retry=retry,
                description=description,
            )
        except sqlite3.DatabaseError as exc:  # what is left once "locked" is retried
            raise EventStoreError(f"{path}: not an SQLite event store ({exc})") from exc
        datastore = TapeSQLiteDatastore(
            str(path), lock_timeout=lock_timeout_s, synchronous=synchronous
        )
        recorder = SQLiteTapeRecorder(datastore, events_table_name=TABLE)
        store = cls(recorder, description=description, datastore=datastore, retry=retry)
        store._call(recorder.create_table, what="create the events table")
        return store

    @classmethod
    def _open_postgres(cls, url: str, *, lock_timeout_s: float, retry: RetryPolicy) -> Self:
        from eventsourcing.postgres import PostgresDatastore

        from tapereader.core.postgres_recorder import PostgresTapeRecorder

        parts = urllib.parse.urlsplit(url)
        query = dict(urllib.parse.parse_qsl(parts.query))
        dbname = parts.path.lstrip("/")
        if not dbname or not parts.hostname:
            raise EventStoreError(f"{_redact(url)}: a PostgreSQL URL needs a host and a database")
        password = urllib.parse.unquote(parts.password or "") or os.environ.get("PGPASSWORD", "")
        datastore = PostgresDatastore(
            dbname=dbname,
            host=parts.hostname,
            port=parts.port or 5432,
            user=urllib.parse.unquote(parts.username or "postgres"),
            password=password,
            lock_timeout=lock_timeout_s,  # type: ignore[arg-type]  # a float of seconds is valid SQL
            schema=query.get("schema", ""),
            pool_size=2,
            max_overflow=4,
            originator_id_type="uuid",
        )
        try:
            recorder = PostgresTapeRecorder(datastore, events_table_name=TABLE)
        except PersistenceError as exc:
            datastore.close()
            raise EventStoreError(f"{_redact(url)}: cannot open the store: {exc}") from exc
        store = cls(recorder, description=_redact(url), datastore=datastore, retry=retry)
        store._call(recorder.create_table, what="create the events table")
        return store

    def close(self) -> None:
        """Release connections."""
        self._datastore.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- writing -----------------------------------------------------------------------

    def append(self, events: Sequence[DomainEvent]) -> AppendResult:
        """Append a batch atomically: every new event is stored, or none is.

        Events whose ``event_id`` is already stored (or repeated in the batch) are
        skipped and listed in the result. Raises :class:`InvalidEventError` when an
        event breaks its schema and :class:`StoreLockedError` when the database
        stays locked through every retry; in both cases nothing was written.
        """
        stored: list[StoredEvent] = []
        duplicates: list[UUID] = []
        seen: set[UUID] = set()
        for event in events:
            if event.event_id in seen:
                duplicates.append(event.event_id)
                continue
            seen.add(event.event_id)
            stored.append(
                StoredEvent(
                    originator_id=event.event_id,
                    originator_version=0,
                    topic=event.stream,
                    state=to_msgpack(event),
                )
            )
        self._validate(stored)
        while stored:
            try:
                positions = self._call(
                    lambda batch=stored: self._recorder.insert_events(batch),
                    what=f"append {len(stored)} events",
                )
                return AppendResult(positions=list(positions or ()), duplicates=duplicates)
            except IntegrityError as exc:
                ids = [s.originator_id for s in stored]
                already = self._call(
                    lambda ids=ids: self._recorder.stored_ids(ids), what="look up stored event ids"
                )
                if not already:
                    raise EventStoreError(f"{self.description}: append refused: {exc}") from exc
                duplicates.extend(s.originator_id for s in stored if s.originator_id in already)
                stored = [s for s in stored if s.originator_id not in already]
        return AppendResult(positions=[], duplicates=duplicates)

    @staticmethod
    def _validate(stored: Sequence[StoredEvent]) -> None:
        # Decoding what was encoded applies every schema constraint (finite numbers,
        # probabilities in [0, 1], ...), so a bad event is refused before any write.
        try:
            _page_decoder.decode(_as_array([s.state for s in stored]))
        except msgspec.ValidationError as exc:
            raise InvalidEventError(f"batch refused, nothing appended: event {exc}") from exc

    # --- reading -----------------------------------------------------------------------

    def read(
        self, start: int = 1, *, stop: int | None = None, page_size: int = 2000
    ) -> Iterator[StoredRecord]:
        """Every event from position ``start`` (inclusive) to ``stop`` (inclusive), in order."""
        return self._pages(start, stop=stop, topic=None, page_size=page_size)

    def read_stream(
        self, stream: str, start: int = 1, *, page_size: int = 2000
    ) -> Iterator[StoredRecord]:
        """Every event of one stream (for example ``signals/BTCUSDT-PERP.BINANCE/2024-08-08``)."""
        return self._pages(start, stop=None, topic=stream, page_size=page_size)

    def follow(
        self,
        after: int = 0,
        *,
        poll_interval_s: float = 0.05,
        stop: threading.Event | None = None,
        page_size: int = 2000,
    ) -> Iterator[StoredRecord]:
        """Events after the checkpoint ``after``, then new ones as they are appended.

        Runs until ``stop`` is set; keep the last position seen as the next checkpoint.
        """
        stop = stop or threading.Event()
        checkpoint = after
        while not stop.is_set():
            got = False
            for record in self._pages(checkpoint + 1, stop=None, topic=None, page_size=page_size):
                got = True
                checkpoint = record.position
                yield record
                if stop.is_set():
                    return
            if not got:
                stop.wait(poll_interval_s)

    def _pages(
        self, start: int, *, stop: int | None, topic: str | None, page_size: int
    ) -> Iterator[StoredRecord]:
        position = max(1, start)
        while True:
            page = self._call(
                lambda p=position: self._recorder.select_records(p, page_size, stop, topic),
                what="read events",
            )
            if not page:
                return
            yield from self._decode_page(page)
            if len(page) < page_size:
                return
            position = page[-1][0] + 1

    def _decode_page(self, page: Sequence[tuple[int, str, bytes]]) -> list[StoredRecord]:
        try:
            events = _page_decoder.decode(_as_array([state for _, _, state in page]))
        except msgspec.DecodeError:
            # Find the culprit so the error names its position.
            for position, stream, state in page:
                try:
                    _page_decoder.decode(_as_array([state]))
                except msgspec.DecodeError as exc:
                    raise EventDecodeError(
                        f"{self.description}: position {position} (stream {stream}): {exc}"
                    ) from exc
            raise
        return [
            StoredRecord(position, stream, event)
            for (position, stream, _), event in zip(page, events, strict=True)
        ]

    def count(self) -> int:
        """Exact number of stored events."""
        return self._call(self._recorder.count_events, what="count events")

    def last_position(self) -> int:
        """Position of the newest event; 0 for an empty store."""
        return self._call(self._recorder.max_notification_id, what="read the last position") or 0

    def streams(self) -> list[tuple[str, int]]:
        """Every stream with its number of events."""
        return self._call(self._recorder.list_streams, what="list streams")

    # --- retries -----------------------------------------------------------------------

    def _call[T](self, fn: Callable[[], T], *, what: str) -> T:
        return _retrying(fn, what=what, retry=self._retry, description=self.description)


def _retrying[T](fn: Callable[[], T], *, what: str, retry: RetryPolicy, description: str) -> T:
    """``fn()``, retried with backoff while the database is locked or briefly unreachable
    (eventsourcing's ``OperationalError``)."""
    delay = retry.initial_backoff_s
    started = time.monotonic()
    for attempt in range(1, retry.attempts + 1):
        try:
            return fn()
        except OperationalError as exc:
            if attempt == retry.attempts:
                raise StoreLockedError(
                    f"{description}: could not {what}: still failing after "
                    f"{attempt} attempts over {time.monotonic() - started:.1f} s "
                    f"({exc}); nothing was written by this call"
                ) from exc
            time.sleep(delay)
            delay = min(delay * 2, retry.max_backoff_s)
    raise AssertionError("unreachable")


def _redact(url: str) -> str:
    """The URL without its password, for messages and logs."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))
