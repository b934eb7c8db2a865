"""Binance data-archive zips, written here in the archive's format from the real raw feed."""

import gzip
import io
import zipfile
from pathlib import Path

import msgspec
import pytest
from nautilus_trader.model.data import QuoteTick, TradeTick
from nautilus_trader.persistence.catalog import ParquetDataCatalog

from tapereader.ingest.detect import detect_format
from tapereader.ingest.pipeline import ingest

from .conftest import BTC_FEED, make_ctx

BTC = "BTCUSDT-PERP.BINANCE"


def _write_zip(path: Path, header: list[str] | None, rows: list[list[str]]) -> None:
    text = io.StringIO()
    if header:
        text.write(",".join(header) + "\n")
    for row in rows:
        text.write(",".join(row) + "\n")
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(path.with_suffix(".csv").name, text.getvalue())


@pytest.fixture(scope="module")
def archive(market_data: Path, tmp_path_factory) -> Path:
    """``BTCUSDT-trades-2024-08-08.zip`` (with header) and ``...-bookTicker-...`` (without)."""
    folder = tmp_path_factory.mktemp("archive")
    trades, tickers = [], []
    with gzip.open(market_data / BTC_FEED, "rt") as fh:
        for line in fh:
            msg = msgspec.json.decode(line.split(" ", 1)[1])
            d = msg.get("data", {})
            if d.get("e") == "trade":
                quote_qty = f"{float(d['p']) * float(d['q']):.5f}"
                trades.append(
                    [
                        str(d["t"]),
                        d["p"],
                        d["q"],
                        quote_qty,
                        str(d["T"]),
                        "true" if d["m"] else "false",
                    ]
                )
            elif d.get("e") == "bookTicker":
                tickers.append(
                    [str(d["u"]), d["b"], d["B"], d["a"], d["A"], str(d["T"]), str(d["E"])]
                )
    _write_zip(
        folder / "BTCUSDT-trades-2024-08-08.zip",
        ["id", "price", "qty", "quote_qty", "time", "is_buyer_maker"],
        trades,
    )
    _write_zip(folder / "BTCUSDT-bookTicker-2024-08-08.zip", None, tickers)
    return folder


def test_archive_files_are_detected(archive: Path) -> None:
    assert {detect_format(p) for p in archive.iterdir()} == {"binance-archive"}


def test_archive_matches_the_raw_feed(archive: Path, btc_feed_catalog, tmp_path: Path) -> None:
    report = ingest([archive], tmp_path / "cat", make_ctx(), record_events=False)
    counts = {f.data_format: f.kinds[0].rows_written for f in report.files}
    assert counts == {"binance-archive-bookTicker": 66_089, "binance-archive-trades": 21_313}
    from_archive = ParquetDataCatalog(str(tmp_path / "cat"))
    from_feed = ParquetDataCatalog(str(btc_feed_catalog[0]))
    a_trades = from_archive.query(TradeTick, identifiers=[BTC])
    f_trades = from_feed.query(TradeTick, identifiers=[BTC])
    for a, f in zip(a_trades, f_trades, strict=True):
        # Same trade, price, size, side and exchange time; the archive has no receive time.
        assert (a.trade_id, a.price, a.size, a.aggressor_side, a.ts_event) == (
            f.trade_id,
            f.price,
            f.size,
            f.aggressor_side,
            f.ts_event,
        )
        assert a.ts_init == a.ts_event
    a_quotes = from_archive.query(QuoteTick, identifiers=[BTC])
    f_quotes = from_feed.query(QuoteTick, identifiers=[BTC])
    assert [(q.bid_price, q.ask_price, q.bid_size, q.ask_size, q.ts_event) for q in a_quotes] == [
        (q.bid_price, q.ask_price, q.bid_size, q.ask_size, q.ts_event) for q in f_quotes
    ]
