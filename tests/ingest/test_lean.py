"""Lean FX ticks (FXCM UTC-05 clock, OANDA UTC) and hourly bid/ask bars."""

import datetime as dt
import zipfile
from decimal import Decimal
from pathlib import Path

import pytest
from nautilus_trader.model.data import Bar, BarType, QuoteTick
from nautilus_trader.persistence.catalog import ParquetDataCatalog

from tapereader.ingest.pipeline import ingest

from .conftest import FXCM_TICKS, OANDA_HOURS, OANDA_TICKS, make_ctx


def _ns(text: str) -> int:
    moment = dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)
    return (moment - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) // dt.timedelta(microseconds=1) * 1000


def _zip_rows(folder: Path) -> list[tuple[str, str]]:
    rows = []
    for path in sorted(folder.glob("*.zip")):
        with zipfile.ZipFile(path) as zf:
            text = zf.read(zf.namelist()[0]).decode()
        rows.extend(tuple(r.split(",")[1:3]) for r in text.splitlines() if r)
    return rows


@pytest.fixture(scope="module")
def fxcm_rows(market_data: Path) -> list[tuple[str, str]]:
    return _zip_rows(market_data / FXCM_TICKS)


def test_fxcm_crossed_quotes_are_dropped_and_counted(
    market_data: Path, tmp_path: Path, fxcm_rows
) -> None:
    report = ingest([market_data / FXCM_TICKS], tmp_path / "cat", make_ctx(crossed="drop"))
    kinds = [k for f in report.files for k in f.kinds]
    crossed = sum(Decimal(b) > Decimal(a) for b, a in fxcm_rows)
    locked = sum(Decimal(b) == Decimal(a) for b, a in fxcm_rows)
    assert len(report.files) == 13
    assert sum(k.rows_read for k in kinds) == len(fxcm_rows) == 1_144_807
    assert sum(k.crossed for k in kinds) == crossed == 116_871
    assert sum(k.rows_rejected.get("crossed", 0) for k in kinds) == crossed
    assert sum(k.locked for k in kinds) == locked
    assert sum(k.rows_written for k in kinds) == 1_144_807 - crossed
    # About 10% crossed and 13% locked, as the data README says.
    assert 0.09 < crossed / len(fxcm_rows) < 0.11 and 0.12 < locked / len(fxcm_rows) < 0.14
    quotes = ParquetDataCatalog(str(tmp_path / "cat")).query(
        QuoteTick,
        identifiers=["EUR/USD.FXCM"],
        start=_ns("2014-05-01T05:00:00"),
        end=_ns("2014-05-01T05:00:02"),
    )
    # 1787 ms after midnight on FXCM's UTC-05 clock is 05:00:01.787 UTC.
    assert quotes[0].ts_event == quotes[0].ts_init == _ns("2014-05-01T05:00:01.787")
    assert (str(quotes[0].bid_price), str(quotes[0].ask_price)) == ("1.38727", "1.38729")
    assert quotes[0].bid_size.as_double() == 1_000_000


def test_fxcm_keep_policy_writes_crossed_quotes_unchanged_and_flags_them(
    market_data: Path, tmp_path: Path
) -> None:
    day = market_data / FXCM_TICKS / "20140501_quote.zip"
    report = ingest([day], tmp_path / "cat", make_ctx(crossed="keep"), record_events=False)
    (k,) = report.files[0].kinds
    assert k.rows_read == k.rows_written == 51_053 and k.crossed == 3_991 and not k.rows_rejected
    quotes = ParquetDataCatalog(str(tmp_path / "cat")).query(QuoteTick)
    assert sum(q.bid_price > q.ask_price for q in quotes) == 3_991


def test_oanda_ticks_are_utc_and_clean(market_data: Path, tmp_path: Path) -> None:
    report = ingest([market_data / OANDA_TICKS], tmp_path / "cat", make_ctx(), record_events=False)
    kinds = [k for f in report.files for k in f.kinds]
    assert sum(k.rows_written for k in kinds) == 532_903
    assert sum(k.crossed for k in kinds) == 0
    first = min(k.start_ns for k in kinds)
    assert first == _ns("2014-05-01T00:00:00.292")  # first row: 292 ms, UTC clock


def test_hourly_bars_become_bid_and_ask_bars_stamped_at_close(
    market_data: Path, tmp_path: Path
) -> None:
    report = ingest([market_data / OANDA_HOURS], tmp_path / "cat", make_ctx(), record_events=False)
    kinds = {k.identifier: k for k in report.files[0].kinds}
    bid, ask = "EUR/USD.OANDA-1-HOUR-BID-EXTERNAL", "EUR/USD.OANDA-1-HOUR-ASK-EXTERNAL"
    assert kinds[bid].rows_written == kinds[ask].rows_written == 74_439
    cat = ParquetDataCatalog(str(tmp_path / "cat"))
    bars = cat.query(Bar, identifiers=[bid], end=_ns("2007-01-02T00:00:00"))
    # First row: "20070101 21:00,1.31927,1.31955,1.3187,1.31935,0,..." (open time, UTC).
    assert bars[0].bar_type == BarType.from_str(bid)
    assert bars[0].ts_event == _ns("2007-01-01T22:00:00")
    assert [str(x) for x in (bars[0].open, bars[0].high, bars[0].low, bars[0].close)] == [
        "1.31927",
        "1.31955",
        "1.31870",
        "1.31935",
    ]
    asks = cat.query(Bar, identifiers=[ask], end=_ns("2007-01-01T22:00:00"))
    assert str(asks[0].open) == "1.32027"
