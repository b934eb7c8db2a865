"""ScannerActor: accepts multi-scanner files and emits the scanner analysis as events.

Files arrive in a watched directory or as ZeroMQ requests (a REP socket: send JSON
``{"path": ...}`` or ``{"name": ..., "source": ...}``, get ``{"accepted": ..., ...}``
back at once). The analysis runs through ``run_in_executor``, off the engine's thread when
live (inline in a backtest, as Nautilus does); finished results wait in a thread-safe queue
and are published from the engine's thread on the next poll, each event on the message bus
topic ``tapereader.events.scanners.<EventType>``, and appended to the event store when one is set.
All the logic is in :mod:`tapereader.core.scanning`; this class only adapts.
"""

import json
import queue
import time
from datetime import timedelta
from pathlib import Path

from nautilus_trader.common.actor import Actor
from nautilus_trader.common.config import ActorConfig
from nautilus_trader.common.events import TimeEvent

from tapereader.actors.bus import publish_event
from tapereader.actors.timers import set_engine_timer
from tapereader.core.events import DomainEvent, ScannerFileSubmitted, Source
from tapereader.core.scanning.analysis import analyse, write_outputs
from tapereader.core.scanning.parse import (
    ParsedModule,
    ScannerInputError,
    SourceFile,
    source_from_bytes,
)
from tapereader.core.scanning.scanner_events import analysis_events, rejected_event
from tapereader.core.store import EventStore

_TIMER = "scanner-actor-poll"


class ScannerActorConfig(ActorConfig, frozen=True):
    """Where files come from, where isolated scanners go, and how often to look."""

    output_dir: str
    watch_dir: str | None = None
    zmq_endpoint: str | None = None
    zmq_wait_ms: int = 0  # how long one poll may wait for a request (0: never block)
    poll_interval_ms: int = 1000
    second_opinion: bool = True
    run_id: str = "scanner"
    store_path: str | None = None


class ScannerActor(Actor):
    """Splits multi-scanner files into isolated scanners and publishes what it found."""

    def __init__(self, config: ScannerActorConfig) -> None:
        super().__init__(config)
        self._cfg = config
        self._seen: dict[str, tuple[float, int]] = {}
        self._done: queue.SimpleQueue = queue.SimpleQueue()
        self._socket = None
        self._store: EventStore | None = None
        self.published: int = 0

    def on_start(self) -> None:
        """Open the store and the socket, start polling."""
        if self._cfg.store_path:
            self._store = EventStore.open(self._cfg.store_path)
        if self._cfg.zmq_endpoint:
            import zmq

            self._socket = zmq.Context.instance().socket(zmq.REP)
            self._socket.setsockopt(zmq.LINGER, 0)
            self._socket.bind(self._cfg.zmq_endpoint)
        # Nothing is published from on_start: receivers that are not yet running drop it.
        set_engine_timer(
            self, _TIMER, timedelta(milliseconds=self._cfg.poll_interval_ms), self._on_poll
        )

    def on_stop(self) -> None:
        """Stop polling, publish what is finished, close the socket and the store."""
        if _TIMER in self.clock.timer_names:
            self.clock.cancel_timer(_TIMER)
        self._drain()
        if self._socket is not None:
            self._socket.close()
            self._socket = None
        if self._store is not None:
            self._store.close()
            self._store = None

    def submit_bytes(self, name: str, data: bytes) -> ScannerFileSubmitted:
        """Accept one file's bytes: emit the submission now, analyse in the executor.

        Raises :class:`ScannerInputError` (naming the file and line) for a binary file, text
        that is not UTF-8 or Python that does not parse: such a file is never submitted,
        and a ``ScannerFileRejected`` event says why.
        """
        try:
            source = source_from_bytes(name, data)
            ParsedModule(source)  # a syntax check, milliseconds: refuse before submitting
        except ScannerInputError as exc:
            self._publish([rejected_event(exc, data, self._source(), self.clock.timestamp_ns())])
            raise
        now = self.clock.timestamp_ns()
        submitted = ScannerFileSubmitted(
            ts_event=now,
            ts_init=now,
            source=self._source(),
            file_sha256=source.sha256,
            path=name,
            size_bytes=source.size_bytes,
            line_count=source.line_count,
        )
        self._publish([submitted])
        self.run_in_executor(self._analyse, (source, submitted))
        return submitted

    def _source(self) -> Source:
        return Source(component=str(self.id), run_id=self._cfg.run_id)

    def _analyse(self, source: SourceFile, submitted: ScannerFileSubmitted) -> None:
        # Runs on an executor thread: touches no engine object, hands results over a queue.
        try:
            analysis = analyse(source, second_opinion=self._cfg.second_opinion)
            out = Path(self._cfg.output_dir) / Path(source.path).stem
            written = write_outputs(analysis, out)
            events = analysis_events(
                analysis,
                self._source(),
                submitted=submitted,
                outputs={k: str(v) for k, v in written.items()},
                ts_ns=time.time_ns(),
            )
            self._done.put((source.path, events, None))
        except ScannerInputError as exc:
            self._done.put((source.path, [], str(exc)))

    def _on_poll(self, event: TimeEvent) -> None:
        if self._cfg.watch_dir:
            self._scan_directory(Path(self._cfg.watch_dir))
        if self._socket is not None:
            self._serve_request()
        self._drain()

    def _scan_directory(self, folder: Path) -> None:
        for path in sorted(folder.glob("*.py")):
            try:
                st = path.stat()
            except OSError:
                continue
            stamp = (st.st_mtime, st.st_size)
            if self._seen.get(str(path)) == stamp:
                continue
            self._seen[str(path)] = stamp
            try:
                self.submit_bytes(str(path), path.read_bytes())
            except ScannerInputError as exc:
                self.log.error(f"scanner file refused: {exc}")

    def _serve_request(self) -> None:
        import zmq

        sock = self._socket
        if not sock.poll(self._cfg.zmq_wait_ms, zmq.POLLIN):
            return
        sock.send(json.dumps(self._handle_request(sock.recv())).encode())

    def _handle_request(self, raw: bytes) -> dict:
        try:
            req = json.loads(raw)
            if "path" in req:
                name, data = self._allowed_path(str(req["path"]))
            else:
                name, data = str(req.get("name", "request.py")), str(req["source"]).encode()
            sub = self.submit_bytes(name, data)
        except (ValueError, KeyError, TypeError, OSError, ScannerInputError) as exc:
            return {"accepted": False, "error": str(exc)}
        return {"accepted": True, "file_sha256": sub.file_sha256, "event_id": str(sub.event_id)}

    def _allowed_path(self, path: str) -> tuple[str, bytes]:
        # A request names a file only inside the watched folder: the socket must not become
        # a way to read any file this process can read.
        if not self._cfg.watch_dir:
            raise ValueError("requests by path need watch_dir; send the source instead")
        root = Path(self._cfg.watch_dir).resolve()
        target = Path(path).resolve()
        if not target.is_relative_to(root):
            raise ValueError(f"{path} is outside the watched folder")
        return str(target), target.read_bytes()

    def _drain(self) -> None:
        while True:
            try:
                path, events, error = self._done.get_nowait()
            except queue.Empty:
                return
            if error:
                self.log.error(f"scanner analysis failed: {error}")
                continue
            self._publish(events)
            n = sum(1 for e in events if type(e).__name__ == "ScannerGenerated")
            self.log.info(f"scanner file {path}: {n} isolated scanners, {len(events)} events")

    def _publish(self, events: list[DomainEvent]) -> None:
        for e in events:
            publish_event(self, e)
        self.published += len(events)
        if self._store is not None and events:
            self._store.append(events)
