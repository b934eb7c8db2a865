"""The ``scanners`` command, and the analysis recorded as events in the real event store."""

import hashlib
from pathlib import Path

import msgspec
import pytest

from tapereader.cli import main
from tapereader.core.codec import to_msgpack
from tapereader.core.events import (
    AnyEvent,
    ScannerBoundariesDetected,
    ScannerContaminationFound,
    ScannerFileSubmitted,
    ScannerGenerated,
    ScannerParametersIsolated,
    ScannerSecurityFinding,
    Source,
)
from tapereader.core.scanning.analysis import analyse, write_outputs
from tapereader.core.scanning.scanner_events import analysis_events
from tapereader.core.store import EventStore

from .scanner_corpus import CORPUS


def _cli(argv: list[str]) -> int:
    # Through the real entry point, so the subcommand's wiring is tested too.
    return main(argv)


def test_split_prints_a_table_and_writes_one_file_per_scanner(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    assert (
        _cli(["scanners", "split", str(CORPUS / "momentum_trio.py"), "-o", str(out), "--no-bandit"])
        == 0
    )
    printed = capsys.readouterr().out
    for col in ("scanner", "lines", "params", "helpers", "findings", "confidence"):
        assert col in printed
    assert "scan_a_plus" in printed and "46-71" in printed
    assert sorted(p.name for p in out.iterdir()) == [
        "scan_a_plus.py",
        "scan_quiet_squeeze.py",
        "scan_volume_breakout.py",
    ]
    assert "pk_live_" not in printed


def test_check_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert _cli(["scanners", "check", str(CORPUS / "config_zoo.py"), "--no-bandit"]) == 0
    assert list(tmp_path.iterdir()) == []
    assert "ChannelBreakoutScanner" in capsys.readouterr().out


def test_bad_input_exits_2_naming_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "scanners.py"
    bad.write_text("def scan_a(df):\n    return df[\n")
    assert _cli(["scanners", "check", str(bad)]) == 2
    err = capsys.readouterr().err
    assert f"{bad}:2: not valid Python" in err
    blob = tmp_path / "image.py"
    blob.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    assert _cli(["scanners", "split", str(blob), "-o", str(tmp_path / "o")]) == 2
    assert "binary file" in capsys.readouterr().err and not (tmp_path / "o").exists()


def test_events_round_trip_through_the_store_and_replay_reproduces_outputs(
    tmp_path: Path,
) -> None:
    path = CORPUS / "momentum_trio.py"
    a = analyse(path, second_opinion=False)
    written = write_outputs(a, tmp_path / "out")
    source = Source(component="ScannerTest", run_id="run-1")
    events = analysis_events(a, source, outputs={k: str(v) for k, v in written.items()})
    kinds = [type(e) for e in events]
    assert kinds[0] is ScannerFileSubmitted and kinds[1] is ScannerBoundariesDetected
    assert kinds.count(ScannerParametersIsolated) == 3
    assert kinds.count(ScannerGenerated) == 3
    assert ScannerContaminationFound in kinds and ScannerSecurityFinding in kinds
    assert all(e.correlation_id == events[0].event_id for e in events[1:])
    for e in events:
        assert b"pk_live_" not in to_msgpack(e)
        msgspec.convert(msgspec.to_builtins(e), AnyEvent)  # every event satisfies its schema

    store = EventStore.open(tmp_path / "events.sqlite")
    try:
        store.append(events)
        back = [r.event for r in store.read()]
    finally:
        store.close()
    assert [e.event_id for e in back] == [e.event_id for e in events]
    submitted = back[0]
    assert isinstance(submitted, ScannerFileSubmitted)
    assert submitted.file_sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    # Replay: the same input bytes give the same outputs, byte for byte.
    again = analyse(path, second_opinion=False)
    for e in back:
        if isinstance(e, ScannerGenerated):
            assert hashlib.sha256(Path(e.output_path).read_bytes()).hexdigest() == e.output_sha256
            (s,) = [s for s in again.report.scanners if s.name == e.scanner]
            assert s.output_sha256 == e.output_sha256
    params = {e.scanner: e.parameters for e in back if isinstance(e, ScannerParametersIsolated)}
    assert params["scan_a_plus"] == {
        "P.price_min": "10.0",
        "P.atr_mult": "1.5",
        "P.slope3d_min": "0.02",
    }


def test_check_with_proof_and_review_flag_in_events(capsys: pytest.CaptureFixture[str]) -> None:
    assert _cli(["scanners", "check", str(CORPUS / "two_truths.py"), "--prove"]) == 0
    out = capsys.readouterr().out
    assert "proof momentum_scan: proven" in out and "proof stream_alerts: skipped" in out
    assert "0.67 review" in out and "two sources of truth in momentum_scan" in out
    a = analyse(CORPUS / "two_truths.py", second_opinion=False)
    events = analysis_events(a, Source(component="ScannerTest", run_id="r"))
    (bounds,) = [e for e in events if isinstance(e, ScannerBoundariesDetected)]
    assert {b.name: b.kind for b in bounds.scanners} == dict.fromkeys(
        ("momentum_scan", "pullback", "stream_alerts"), "function"
    )
    review = {b.name: b.needs_review for b in bounds.scanners}
    assert review == {"momentum_scan": False, "pullback": True, "stream_alerts": True}
    assert all(b.confidence is not None for b in bounds.scanners)
    assert max(b.confidence for b in bounds.scanners if b.needs_review) < min(
        b.confidence for b in bounds.scanners if not b.needs_review
    )


def test_json_report(capsys: pytest.CaptureFixture[str]) -> None:
    assert _cli(["scanners", "check", str(CORPUS / "config_zoo.py"), "--json", "--no-bandit"]) == 0
    report = msgspec.json.decode(capsys.readouterr().out)
    assert [s["name"] for s in report["scanners"]][:2] == ["scan_gap", "scan_reversal"]
    assert report["scanners"][0]["parameters"][0] == {
        "name": "CONFIG.gap.close_pct",
        "value": "0.03",
        "type": "float",
        "line": 12,
        "expressed": "nested-dict",
        "container": "",
    }


def test_split_records_the_analysis_and_a_refusal_in_the_store(tmp_path: Path) -> None:
    store = tmp_path / "events.db"
    out = tmp_path / "out"
    argv = [
        "scanners",
        "split",
        str(CORPUS / "momentum_trio.py"),
        "-o",
        str(out),
        "--no-bandit",
        "--events",
        str(store),
    ]
    assert _cli(argv) == 0
    broken = tmp_path / "broken.py"
    broken.write_text("def scan(df):\n    return (\n")
    assert _cli(["scanners", "check", str(broken), "--events", str(store)]) == 2
    with EventStore.open(store) as s:
        events = [r.event for r in s.read()]
    generated = [e for e in events if isinstance(e, ScannerGenerated)]
    assert len(generated) == 3
    for e in generated:
        assert hashlib.sha256(Path(e.output_path).read_bytes()).hexdigest() == e.output_sha256
    rejected = events[-1]
    assert type(rejected).__name__ == "ScannerFileRejected"
    assert rejected.path == str(broken) and rejected.line is not None
    assert rejected.file_sha256 == hashlib.sha256(broken.read_bytes()).hexdigest()
