"""Small, direct parsers of the real market files into the kernel's event arrays.

The feature tests read the files themselves (rather than through ingest) so that they
test the kernel against the raw data and nothing in between.
"""

import datetime as dt
import gzip
import heapq
import io
import json
import zipfile
from pathlib import Path

import numpy as np
import polars as pl

from tapereader.core.features import kernel as k
from tapereader.core.features.batch import EventArrays, quote_events

_DAY_NS = 86_400 * 10**9


def lean_quotes(folder: Path, utc_offset_hours: int) -> pl.DataFrame:
    """Lean daily tick zips (``ms_since_midnight,bid,ask``) as ts (UTC ns), bid, ask."""
    frames = []
    for path in sorted(folder.glob("*_quote.zip")):
        day = dt.datetime.strptime(path.name[:8], "%Y%m%d").replace(tzinfo=dt.UTC)
        midnight_ns = int(day.timestamp()) * 10**9 - utc_offset_hours * 3_600 * 10**9
        with zipfile.ZipFile(path) as archive:
            raw = archive.read(archive.namelist()[0])
        frame = pl.read_csv(
            io.BytesIO(raw),
            has_header=False,
            new_columns=["ms", "bid", "ask"],
            schema_overrides={"ms": pl.Int64, "bid": pl.Float64, "ask": pl.Float64},
        )
        assert frame["ms"].max() < _DAY_NS // 10**6
        frames.append(frame.select((pl.col("ms") * 10**6 + midnight_ns).alias("ts"), "bid", "ask"))
    return pl.concat(frames)


def lean_events(frame: pl.DataFrame) -> EventArrays:
    """Lean quotes carry no sizes: both sides 0, so the imbalances are 0 by definition."""
    zeros = np.zeros(frame.height)
    return quote_events(frame["ts"], frame["bid"], frame["ask"], zeros, zeros)


class _Book:
    """An L2 book rebuilt from a REST snapshot and chained depth diffs."""

    def __init__(self, snapshot: dict) -> None:
        self.bids = {float(p): float(q) for p, q in snapshot["bids"]}
        self.asks = {float(p): float(q) for p, q in snapshot["asks"]}

    def apply(self, side: dict[float, float], levels: list[list[str]]) -> None:
        for price, qty in levels:
            if float(qty) == 0.0:
                side.pop(float(price), None)
            else:
                side[float(price)] = float(qty)

    def top(self) -> tuple[float, float, float, float, float, float]:
        bids = heapq.nlargest(k.DEPTH_LEVELS, self.bids)
        asks = heapq.nsmallest(k.DEPTH_LEVELS, self.asks)
        return (
            bids[0],
            asks[0],
            self.bids[bids[0]],
            self.asks[asks[0]],
            sum(self.bids[p] for p in bids),
            sum(self.asks[p] for p in asks),
        )


def binance_events(path: Path) -> EventArrays:
    """A Binance USD-M raw feed as trades, quotes (bookTicker) and book tops (depth diffs).

    Times are the exchange's ``E`` in ns; events are stably sorted by it, so equal times
    keep the order the collector received them in.
    """
    rows: list[tuple[int, int, tuple[float, ...]]] = []
    diffs: list[tuple[int, dict]] = []
    snapshot = None
    with gzip.open(path, "rt") as lines:
        for line in lines:
            msg = json.loads(line.split(" ", 1)[1])
            if "lastUpdateId" in msg:
                snapshot = msg
                continue
            data = msg["data"]
            ts = data["E"] * 10**6
            stream = msg["stream"]
            if stream.endswith("@trade"):
                side = -1.0 if data["m"] else 1.0  # buyer is maker: the aggressor sold
                rows.append((k.KIND_TRADE, ts, (float(data["p"]), float(data["q"]), side)))
            elif stream.endswith("@bookTicker"):
                top = (float(data["b"]), float(data["a"]), float(data["B"]), float(data["A"]))
                rows.append((k.KIND_QUOTE, ts, top))
            elif "@depth" in stream:
                rows.append((k.KIND_BOOK, ts, ()))
                diffs.append((len(rows) - 1, data))
    assert snapshot is not None, f"{path.name}: no depth snapshot"
    book = _Book(snapshot)
    last_u = None
    for row, data in diffs:
        if last_u is None and not (data["U"] <= snapshot["lastUpdateId"] <= data["u"]):
            continue  # before the snapshot, or no diff yet bridges it
        assert last_u is None or data["pu"] == last_u, "depth diff chain broken"
        book.apply(book.bids, data["b"])
        book.apply(book.asks, data["a"])
        last_u = data["u"]
        rows[row] = (k.KIND_BOOK, rows[row][1], book.top())
    rows = [r for r in rows if r[2]]  # diffs the book could not use yet
    kind = np.array([r[0] for r in rows], dtype=np.int8)
    ts = np.array([r[1] for r in rows], dtype=np.int64)
    values = np.zeros((len(rows), 6))
    for i, (_, _, v) in enumerate(rows):
        values[i, : len(v)] = v
    order = np.argsort(ts, kind="stable")
    return EventArrays(kind[order], ts[order], np.ascontiguousarray(values[order]))


def tardis_events(quotes_csv: Path, trades_csv: Path) -> EventArrays:
    """Tardis Binance-futures quotes and trades (``timestamp`` in us), merged by time."""
    q = pl.read_csv(quotes_csv)
    t = pl.read_csv(trades_csv)
    kind = np.concatenate([np.full(q.height, k.KIND_QUOTE), np.full(t.height, k.KIND_TRADE)])
    ts = np.concatenate([q["timestamp"].to_numpy(), t["timestamp"].to_numpy()]) * 1_000
    values = np.zeros((q.height + t.height, 6))
    for j, col in enumerate(["bid_price", "ask_price", "bid_amount", "ask_amount"]):
        values[: q.height, j] = q[col].to_numpy()
    values[q.height :, 0] = t["price"].to_numpy()
    values[q.height :, 1] = t["amount"].to_numpy()
    values[q.height :, 2] = np.where(t["side"].to_numpy() == "buy", 1.0, -1.0)
    order = np.argsort(ts, kind="stable")
    return EventArrays(
        kind[order].astype(np.int8), ts[order].astype(np.int64), values[order].copy()
    )
