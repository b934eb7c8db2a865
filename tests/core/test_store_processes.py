"""The SQLite store across processes: a writer killed mid-stream, two writers at once."""

import collections
import itertools
import os
import signal
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tapereader.core.store import EventStore, EventStoreError, RetryPolicy, StoreLockedError

WORKER = Path(__file__).with_name("append_worker.py")


def start_worker(url: str, tag: str, batches: int, size: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(WORKER), url, tag, str(batches), str(size)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def check_log(store: EventStore) -> dict[str, list[int]]:
    """Assert positions have no holes and every batch is whole; return batch -> positions."""
    records = list(store.read())
    positions = [r.position for r in records]
    assert positions == list(range(1, len(records) + 1)), "holes or disorder among positions"
    batches: dict[str, list[int]] = collections.defaultdict(list)
    for r in records:
        batches[str(r.event.correlation_id)].append(r.position)
    for batch_id, members in batches.items():
        size = int(records[members[0] - 1].event.horizon)  # type: ignore[attr-defined]
        assert len(members) == size, f"batch {batch_id} is partial: {len(members)}/{size}"
        assert members == list(range(members[0], members[0] + size)), "batch not contiguous"
    return batches


@pytest.mark.slow
@pytest.mark.parametrize("acks_before_kill", [3, 17, 40])
def test_sigkill_mid_stream_loses_no_acknowledged_batch(
    tmp_path: Path, acks_before_kill: int
) -> None:
    url = f"sqlite:///{tmp_path / 'events.db'}"
    worker = start_worker(url, "crash", batches=10_000, size=500)
    acked: dict[str, tuple[int, int]] = {}
    assert worker.stdout is not None
    for line in worker.stdout:
        _, batch_id, first, last = line.split()
        acked[batch_id] = (int(first), int(last))
        if len(acked) == acks_before_kill:
            os.kill(worker.pid, signal.SIGKILL)  # lands while the next batch is being written
            break
    worker.wait(timeout=30)
    assert worker.returncode == -signal.SIGKILL

    with EventStore.open(url) as store:
        batches = check_log(store)
        for batch_id, (first, last) in acked.items():
            assert batches[batch_id] == list(range(first, last + 1))
        # At most the one batch in flight was committed without its acknowledgement.
        assert len(batches) - len(acked) in (0, 1)


@pytest.mark.slow
def test_two_writer_processes_on_one_file_lose_nothing(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'events.db'}"
    workers = [start_worker(url, tag, batches=150, size=200) for tag in ("A", "B")]
    acks: dict[str, list[tuple[int, int]]] = {}
    for tag, worker in zip(("A", "B"), workers, strict=True):
        out, err = worker.communicate(timeout=240)
        assert worker.returncode == 0, err
        acks[tag] = [(int(f), int(la)) for _, _, f, la in (ln.split() for ln in out.splitlines())]
    with EventStore.open(url) as store:
        assert store.count() == 2 * 150 * 200
        batches = check_log(store)
        assert len(batches) == 300
        tags = [r.event.source.run_id for r in store.read()]
        switches = sum(1 for a, b in itertools.pairwise(tags) if a != b)
        assert switches >= 2, "the writers never overlapped: the test proved nothing"
        for tag in ("A", "B"):
            events = [r.event for r in store.read() if r.event.source.run_id == tag]
            # Each writer's own order is kept in the global order.
            assert [(int(e.model_version), int(e.feature_spec_hash)) for e in events] == [
                (b, i) for b in range(150) for i in range(200)
            ]


def _reader_holding(path: Path) -> sqlite3.Connection:
    """A new file in the default (rollback) journal mode, and a connection holding a
    shared lock on it until it commits (usable from another thread)."""
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("CREATE TABLE t (x)")
    other.execute("BEGIN")
    other.execute("SELECT * FROM t").fetchall()
    return other


def test_opening_a_file_another_connection_holds_retries_the_switch_to_wal(
    tmp_path: Path,
) -> None:
    """Two processes creating one store at once: one switches the new file to WAL while
    the other waits. The switch needs the file to itself, so a reader holding it makes
    the first attempts fail; the store retries them instead of failing to open."""
    path = tmp_path / "events.db"
    other = _reader_holding(path)
    threading.Timer(0.3, other.execute, args=("COMMIT",)).start()
    retry = RetryPolicy(attempts=40, initial_backoff_s=0.01, max_backoff_s=0.05)
    with EventStore.open(f"sqlite:///{path}", lock_timeout_s=0.02, retry=retry) as store:
        assert store.count() == 0
    other.close()
    check = sqlite3.connect(path)
    assert check.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    check.close()


def test_a_file_locked_for_longer_than_the_retries_is_a_clear_error(tmp_path: Path) -> None:
    other = _reader_holding(tmp_path / "events.db")
    retry = RetryPolicy(attempts=3, initial_backoff_s=0.01, max_backoff_s=0.01)
    with pytest.raises(StoreLockedError, match=r"events\.db: could not switch the file to WAL"):
        EventStore.open(tmp_path / "events.db", lock_timeout_s=0.02, retry=retry)
    other.close()


def test_a_file_that_is_not_a_database_is_refused_by_name(tmp_path: Path) -> None:
    path = tmp_path / "events.db"
    path.write_text("plain text, not SQLite " * 10)
    with pytest.raises(EventStoreError, match=r"events\.db: not an SQLite event store"):
        EventStore.open(path)
    assert path.read_text() == "plain text, not SQLite " * 10  # left as it was
