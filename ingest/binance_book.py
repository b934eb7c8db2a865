"""The L2 book of a Binance USD-M feed: REST depth snapshot plus ``depthUpdate`` diffs.

Binance's rule for a local book: drop diffs with ``u`` < the snapshot's ``lastUpdateId``;
the first diff applied must have ``U`` <= ``lastUpdateId`` <= ``u``; every later diff's
``pu`` must equal the previous diff's ``u``. A break means updates were lost: the book is
written up to the break and the rest of the diffs are rejected (``after_chain_break``),
never stitched together. Diffs received before the snapshot but applied after it get the
snapshot's receive time as ``ts_init`` (that is when a live client could apply them).
"""

import numpy as np
import polars as pl

from tapereader.ingest.frames import LoadedFrame
from tapereader.ingest.report import BookReport, ChainBreak, IngestError

# Nautilus enums and record flags (model/enums, RecordFlag).
ADD, UPDATE, DELETE, CLEAR = 1, 2, 3, 4
BUY, SELL, NO_SIDE = 1, 2, 0
F_LAST, F_SNAPSHOT = 128, 32
_MS = 1_000_000


class BookBuilder:
    """Turns depth snapshot and diff messages, batch after batch, into book delta rows.

    Diffs seen before the snapshot are buffered (at most ``max_buffered`` messages; older
    ones are dropped and counted as before the snapshot) because the diff that bridges the
    snapshot may arrive before it.
    """

    def __init__(self, source: str, max_buffered: int = 100_000) -> None:
        self.source = source
        self.report = BookReport(rebuilt=False)
        self._max_buffered = max_buffered
        self._instrument_id: str | None = None
        self._snapshot: dict | None = None
        self._buffer: list[pl.DataFrame] = []
        self._buffered = 0
        self._dropped_levels = 0
        self._last_u: int | None = None
        self._broken = False
        # Index in the current batch of the first break; 0 once a break is behind us.
        self._break_at: int | None = None
        self._seen_diffs = False

    def feed(self, books: dict[str, pl.DataFrame], snaps: pl.DataFrame) -> LoadedFrame | None:
        """Take one batch's diffs (per instrument) and snapshots; return rows to write."""
        diffs = self._one_symbol(books)
        if diffs is not None:
            self.report.diffs_total += len(diffs)
        if self._snapshot is not None and len(snaps):
            self.report.later_snapshots += len(snaps)
        if self._snapshot is None and len(snaps):
            snap = snaps.row(0, named=True)
            self.report.later_snapshots += len(snaps) - 1
            self._snapshot = snap
            self.report.snapshot_line = int(snap["line"])
            self.report.snapshot_update_id = int(snap["lastUpdateId"])
            self.report.rebuilt = True
            pending = [*self._buffer, diffs] if diffs is not None else self._buffer
            self._buffer, self._buffered = [], 0
            rows, rejected = self._apply(pl.concat(pending) if pending else None)
            rejected["before_snapshot"] = rejected.get("before_snapshot", 0) + (
                self._dropped_levels
            )
            return self._frame([_snapshot_rows(snap), *rows], rejected)
        if diffs is None:
            return None
        if self._snapshot is None:
            self._hold(diffs)
            return None
        rows, rejected = self._apply(diffs)
        return self._frame(rows, rejected)

    def finish(self) -> BookReport | None:
        """The book's report once every batch was fed (None when the feed had no depth)."""
        r = self.report
        if self._snapshot is None:
            if not self._seen_diffs:
                return None
            r.reason = (
                "no depth snapshot in the feed: the L2 book cannot be rebuilt; "
                f"{r.diffs_total} depth diffs not written"
            )
        elif not self._seen_diffs:
            r.reason = "depth snapshot without any diffs"
        elif r.chain_breaks:
            r.reason = (
                f"update-id chain broken at line {r.chain_breaks[0].line}: book written up to "
                f"the break, {r.diffs_after_break} later diffs rejected"
            )
        return r

    def _one_symbol(self, books: dict[str, pl.DataFrame]) -> pl.DataFrame | None:
        for instrument_id in books:
            if self._instrument_id not in (None, instrument_id):
                raise IngestError(
                    self.source,
                    f"depth diffs for several symbols ({self._instrument_id}, {instrument_id}): "
                    "not supported",
                )
            self._instrument_id = instrument_id
        if not books:
            return None
        self._seen_diffs = True
        return next(iter(books.values()))

    def _hold(self, diffs: pl.DataFrame) -> None:
        self._buffer.append(diffs)
        self._buffered += len(diffs)
        while self._buffered > self._max_buffered and len(self._buffer) > 1:
            old = self._buffer.pop(0)
            self._buffered -= len(old)
            self._dropped_levels += _level_count(old)
            self.report.diffs_before_snapshot += len(old)

    def _apply(self, diffs: pl.DataFrame | None) -> tuple[list[pl.DataFrame], dict[str, int]]:
        if diffs is None or not len(diffs):
            return [], {}
        r, rejected = self.report, {}
        u, pu = diffs["u"].to_numpy(), diffs["pu"].to_numpy()
        start, prev_u = 0, self._last_u
        if prev_u is None:  # the first diffs after the snapshot
            last_id = int(self._snapshot["lastUpdateId"])
            start = int(np.argmax(u >= last_id)) if (u >= last_id).any() else len(diffs)
            r.diffs_before_snapshot += start
            rejected["before_snapshot"] = _level_count(diffs.slice(0, start))
            if start == len(diffs):
                return [], rejected
            if int(diffs["U"][start]) > last_id:
                self._break(diffs, start, last_id)
        # Every diff's pu must be the previous diff's u (checked on past a break as well,
        # so every break is reported).
        if prev_u is None:
            expected, found, first = u[start:-1], pu[start + 1 :], start + 1
        else:
            expected, found, first = np.concatenate([[prev_u], u[:-1]]), pu, 0
        for i in (np.nonzero(found != expected)[0] + first).tolist():
            self._break(diffs, i, int(u[i - 1]) if i > 0 else int(prev_u))
        self._last_u = int(u[-1])
        end = len(diffs) if self._break_at is None else max(start, self._break_at)
        self._break_at = 0  # from now on everything is after the break
        if not self._broken:
            self._break_at = None
        r.diffs_applied += end - start
        r.diffs_after_break += len(diffs) - end
        rejected["after_chain_break"] = _level_count(diffs.slice(end))
        if end == start:
            return [], rejected
        return [_diff_rows(diffs.slice(start, end - start), self._snapshot)], rejected

    def _break(self, diffs: pl.DataFrame, i: int, expected: int) -> None:
        self.report.chain_breaks.append(
            ChainBreak(
                line=int(diffs["line"][i]), expected_pu=expected, found_pu=int(diffs["pu"][i])
            )
        )
        if not self._broken:
            self._broken, self._break_at = True, i

    def _frame(self, rows: list[pl.DataFrame], rejected: dict[str, int]) -> LoadedFrame | None:
        rejected = {k: v for k, v in rejected.items() if v}
        if not rows and not rejected:
            return None
        df = pl.concat(rows) if rows else _snapshot_rows(self._snapshot).clear()
        return LoadedFrame("book_deltas", self._instrument_id, df, self.source, rejected=rejected)


