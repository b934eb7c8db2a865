"""Batched appends from a child process: the producer's interpreter only encodes the events.

:class:`~tapereader.core.writer.EventWriter` appends from a thread of the producer's own
process, so the store's work on every event (encoding, the schema check, the recorder's
Python) runs on the producer's GIL: in a backtest about a sixth of the chain's time, and in a
live node a writer busy with a batch holds up the next tick until the interpreter's switch
interval takes the GIL back. :class:`ProcessEventWriter` does the same appends in a child
process, on the other core. The producer encodes each chunk (one msgpack call) and queues the
bytes; a sender thread writes them to the child's pipe and a receiver thread takes the child's
acknowledgements, both asleep in system calls nearly all the time.

The contract is :class:`~tapereader.core.writer.EventWriter`'s: ``put``/``put_many``,
``flush``, ``close``, ``stats``, ``unwritten``; batches of ``max_batch`` events or
``max_delay_ms``; a full queue (``capacity`` chunks not yet acknowledged) blocks or raises as
the policy says; when the store fails, or the child dies, the writer stops and keeps every
event the child did not confirm as stored, in order. The child decodes what it receives
against the event schemas, so an invalid event refuses its batch exactly as
:meth:`EventStore.append` does.

The child is a fresh interpreter (``python -m tapereader.core.process_writer``), never a fork
of the producer and its threads; the store's URL, which may hold a password, reaches it
through the pipe, not its command line. It ignores SIGINT (a Ctrl-C in the terminal reaches
the whole process group, and the producer's orderly shutdown still needs it to write). When
the producer dies without closing (SIGKILL), the child writes nothing more and exits: what was
not yet stored dies with the producer, as with the thread writer, so a node restarted from
the store never races a leftover writer still appending.
"""

import collections
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterable
from multiprocessing.connection import Connection
from pathlib import Path

import msgspec

from tapereader.core.events import AnyEvent, DomainEvent
from tapereader.core.store import EventStore, EventStoreError
from tapereader.core.writer import (
    DEFAULT_CONFIG,
    OverflowPolicy,
    WriterConfig,
    WriterError,
    WriterFailedError,
    WriterFullError,
    WriterStats,
)

# Producer -> child: (kind, sequence number, events), msgpack.
_EVENTS, _FLUSH, _STOP = 0, 1, 2
_Message = tuple[int, int, list[AnyEvent]]
# Child -> producer (pickled tuples): ("ready", description) | ("failed", seq, offset, error)
# | ("ack", seq, offset, written, duplicates) | ("flushed", seq) | ("closed",) | ("refused",
# error) when the store cannot be opened. (seq, offset) is the first event not yet stored.


class _Chunk:
    __slots__ = ("done", "events", "seq")

    def __init__(self, seq: int, events: list[DomainEvent]) -> None:
        self.seq = seq
        self.events = events
        self.done = 0  # events of this chunk the child confirmed as stored


