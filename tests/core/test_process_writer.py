"""ProcessEventWriter: the writer contract, and what only a child process can do."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tapereader.core.process_writer import ProcessEventWriter
from tapereader.core.store import EventStoreError
from tapereader.core.writer import WriterConfig, WriterFailedError

from .store_testcase import signals
from .writer_testcase import WriterContract, stored


class TestProcessEventWriter(WriterContract):
    def make(self, path: Path, config: WriterConfig) -> ProcessEventWriter:
        return ProcessEventWriter(path, config)


def test_a_store_that_cannot_be_opened_is_refused_at_start(tmp_path: Path) -> None:
    with pytest.raises(EventStoreError, match="does not exist"):
        ProcessEventWriter(tmp_path / "missing" / "events.db")


def test_the_store_url_is_not_on_the_child_command_line(tmp_path: Path) -> None:
    path = tmp_path / "secret-name.db"
    with ProcessEventWriter(path) as writer:
        cmdline = Path(f"/proc/{writer._process.pid}/cmdline").read_bytes()
    assert b"secret-name" not in cmdline


def test_a_dead_child_stops_the_writer_and_keeps_what_it_did_not_confirm(tmp_path: Path) -> None:
    path = tmp_path / "events.db"
    events = signals(40)
    writer = ProcessEventWriter(path, WriterConfig(max_batch=10, max_delay_ms=0))
    writer.put_many(events[:20])
    writer.flush(timeout_s=30)
    writer._process.kill()
    writer._process.wait()
    taken = []
    for event in events[20:]:  # taken until the writer notices, then refused
        try:
            writer.put(event)
        except WriterFailedError as exc:
            assert "exited" in str(exc)
            break
        taken.append(event)
        time.sleep(0.05)
    else:
        pytest.fail("the writer did not notice its child died")
    with pytest.raises(WriterFailedError):
        writer.close()
    assert stored(path) == events[:20]
    assert writer.unwritten() == taken  # every event it took and did not store


def _running(pid: int) -> bool:
    """Alive and not a zombie (an orphan's zombie waits for whoever reaps orphans here)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_the_child_ignores_ctrl_c_and_exits_when_its_producer_dies(tmp_path: Path) -> None:
    # A producer process that queues events without closing, then is killed.
    script = (
        "import sys, time\n"
        "from tapereader.core.process_writer import ProcessEventWriter\n"
        "w = ProcessEventWriter(sys.argv[1])\n"
        "print(w._process.pid, flush=True)\n"
        "time.sleep(60)\n"
    )
    producer = subprocess.Popen(
        [sys.executable, "-c", script, str(tmp_path / "events.db")],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        child = int(producer.stdout.readline())  # type: ignore[union-attr]
        os.kill(child, signal.SIGINT)
        time.sleep(0.3)
        assert _running(child)  # a Ctrl-C is for the producer to handle
        producer.kill()
        producer.wait()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if not _running(child):
                break
            time.sleep(0.05)
        else:
            pytest.fail("the writer process outlived its producer")
    finally:
        producer.kill()