def _level_count(diffs: pl.DataFrame) -> int:
    if not len(diffs):
        return 0
    return int(diffs.select(pl.col("b").list.len().sum() + pl.col("a").list.len().sum()).item())


def _levels(df: pl.DataFrame, col: str, side: int) -> pl.DataFrame:
    return (
        df.select("msg", col)
        .explode(col)
        .drop_nulls(col)
        .select(
            "msg",
            pl.lit(side, pl.UInt8).alias("side"),
            pl.col(col).list.get(0, null_on_oob=True).alias("price"),
            pl.col(col).list.get(1, null_on_oob=True).alias("size"),
        )
    )


def _snapshot_rows(snap: dict) -> pl.DataFrame:
    one = pl.DataFrame(
        {"msg": [0], "bids": [snap["bids"] or []], "asks": [snap["asks"] or []]},
        schema={
            "msg": pl.Int64,
            "bids": pl.List(pl.List(pl.String)),
            "asks": pl.List(pl.List(pl.String)),
        },
    )
    levels = pl.concat([_levels(one, "bids", BUY), _levels(one, "asks", SELL)])
    clear = pl.DataFrame(
        {"msg": [0], "side": [NO_SIDE], "price": ["0"], "size": ["0"]},
        schema={"msg": pl.Int64, "side": pl.UInt8, "price": pl.String, "size": pl.String},
    )
    n = len(levels) + 1
    ts_event = int(snap["T"] or snap["E"]) * _MS
    return pl.concat([clear, levels]).select(
        pl.lit(int(snap["line"]), pl.UInt32).alias("line"),
        pl.lit(ts_event, pl.Int64).alias("ts_event"),
        pl.lit(int(snap["recv"]), pl.Int64).alias("ts_init"),
        pl.Series("action", [CLEAR] + [ADD] * (n - 1), pl.UInt8),
        "side",
        "price",
        "size",
        pl.lit(0, pl.UInt64).alias("order_id"),
        pl.Series("flags", [F_SNAPSHOT] * (n - 1) + [F_SNAPSHOT | F_LAST], pl.UInt8),
        pl.lit(int(snap["lastUpdateId"]), pl.UInt64).alias("sequence"),
    )


def _diff_rows(diffs: pl.DataFrame, snap: dict) -> pl.DataFrame:
    diffs = diffs.with_row_index("msg")
    meta = diffs.select(
        "msg",
        "line",
        (pl.col("T") * _MS).alias("ts_event"),
        pl.max_horizontal(pl.col("recv"), pl.lit(int(snap["recv"]))).alias("ts_init"),
        pl.col("u").cast(pl.UInt64).alias("sequence"),
    )
    levels = pl.concat([_levels(diffs, "b", BUY), _levels(diffs, "a", SELL)])
    levels = levels.sort("msg", maintain_order=True).join(
        meta, on="msg", how="left", maintain_order="left"
    )
    is_zero = pl.col("size").cast(pl.Float64, strict=False) == 0
    last = pl.col("msg").is_last_distinct()
    return levels.select(
        pl.col("line").cast(pl.UInt32),
        "ts_event",
        "ts_init",
        pl.when(is_zero).then(DELETE).otherwise(UPDATE).cast(pl.UInt8).alias("action"),
        "side",
        "price",
        "size",
        pl.lit(0, pl.UInt64).alias("order_id"),
        pl.when(last).then(F_LAST).otherwise(0).cast(pl.UInt8).alias("flags"),
        "sequence",
    )