class ProcessEventWriter:
    """Appends events to the store at ``url`` in batches from a child process."""

    def __init__(
        self,
        url: str | Path,
        config: WriterConfig = DEFAULT_CONFIG,
        *,
        start_timeout_s: float = 60.0,
    ) -> None:
        self._config = config
        child_in, to_child = os.pipe()
        from_child, child_out = os.pipe()
        try:
            self._process = subprocess.Popen(
                [sys.executable, "-m", __name__, str(child_in), str(child_out)],
                pass_fds=(child_in, child_out),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
            )
        except BaseException:
            os.close(to_child)
            os.close(from_child)
            raise
        finally:
            os.close(child_in)
            os.close(child_out)
        self._to_child = Connection(to_child, readable=False)
        self._from_child = Connection(from_child, writable=False)
        self._to_child.send((str(url), config.max_batch, config.max_delay_ms))
        self.description = self._started(start_timeout_s)
        self._encoder = msgspec.msgpack.Encoder()
        self._cond = threading.Condition()  # guards everything below
        self._inflight: collections.deque[_Chunk] = collections.deque()
        self._seq = 0
        self._flushes: dict[int, threading.Event] = {}
        self._written = 0
        self._duplicates = 0
        self._batches = 0
        self._blocked_puts = 0
        self._blocked_s = 0.0
        self._failure: str | None = None
        self._finished = False  # the child said it closed, or is gone
        self._closed = False
        self._outbox: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self._sender = threading.Thread(target=self._send, name="tapereader-writer-send")
        self._receiver = threading.Thread(target=self._receive, name="tapereader-writer-recv")
        self._sender.daemon = self._receiver.daemon = True
        self._sender.start()
        self._receiver.start()

    def _started(self, timeout_s: float) -> str:
        """The store's description once the child opened it; raises what opening raised."""
        try:
            if not self._from_child.poll(timeout_s):
                raise WriterError(f"event writer process did not start within {timeout_s} s")
            try:
                reply = self._from_child.recv()
            except EOFError:
                self._process.wait(5)
                raise WriterError(
                    f"event writer process exited at start (code {self._process.returncode})"
                ) from None
            if reply[0] == "refused":
                raise EventStoreError(reply[1])
            return reply[1]
        except BaseException:
            self._process.kill()
            self._process.wait()
            self._to_child.close()
            self._from_child.close()
            raise

    # --- producer side -----------------------------------------------------------------

    def put(self, event: DomainEvent, *, timeout_s: float | None = None) -> None:
        """Queue one event; blocks or raises on a full queue as the policy says."""
        self._put([event], timeout_s)

    def put_many(self, events: Iterable[DomainEvent], *, timeout_s: float | None = None) -> None:
        """Queue several events, in order, as one chunk (``capacity`` counts chunks)."""
        chunk = list(events)
        if chunk:
            self._put(chunk, timeout_s)

    def _put(self, chunk: list[DomainEvent], timeout_s: float | None) -> None:
        if self._closed:
            raise WriterError("event writer is closed")
        with self._cond:
            self._raise_if_failed()
            capacity = self._config.capacity
            if len(self._inflight) >= capacity:
                if self._config.overflow is OverflowPolicy.RAISE:
                    raise WriterFullError(
                        f"event writer queue full ({capacity} items); nothing taken"
                    )
                started = time.perf_counter()
                room = self._cond.wait_for(
                    lambda: len(self._inflight) < capacity or self._failure is not None,
                    timeout_s,
                )
                self._blocked_puts += 1
                self._blocked_s += time.perf_counter() - started
                if not room:
                    raise WriterFullError(
                        f"event writer queue stayed full for {timeout_s} s; nothing taken"
                    )
                self._raise_if_failed()
            self._seq += 1
            self._inflight.append(_Chunk(self._seq, chunk))
            self._outbox.put(self._encoder.encode((_EVENTS, self._seq, chunk)))

    def flush(self, timeout_s: float | None = None) -> None:
        """Wait until every event put before this call is stored (or was already stored)."""
        if self._closed:
            raise WriterError("event writer is closed")
        reached = threading.Event()
        with self._cond:
            self._seq += 1
            if self._finished:
                reached.set()
            else:
                self._flushes[self._seq] = reached
                self._outbox.put(self._encoder.encode((_FLUSH, self._seq, [])))
        if not reached.wait(timeout_s):
            raise TimeoutError(
                f"flush: events still unwritten after {timeout_s} s "
                f"({len(self._inflight)} chunks queued)"
            )
        with self._cond:
            self._raise_if_failed()

    def close(self, timeout_s: float | None = None) -> None:
        """Write what is queued, then stop the child; raises if the store failed."""
        if self._closed:
            return
        self._closed = True
        self._outbox.put(self._encoder.encode((_STOP, 0, [])))  # after the queued chunks
        self._receiver.join(timeout_s)
        self._outbox.put(None)
        self._sender.join(timeout_s)
        try:
            self._process.wait(timeout_s)
        except subprocess.TimeoutExpired:  # do not leave it behind
            self._process.kill()
            self._process.wait()
        for conn in (self._to_child, self._from_child):
            conn.close()
        with self._cond:
            self._raise_if_failed()

    def __enter__(self) -> "ProcessEventWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def stats(self) -> WriterStats:
        """Counters since start; ``queued`` counts chunks not yet confirmed."""
        with self._cond:
            return WriterStats(
                written=self._written,
                duplicates=self._duplicates,
                batches=self._batches,
                queued=len(self._inflight),
                blocked_puts=self._blocked_puts,
                blocked_s=self._blocked_s,
            )

    def unwritten(self) -> list[DomainEvent]:
        """After a failure: every event taken but not confirmed stored, in order.

        Complete once :meth:`close` has returned.
        """
        with self._cond:
            return [e for c in self._inflight for e in c.events[c.done :]]

    def _raise_if_failed(self) -> None:  # holding self._cond
        if self._failure is not None:
            kept = sum(len(c.events) - c.done for c in self._inflight)
            raise WriterFailedError(
                f"event writer stopped: {self._failure}; {kept} events kept unwritten "
                "(see unwritten())"
            )

    # --- the two threads ---------------------------------------------------------------

    def _send(self) -> None:
        while (data := self._outbox.get()) is not None:
            try:
                self._to_child.send_bytes(data)
            except OSError:
                return  # the child is gone; the receiver reports it

    def _receive(self) -> None:
        while True:
            try:
                reply = self._from_child.recv()
            except (EOFError, OSError):
                try:
                    code = self._process.wait(5)
                except subprocess.TimeoutExpired:
                    code = None
                self._ended(f"event writer process exited (code {code})")
                return
            kind = reply[0]
            with self._cond:
                if kind == "ack":
                    _, seq, offset, written, duplicates = reply
                    self._confirm(seq, offset)
                    self._written += written
                    self._duplicates += duplicates
                    self._batches += 1
                elif kind == "flushed":
                    reached = self._flushes.pop(reply[1], None)
                    if reached is not None:
                        reached.set()
                elif kind == "failed":
                    _, seq, offset, error = reply
                    self._confirm(seq, offset)
                    self._failure = error
                self._cond.notify_all()
            if kind == "closed":
                self._ended(None)
                return

    def _confirm(self, seq: int, offset: int) -> None:
        """Everything before event ``offset`` of chunk ``seq`` is stored."""
        inflight = self._inflight
        while inflight and (
            inflight[0].seq < seq or (inflight[0].seq == seq and offset >= len(inflight[0].events))
        ):
            inflight.popleft()
        if inflight and inflight[0].seq == seq:
            inflight[0].done = offset

    def _ended(self, failure: str | None) -> None:
        with self._cond:
            self._finished = True
            if failure is not None and self._failure is None:
                self._failure = failure
            for reached in self._flushes.values():
                reached.set()
            self._flushes.clear()
            self._cond.notify_all()


