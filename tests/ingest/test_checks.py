"""Quality findings and row policies on real rows made awkward on purpose."""

from pathlib import Path

import numpy as np
import polars as pl
from nautilus_trader.model.data import TradeTick
from nautilus_trader.persistence.catalog import ParquetDataCatalog

from tapereader.ingest.catalog_writer import chunk_bounds
from tapereader.ingest.pipeline import ingest

from .conftest import TARDIS_QUOTES, TARDIS_TRADES, make_ctx


def test_out_of_order_and_repeated_trades(market_data: Path, tmp_path: Path) -> None:
    lines = (market_data / TARDIS_TRADES).read_text().splitlines(keepends=True)
    header, rows = lines[0], lines[1:]
    rows[10], rows[11] = rows[11], rows[10]  # two trades arrive out of order
    rows.insert(500, rows[499])  # one trade repeated
    path = tmp_path / "trades.csv"
    path.write_text(header + "".join(rows))
    report = ingest([path], tmp_path / "cat", make_ctx(), record_events=False)
    (k,) = report.files[0].kinds
    assert k.rows_read == 10_000
    assert k.rows_rejected == {"duplicate_trade_id": 1} and k.duplicates == 1
    assert k.non_monotonic_ts_init >= 1 and k.rows_written == 9_999
    ts = [t.ts_init for t in ParquetDataCatalog(str(tmp_path / "cat")).query(TradeTick)]
    assert ts == sorted(ts) and len(ts) == 9_999


def test_gaps_longer_than_the_threshold_are_reported(market_data: Path, tmp_path: Path) -> None:
    report = ingest(
        [market_data / TARDIS_TRADES],
        tmp_path / "cat",
        make_ctx(gap_threshold_s=20),
        record_events=False,
    )
    (k,) = report.files[0].kinds
    ts = pl.read_csv(market_data / TARDIS_TRADES)["timestamp"].sort() * 1000
    widths = ts.diff().drop_nulls()
    assert k.gaps == int((widths > 20 * 10**9).sum()) > 0
    assert k.longest_gap_ns == int(widths.max())
    assert k.gap_examples[0].before_ns - k.gap_examples[0].after_ns == k.longest_gap_ns


def test_locked_quotes_are_kept_and_counted(market_data: Path, tmp_path: Path) -> None:
    lines = (market_data / TARDIS_QUOTES).read_text().splitlines(keepends=True)
    f = lines[5].rstrip("\n").split(",")
    f[6] = f[5]  # bid = ask
    lines[5] = ",".join(f) + "\n"
    path = tmp_path / "quotes.csv"
    path.write_text("".join(lines))
    (k,) = ingest([path], tmp_path / "cat", make_ctx(), record_events=False).files[0].kinds
    assert k.locked == 1 and k.crossed == 0 and k.rows_written == 9_999


def test_chunks_never_split_rows_of_one_timestamp() -> None:
    ts = np.array([1, 1, 2, 2, 2, 3, 4, 4, 5], dtype=np.uint64)
    bounds = chunk_bounds(ts, 2)
    assert bounds == [(0, 2), (2, 5), (5, 8), (8, 9)]
    assert chunk_bounds(ts, 100) == [(0, 9)]
