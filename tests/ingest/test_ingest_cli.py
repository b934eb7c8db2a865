"""``tapereader ingest``: summary table, exit status, and the DataIngested events."""

from pathlib import Path

import msgspec

from tapereader.cli import main
from tapereader.core.events import DataIngested
from tapereader.core.store import EventStore

from .conftest import FXCM_TICKS, TARDIS_QUOTES, TARDIS_TRADES, tree_digest


def _run(argv: list[str]) -> int:
    # Through the real entry point, so the subcommand's wiring is tested too.
    return main(["ingest", *argv])


def test_ingest_prints_a_summary_and_records_one_event_per_file(
    market_data: Path, tmp_path: Path, capsys
) -> None:
    catalog = tmp_path / "cat"
    files = [market_data / TARDIS_TRADES, market_data / TARDIS_QUOTES]
    status = _run(
        [
            *map(str, files),
            "--catalog",
            str(catalog),
            "--report-json",
            str(tmp_path / "report.json"),
        ]
    )
    assert status == 0
    out = capsys.readouterr().out
    assert "tardis-trades" in out and "tardis-quotes" in out and "9,999" in out
    assert "2 file(s), 19,998 rows written" in out
    report = msgspec.json.decode((tmp_path / "report.json").read_bytes())
    assert report["ok"] and len(report["files"]) == 2

    store = EventStore.open(catalog / "events.db")
    try:
        events = [r.event for r in store.read()]
    finally:
        store.close()
    assert [type(e) for e in events] == [DataIngested, DataIngested]
    trades = events[0]
    assert trades.path == str(files[0]) and trades.data_format == "tardis-trades"
    assert trades.rows_read == trades.rows_written == {"trades": 9_999}
    assert trades.instrument_ids == ["BTCUSDT-PERP.BINANCE"]
    assert trades.start_ns == 1582329602111000000 and trades.end_ns == 1582337147728000000
    assert len(trades.sha256) == 64 and events[0].source.run_id == events[1].source.run_id


def test_failure_exits_non_zero_and_names_the_problem(
    market_data: Path, tmp_path: Path, capsys
) -> None:
    catalog = tmp_path / "cat"
    assert _run([str(market_data / TARDIS_TRADES), "--catalog", str(catalog)]) == 0
    before = tree_digest(catalog)
    bad = tmp_path / "quotes.csv"
    lines = (market_data / TARDIS_QUOTES).read_text().splitlines(keepends=True)
    lines[41] = lines[41].replace("BTCUSDT", "NOPEUSDT")
    bad.write_text("".join(lines))
    status = _run([str(market_data / TARDIS_QUOTES), str(bad), "--catalog", str(catalog)])
    err = capsys.readouterr().err
    assert status == 1
    assert f"{bad}: line 42: unknown symbol 'NOPEUSDT'" in err and "nothing was written" in err
    assert tree_digest(catalog) == before


def test_format_and_policy_options(market_data: Path, tmp_path: Path, capsys) -> None:
    day = market_data / FXCM_TICKS / "20140504_quote.zip"
    status = _run(
        [
            str(day),
            "--catalog",
            str(tmp_path / "c"),
            "--format",
            "lean-fx-ticks",
            "--crossed",
            "keep",
            "--no-events",
            "--venue",
            "FXCM",
        ]
    )
    assert status == 0
    out = capsys.readouterr().out
    assert "1 file(s), 8,025 rows written" in out  # all read rows: crossed quotes kept
    assert not (tmp_path / "c" / "events.db").exists()


def test_undetectable_format_is_an_error(tmp_path: Path, capsys) -> None:
    odd = tmp_path / "prices.txt"
    odd.write_text("hello\n")
    assert _run([str(odd), "--catalog", str(tmp_path / "c")]) == 1
    assert "pass --format" in capsys.readouterr().err
