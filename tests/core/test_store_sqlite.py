"""The event store contract on SQLite, plus what only a file database can show."""

import sqlite3
import threading
from pathlib import Path

import pytest

from tapereader.core.codec import EventDecodeError
from tapereader.core.store import EventStore, EventStoreError, RetryPolicy, StoreLockedError

from .store_testcase import EventStoreContract, signals


class TestSQLiteEventStore(EventStoreContract):
    @pytest.fixture
    def store_url(self, tmp_path: Path) -> str:
        return f"sqlite:///{tmp_path / 'events.db'}"


def test_a_plain_path_opens_sqlite_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "events.db"
    with EventStore.open(path) as store:
        store.append(signals(3))
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    with EventStore.open(path) as store:
        assert store.count() == 3


def test_a_bad_location_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(EventStoreError, match="does not exist"):
        EventStore.open(tmp_path / "missing" / "events.db")
    with pytest.raises(EventStoreError, match="is a directory"):
        EventStore.open(tmp_path)


def test_a_corrupt_record_names_its_position(tmp_path: Path) -> None:
    path = tmp_path / "events.db"
    with EventStore.open(path) as store:
        store.append(signals(5))
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE tape_events SET state = x'c1c1' WHERE rowid = 4")
    with EventStore.open(path) as store, pytest.raises(EventDecodeError, match="position 4"):
        list(store.read())


def test_a_locked_database_is_retried_then_fails_clearly(tmp_path: Path) -> None:
    path = tmp_path / "events.db"
    EventStore.open(path).close()
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    retry = RetryPolicy(attempts=3, initial_backoff_s=0.01)
    with EventStore.open(path, lock_timeout_s=0.05, retry=retry) as store:
        with pytest.raises(StoreLockedError, match=r"after 3 attempts.*nothing was written"):
            store.append(signals(4))
        blocker.execute("ROLLBACK")
        assert store.count() == 0


def test_a_lock_released_during_the_backoff_lets_the_append_through(tmp_path: Path) -> None:
    path = tmp_path / "events.db"
    EventStore.open(path).close()
    blocker = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    blocker.execute("BEGIN EXCLUSIVE")
    threading.Timer(0.3, lambda: blocker.execute("ROLLBACK")).start()
    retry = RetryPolicy(attempts=10, initial_backoff_s=0.05, max_backoff_s=0.2)
    with EventStore.open(path, lock_timeout_s=0.05, retry=retry) as store:
        assert len(store.append(signals(4)).positions) == 4
        assert store.count() == 4
