"""Binance USD-M raw feed: exact counts, field mapping, round trip, and the rebuilt book."""

import bisect
import gzip
from decimal import Decimal
from pathlib import Path

import msgspec
import polars as pl
from nautilus_trader.model.book import OrderBook
from nautilus_trader.model.data import OrderBookDelta, QuoteTick, TradeTick
from nautilus_trader.model.enums import AggressorSide, BookType
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.persistence.catalog import ParquetDataCatalog

from tapereader.ingest.binance_feed import BOOK_TICKER, decode, read_lines
from tapereader.ingest.pipeline import ingest

from .conftest import BTC_FEED, ETH_FEED, make_ctx

BTC = "BTCUSDT-PERP.BINANCE"


def _raw_messages(path: Path) -> list[tuple[int, dict]]:
    out = []
    with gzip.open(path, "rt") as fh:
        for line in fh:
            recv, js = line.split(" ", 1)
            out.append((int(recv), msgspec.json.decode(js)))
    return out


def test_btcusdt_feed_counts_match_the_file(btc_feed_catalog) -> None:
    _, report = btc_feed_catalog
    (f,) = report.files
    kinds = {k.kind: k for k in f.kinds}
    assert kinds["trades"].rows_read == kinds["trades"].rows_written == 21_313
    assert kinds["quotes"].rows_read == kinds["quotes"].rows_written == 66_089
    assert f.book is not None and f.book.rebuilt and not f.book.chain_breaks
    assert f.book.diffs_total == 6_551
    assert f.book.snapshot_line == 55
    assert f.book.diffs_before_snapshot + f.book.diffs_applied == 6_551
    assert kinds["quotes"].crossed == 0 and kinds["quotes"].non_monotonic_ts_init == 0
    assert f.instrument_ids == [BTC]


def test_ethusdt_feed_counts_match_the_file(market_data: Path, tmp_path: Path) -> None:
    report = ingest([market_data / ETH_FEED], tmp_path / "cat", make_ctx(), record_events=False)
    kinds = {k.kind: k for k in report.files[0].kinds}
    assert kinds["trades"].rows_written == 14_076
    assert kinds["quotes"].rows_written == 53_992
    assert report.files[0].book.diffs_total == 6_586
    assert report.files[0].book.rebuilt


def test_trades_and_quotes_round_trip_with_exchange_and_receive_times(
    btc_feed_catalog, market_data: Path
) -> None:
    catalog, _ = btc_feed_catalog
    cat = ParquetDataCatalog(str(catalog))
    trades = cat.query(TradeTick, identifiers=[BTC])
    quotes = cat.query(QuoteTick, identifiers=[BTC])
    raw = _raw_messages(market_data / BTC_FEED)
    raw_trades = [(r, m["data"]) for r, m in raw if m.get("stream", "").endswith("@trade")]
    raw_quotes = [(r, m["data"]) for r, m in raw if m.get("stream", "").endswith("@bookTicker")]
    assert len(trades) == len(raw_trades) and len(quotes) == len(raw_quotes)
    for tick, (recv, d) in zip(trades, raw_trades, strict=True):
        assert tick.ts_event == d["T"] * 1_000_000 and tick.ts_init == recv
        assert tick.price.as_decimal() == Decimal(d["p"])
        assert tick.size.as_decimal() == Decimal(d["q"])
        assert str(tick.trade_id) == str(d["t"])
        # m: the buyer was the maker, so the seller was the aggressor.
        assert tick.aggressor_side == (AggressorSide.SELLER if d["m"] else AggressorSide.BUYER)
    for tick, (recv, d) in zip(quotes, raw_quotes, strict=True):
        assert tick.ts_event == d["T"] * 1_000_000 and tick.ts_init == recv
        assert (tick.bid_price.as_decimal(), tick.ask_price.as_decimal()) == (
            Decimal(d["b"]),
            Decimal(d["a"]),
        )
        assert (tick.bid_size.as_decimal(), tick.ask_size.as_decimal()) == (
            Decimal(d["B"]),
            Decimal(d["A"]),
        )
    assert sum(t.aggressor_side == AggressorSide.SELLER for t in trades) == sum(
        d["m"] for _, d in raw_trades
    )


def _compare_book_with_book_ticker(catalog: Path, feed: Path, instrument_id: str) -> int:
    """Replay the catalog's deltas; at the end of every snapshot or diff the top of book must
    equal the latest bookTicker at or before that update id. Returns how many were compared."""
    deltas = ParquetDataCatalog(str(catalog)).query(OrderBookDelta, identifiers=[instrument_id])
    lines = read_lines(feed)
    tickers = decode(lines.filter(pl.col("stream") == "bookTicker"), BOOK_TICKER, "feed", True)
    ids, bids, asks = tickers["u"].to_list(), tickers["b"].to_list(), tickers["a"].to_list()
    book = OrderBook(InstrumentId.from_str(instrument_id), BookType.L2_MBP)
    compared = 0
    for delta in deltas:
        book.apply_delta(delta)
        if not delta.flags & 128:  # F_LAST: the end of one snapshot or diff
            continue
        k = bisect.bisect_right(ids, delta.sequence) - 1
        if k < 0:
            continue
        top = (book.best_bid_price().as_decimal(), book.best_ask_price().as_decimal())
        assert top == (Decimal(bids[k]), Decimal(asks[k])), f"update id {delta.sequence}"
        compared += 1
    return compared


