"""Ingest throughput, file to catalog: tapereader's path beside Nautilus's wrangler path.

Run from the project root (not part of ``make test``)::

    .venv/bin/python tests/bench/bench_ingest.py [--runs 5] [--baseline-runs 3]

Datasets: the 1,144,807 FXCM EUR/USD Lean quote ticks (13 daily zips) and the BTCUSDT
raw feed of 2024-08-08 (trades, quotes and L2 book deltas). Each run writes a fresh catalog
in a temporary folder. Rates are source rows per second, end to end (read, parse, validate,
write Parquet; the DataIngested event is left out because the baseline has none).

The baseline is how Nautilus's documentation loads such files: pandas (FX) or a JSON loop
(feed) into DataFrames, ``QuoteTickDataWrangler`` / ``TradeTickDataWrangler`` /
``OrderBookDeltaDataWrangler``, then ``ParquetDataCatalog.write_data``. It keeps crossed
quotes and cannot carry the feed's receive times, so it does slightly less work.
"""

import argparse
import datetime as dt
import gzip
import shutil
import statistics
import sys
import tempfile
import time
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path

import msgspec
import pandas as pd
from nautilus_trader.persistence.catalog import ParquetDataCatalog
from nautilus_trader.persistence.wranglers import (
    OrderBookDeltaDataWrangler,
    QuoteTickDataWrangler,
    TradeTickDataWrangler,
)

from tapereader.ingest.context import LoadContext
from tapereader.ingest.instruments import default_registry
from tapereader.ingest.options import IngestOptions
from tapereader.ingest.pipeline import ingest

MARKET = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "market"
FXCM = MARKET / "lean_fxcm_eurusd_tick_201405"
FEED = MARKET / "hftbt_binance-usdm_btcusdt_20240808_rawfeed.gz"


def _ours(paths: list[Path]) -> Callable[[Path], int]:
    def run(catalog: Path) -> int:
        ctx = LoadContext(default_registry(), IngestOptions())
        report = ingest(paths, catalog, ctx, record_events=False)
        return sum(k.rows_read for f in report.files for k in f.kinds)

    return run


def _wrangler_fx(catalog: Path) -> int:
    instrument = default_registry().nautilus("EUR/USD.FXCM")
    wrangler = QuoteTickDataWrangler(instrument)
    cat = ParquetDataCatalog(str(catalog))
    rows = 0
    for path in sorted(FXCM.glob("*.zip")):
        day = pd.Timestamp(dt.datetime.strptime(path.name[:8], "%Y%m%d"), tz="UTC")
        with zipfile.ZipFile(path) as zf:
            df = pd.read_csv(
                zf.open(zf.namelist()[0]), header=None, names=["ms", "bid_price", "ask_price"]
            )
        df.index = day + pd.Timedelta(hours=5) + pd.to_timedelta(df.pop("ms"), unit="ms")
        ticks = wrangler.process(df, default_volume=1_000_000.0)
        cat.write_data(ticks)
        rows += len(ticks)
    return rows


def _wrangler_feed(catalog: Path) -> int:
    instrument = default_registry().nautilus("BTCUSDT-PERP.BINANCE")
    trades, quotes, deltas = [], [], []
    snapshot_id = None
    with gzip.open(FEED, "rb") as fh:
        for line in fh:
            msg = msgspec.json.decode(line.split(b" ", 1)[1])
            if "lastUpdateId" in msg:
                snapshot_id = msg["lastUpdateId"]
                ts = pd.Timestamp(msg["T"], unit="ms", tz="UTC")
                deltas.append((ts, "CLEAR", "NO_ORDER_SIDE", 0.0, 0.0, 0, 32, snapshot_id))
                for side, key in (("BUY", "bids"), ("SELL", "asks")):
                    for p, q in msg[key]:
                        deltas.append((ts, "ADD", side, float(p), float(q), 0, 32, snapshot_id))
                continue
            d = msg["data"]
            ts = pd.Timestamp(d["T"], unit="ms", tz="UTC")
            if d["e"] == "trade":
                trades.append(
                    (ts, float(d["p"]), float(d["q"]), "SELLER" if d["m"] else "BUYER", str(d["t"]))
                )
            elif d["e"] == "bookTicker":
                quotes.append((ts, float(d["b"]), float(d["a"]), float(d["B"]), float(d["A"])))
            elif snapshot_id is not None and d["u"] >= snapshot_id:
                for side, key in (("BUY", "b"), ("SELL", "a")):
                    for p, q in d[key]:
                        action = "DELETE" if float(q) == 0 else "UPDATE"
                        deltas.append((ts, action, side, float(p), float(q), 0, 0, d["u"]))
    cat = ParquetDataCatalog(str(catalog))
    t = pd.DataFrame(trades, columns=["ts", "price", "quantity", "side", "trade_id"])
    t = t.set_index("ts")
    cat.write_data(TradeTickDataWrangler(instrument).process(t))
    q = pd.DataFrame(quotes, columns=["ts", "bid_price", "ask_price", "bid_size", "ask_size"])
    cat.write_data(QuoteTickDataWrangler(instrument).process(q.set_index("ts")))
    b = pd.DataFrame(
        deltas, columns=["ts", "action", "side", "price", "size", "order_id", "flags", "sequence"]
    ).set_index("ts")
    cat.write_data(OrderBookDeltaDataWrangler(instrument).process(b))
    return len(trades) + len(quotes) + len(deltas)


def _measure(fn: Callable[[Path], int], runs: int) -> tuple[list[float], int]:
    rates, rows = [], 0
    for _ in range(runs):
        folder = Path(tempfile.mkdtemp(prefix="bench_ingest_"))
        try:
            start = time.perf_counter()
            rows = fn(folder / "catalog")
            rates.append(rows / (time.perf_counter() - start))
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    return rates, rows


def _line(name: str, rates: list[float], rows: int) -> str:
    return (
        f"  {name:<34} {rows:>9,} rows  median {statistics.median(rates):>9,.0f} rows/s  "
        f"min {min(rates):>9,.0f}  max {max(rates):>9,.0f}  (n={len(rates)})"
    )


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print rates and ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--baseline-runs", type=int, default=3)
    args = parser.parse_args(argv)
    # pandas 3 deprecation notices from inside Nautilus's wranglers: not ours to fix.
    warnings.filterwarnings("ignore", module="nautilus_trader")
    warnings.filterwarnings("ignore", message=".*inplace.*")
    if not MARKET.is_dir():
        print(f"market data not found at {MARKET}", file=sys.stderr)
        return 2
    cases = [
        ("FXCM EUR/USD quote ticks", _ours([FXCM]), _wrangler_fx),
        ("BTCUSDT raw feed (trades+quotes+book)", _ours([FEED]), _wrangler_feed),
    ]
    for title, ours, baseline in cases:
        mine, rows = _measure(ours, args.runs)
        theirs, base_rows = _measure(baseline, args.baseline_runs)
        print(title)
        print(_line("tapereader ingest", mine, rows))
        print(_line("Nautilus wranglers + write_data", theirs, base_rows))
        print(f"  ratio of medians: {statistics.median(mine) / statistics.median(theirs):.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