# --- the child process -----------------------------------------------------------------------


def _serve(inbox: Connection, outbox: Connection) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        url, max_batch, max_delay_ms = inbox.recv()
    except EOFError:
        return
    try:
        store = EventStore.open(url)
    except Exception as exc:  # reported to the producer, which raises it
        outbox.send(("refused", str(exc)))
        return
    try:
        outbox.send(("ready", store.description))
        _Batcher(store, max_batch, max_delay_ms / 1000, outbox).run(inbox)
    finally:
        store.close()


class _Batcher:
    """The child's loop: collect chunks into batches, append them, acknowledge."""

    def __init__(
        self, store: EventStore, max_batch: int, max_delay_s: float, outbox: Connection
    ) -> None:
        self._store = store
        self._max_batch = max_batch
        self._max_delay_s = max_delay_s
        self._outbox = outbox
        self._decoder = msgspec.msgpack.Decoder(_Message)
        self._events: list[DomainEvent] = []
        # (seq, first, n): chunk seq's events from index ``first`` on, n of them, in order.
        self._chunks: list[tuple[int, int, int]] = []
        self._failed = False

    def run(self, inbox: Connection) -> None:
        deadline = 0.0
        while True:
            if self._events and not inbox.poll(max(0.0, deadline - time.monotonic())):
                self._write()
                continue
            try:
                data = inbox.recv_bytes()
            except EOFError:
                return  # the producer died without closing: write nothing more
            try:
                kind, seq, events = self._decoder.decode(data)
            except msgspec.ValidationError as exc:
                # Which chunk is unknown to the decoder, but it is the one after the
                # last taken: refuse it with the batch, as the store refuses a batch.
                msg = str(exc).replace("$[2]", "$", 1)  # the path inside the chunk
                self._refuse(f"InvalidEventError: batch refused, nothing appended: event {msg}")
                continue
            if kind == _EVENTS:
                if self._failed:
                    continue  # kept by the producer as unwritten
                if not self._events:
                    deadline = time.monotonic() + self._max_delay_s
                self._chunks.append((seq, 0, len(events)))
                self._events.extend(events)
                if len(self._events) >= self._max_batch:
                    self._write()
                continue
            self._write()
            if kind == _FLUSH:
                self._outbox.send(("flushed", seq))
            else:
                self._outbox.send(("closed",))
                return

    def _write(self) -> None:
        """Append what is collected, ``max_batch`` at a time, acknowledging each batch."""
        while self._events and not self._failed:
            n = min(self._max_batch, len(self._events))
            batch = self._events[:n]
            try:
                result = self._store.append(batch)
            except Exception as exc:  # the producer keeps this batch and all after it
                self._refuse(f"{type(exc).__name__}: {exc}")
                return
            del self._events[:n]
            seq, offset = self._consume(n)
            self._outbox.send(("ack", seq, offset, len(result.positions), len(result.duplicates)))

    def _consume(self, n: int) -> tuple[int, int]:
        """Drop ``n`` stored events from the chunk list; the first one not stored."""
        chunks = self._chunks
        while n:
            seq, first, size = chunks[0]
            if n >= size:
                chunks.pop(0)
                n -= size
                if not chunks:
                    return seq, first + size
            else:
                chunks[0] = (seq, first + n, size - n)
                n = 0
        seq, first, _ = chunks[0]
        return seq, first

    def _refuse(self, error: str) -> None:
        if self._failed:
            return
        self._failed = True
        if self._chunks:
            seq, first, _ = self._chunks[0]
        else:  # nothing collected: the failing chunk is the producer's oldest unconfirmed
            seq, first = 0, 0
        self._events.clear()
        self._chunks.clear()
        self._outbox.send(("failed", seq, first, error))


if __name__ == "__main__":
    _serve(
        Connection(int(sys.argv[1]), writable=False), Connection(int(sys.argv[2]), readable=False)
    )