def test_book_from_snapshot_and_diffs_matches_the_feeds_own_best_bid_ask(
    btc_feed_catalog, market_data: Path
) -> None:
    catalog, report = btc_feed_catalog
    compared = _compare_book_with_book_ticker(catalog, market_data / BTC_FEED, BTC)
    assert compared == 1 + report.files[0].book.diffs_applied == 6_548


def test_ethusdt_book_matches_its_best_bid_ask(market_data: Path, tmp_path: Path) -> None:
    report = ingest([market_data / ETH_FEED], tmp_path / "cat", make_ctx(), record_events=False)
    eth = "ETHUSDT-PERP.BINANCE"
    compared = _compare_book_with_book_ticker(tmp_path / "cat", market_data / ETH_FEED, eth)
    assert compared == 1 + report.files[0].book.diffs_applied == 6_582


def _rewrite_feed(src: Path, dst: Path, drop, limit: int | None = None) -> None:
    """A copy of a feed without the lines ``drop(i, line)`` selects (first ``limit`` lines)."""
    kept = []
    with gzip.open(src, "rt") as fin:
        for i, line in enumerate(fin, start=1):
            if limit is not None and i > limit:
                break
            if not drop(i, line):
                kept.append(line)
    dst.write_bytes(gzip.compress("".join(kept).encode(), compresslevel=1))


def test_feed_without_snapshot_still_yields_trades_and_quotes(
    market_data: Path, tmp_path: Path
) -> None:
    feed = tmp_path / "no_snapshot_rawfeed.gz"
    _rewrite_feed(market_data / BTC_FEED, feed, lambda i, line: '"lastUpdateId"' in line[:60])
    report = ingest([feed], tmp_path / "cat", make_ctx(), record_events=False)
    f = report.files[0]
    assert {k.kind: k.rows_written for k in f.kinds} == {"trades": 21_313, "quotes": 66_089}
    assert f.book is not None and not f.book.rebuilt
    assert "cannot be rebuilt" in f.book.reason
    assert not (tmp_path / "cat" / "data" / "order_book_deltas").exists()


def test_a_break_in_the_update_id_chain_is_reported_not_papered_over(
    market_data: Path, tmp_path: Path
) -> None:
    lines = read_lines(market_data / BTC_FEED)
    depth_lines = lines.filter(pl.col("stream").str.starts_with("depth"))["line"].to_list()
    lost = depth_lines[1000]  # one diff lost in transit, well after the snapshot
    feed = tmp_path / "gap_rawfeed.gz"
    limit = depth_lines[2000] - 1  # the first 2,000 diffs and what came with them
    _rewrite_feed(market_data / BTC_FEED, feed, lambda i, line: i == lost, limit=limit)
    report = ingest([feed], tmp_path / "cat", make_ctx(), record_events=False)
    book = report.files[0].book
    assert book.rebuilt and len(book.chain_breaks) == 1
    # The next diff (one line later in the original file) is where the chain breaks.
    next_diff = depth_lines[1001]
    assert book.chain_breaks[0].line == next_diff - 1  # line numbers of the rewritten file
    assert book.diffs_total == 1_999
    assert book.diffs_after_break == 1_999 - 1_000
    assert book.diffs_applied == 1_000 - book.diffs_before_snapshot
    deltas = {k.kind: k for k in report.files[0].kinds}["book_deltas"]
    assert deltas.rows_rejected["after_chain_break"] > 0
    assert "chain broken" in book.reason


def test_the_first_applied_diff_must_bracket_the_snapshot(
    market_data: Path, tmp_path: Path
) -> None:
    # Drop the diffs around the snapshot so the first diff after it starts past lastUpdateId.
    lines = read_lines(market_data / BTC_FEED)
    depth = lines.filter(pl.col("stream").str.starts_with("depth"))["line"].to_list()
    snapshot_line = 55
    after = [n for n in depth if n > snapshot_line][:3]
    feed = tmp_path / "late_rawfeed.gz"
    dropped = set(after) | {n for n in depth if n < snapshot_line}
    _rewrite_feed(market_data / BTC_FEED, feed, lambda i, line: i in dropped, limit=5_000)
    report = ingest([feed], tmp_path / "cat", make_ctx(), record_events=False)
    book = report.files[0].book
    assert book.chain_breaks and book.diffs_applied == 0
    assert book.chain_breaks[0].expected_pu == book.snapshot_update_id


def test_feed_without_depth_has_no_book_report(market_data: Path, tmp_path: Path) -> None:
    feed = tmp_path / "trades_only_rawfeed.gz"
    _rewrite_feed(
        market_data / BTC_FEED, feed, lambda i, line: "@trade" not in line[:80], limit=2_000
    )
    report = ingest([feed], tmp_path / "cat", make_ctx(), record_events=False)
    assert report.files[0].book is None
    assert [k.kind for k in report.files[0].kinds] == ["trades"]
