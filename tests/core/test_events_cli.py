"""``tapereader events stats|tail|dump`` against a real store."""

import subprocess
import sys
from pathlib import Path

import msgspec
import pytest

from tapereader.cli import main
from tapereader.core.codec import from_json
from tapereader.core.store import EventStore

from .samples import sample_events


@pytest.fixture
def store_path(tmp_path: Path) -> tuple[Path, list]:
    path = tmp_path / "events.db"
    events = sample_events()
    with EventStore.open(path) as store:
        store.append(events)
    return path, events


def test_stats(store_path: tuple[Path, list], capsys: pytest.CaptureFixture[str]) -> None:
    path, events = store_path
    assert main(["events", "--store", str(path), "stats"]) == 0
    out = capsys.readouterr().out
    assert f"events         {len(events)}" in out
    assert "signals" in out and "scanners" in out
    assert "2024-08-08T23:54:15" in out


def test_tail_prints_the_newest(store_path: tuple[Path, list], capsys) -> None:
    path, events = store_path
    assert main(["events", "--store", str(path), "tail", "-n", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    assert "ScannerFileRejected" in lines[0] and "ScannerIsolationProven" in lines[1]
    assert lines[1].split()[0] == str(len(events))


def test_dump_is_json_lines_that_decode_back(store_path: tuple[Path, list], capfdbinary) -> None:
    path, events = store_path
    assert main(["events", "--store", str(path), "dump", "--from", "3", "--to", "5"]) == 0
    lines = capfdbinary.readouterr().out.splitlines()
    rows = [msgspec.json.decode(line) for line in lines]
    assert [r["position"] for r in rows] == [3, 4, 5]
    assert [from_json(msgspec.json.encode(r["event"])) for r in rows] == events[2:5]


def test_dump_one_stream(store_path: tuple[Path, list], capfdbinary) -> None:
    path, events = store_path
    stream = events[0].stream
    assert main(["events", "--store", str(path), "dump", "--stream", stream]) == 0
    rows = [msgspec.json.decode(line) for line in capfdbinary.readouterr().out.splitlines()]
    assert rows and all(r["stream"] == stream for r in rows)
    assert len(rows) == sum(1 for e in events if e.stream == stream)


def test_a_missing_store_is_a_clear_error_and_is_not_created(tmp_path: Path, capsys) -> None:
    missing = tmp_path / "nope.db"
    assert main(["events", "--store", str(missing), "stats"]) == 2
    assert "no event store there" in capsys.readouterr().err
    assert not missing.exists()


def test_the_console_script_is_installed() -> None:
    scripts = Path(sys.executable).parent
    done = subprocess.run([scripts / "tapereader", "--help"], capture_output=True, text=True)
    assert done.returncode == 0
    assert "events" in done.stdout
