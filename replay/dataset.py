"""Datasets for learning: catalog ticks -> feature kernel -> rows, windows and labels.

Features come from the one feature kernel (:func:`tapereader.core.features.batch.compute`),
fed with quotes and trades read from a Nautilus ``ParquetDataCatalog``'s Parquet files in
bulk (no Python object per tick). A row is the kernel's output after an accepted quote (one
period), once warmed up. The label of row ``i`` is the mid move from ``i`` to the row a
horizon later (``H`` rows, or the first row ``horizon_ns`` of exchange time later) against
a dead zone sized to costs: ``up`` when the move exceeds ``cost_multiplier * (spread_i +
2 * fee_rate)`` (a long bought at the ask and sold at the bid would have earned its fees),
``down`` when below minus that, otherwise ``flat``.
"""

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from tapereader.core.features import batch
from tapereader.core.features import kernel as k
from tapereader.core.features.spec import SPEC

DOWN, FLAT, UP = 0, 1, 2


@dataclass(frozen=True)
class LabelSpec:
    """How a row's label is defined; every field is recorded in the bundle."""

    horizon_events: int = 50
    horizon_ns: int = 0  # > 0: horizon in exchange time instead of rows
    fee_rate: float = 0.0  # per side, as a fraction of the price
    cost_multiplier: float = 1.0
    max_span_ns: int = 3_600 * 10**9  # labels spanning a longer gap (weekend) are dropped

    def definition(self) -> str:
        horizon = (
            f"{self.horizon_ns} ns" if self.horizon_ns > 0 else f"{self.horizon_events} quotes"
        )
        return (
            f"class of mid[t+H]/mid[t]-1 vs dead zone {self.cost_multiplier} x (spread_rel[t] + "
            f"2 x {self.fee_rate}); H = {horizon}; down/flat/up = 0/1/2; spans over "
            f"{self.max_span_ns} ns dropped"
        )


@dataclass(frozen=True)
class Dataset:
    """Consecutive feature rows of one instrument, their labels and the sample rows."""

    instrument_id: str
    rows: np.ndarray  # [M, F] float32, consecutive ready rows
    ts: np.ndarray  # [M] exchange time, ns
    mid: np.ndarray  # [M]
    labels: np.ndarray  # [M] int8, -1 where undefined
    t_end: np.ndarray  # [M] time of the row the label looks at
    samples: np.ndarray  # row positions usable for learning (full window, label defined)
    window: int
    label: LabelSpec
    params: dict[str, float | int | str]

    @property
    def feature_spec_hash(self) -> str:
        return SPEC.hash

    def windows(self, samples: np.ndarray) -> np.ndarray:
        """[n, T, F] windows ending at the given row positions."""
        offsets = np.arange(-self.window + 1, 1)
        return np.ascontiguousarray(self.rows[samples[:, None] + offsets[None, :]])


def _fixed(column: pa.ChunkedArray, precision: int) -> np.ndarray:
    """Nautilus fixed point to float64, correctly rounded (61591.8 stays 61591.8).

    The raw value is an integer scaled by 10**16; dividing it in floating point would round
    twice. Rescaling the decimal to the instrument's precision is exact (Arrow refuses a cast
    that would drop digits), and one division of the resulting integer rounds once.
    """
    arr = column.combine_chunks()
    dec = pa.Array.from_buffers(
        pa.decimal128(38, 16), len(arr), [None, arr.buffers()[1]], offset=arr.offset
    )
    scaled = dec.cast(pa.decimal128(38, precision))
    raw = np.frombuffer(scaled.buffers()[1], dtype=np.int64).reshape(-1, 2)
    raw = raw[scaled.offset : scaled.offset + len(scaled)]
    lo, hi = raw[:, 0], raw[:, 1]
    if np.any(hi != (lo >> 63)) or np.any(np.abs(lo) >= 2**53):
        raise ValueError("fixed-point values beyond 2**53 units cannot be read exactly")
    return lo.astype(np.float64) / 10.0**precision


def _read(
    catalog: Path, kind: str, instrument_id: str, columns: list[str]
) -> dict[str, np.ndarray] | None:
    folder = catalog / "data" / kind / instrument_id.replace("/", "")
    files = sorted(folder.glob("*.parquet"))
    if not files:
        return None
    out: dict[str, list[np.ndarray]] = {c: [] for c in columns}
    for f in files:
        table = pq.read_table(f, columns=columns)
        meta = table.schema.metadata or {}
        for c in columns:
            col = table.column(c)
            if str(col.type).startswith("fixed_size_binary"):
                key = b"size_precision" if "size" in c else b"price_precision"
                out[c].append(_fixed(col, int(meta[key])))
            else:
                out[c].append(col.to_numpy())
    return {c: np.concatenate(v) for c, v in out.items()}


def catalog_events(
    catalog: str | Path, instrument_id: str, start_ns: int = 0, end_ns: int = 0
) -> batch.EventArrays:
    """Quotes and trades of one instrument from a catalog, in the kernel's event layout.

    Order-book deltas are not replayed here (the depth feature then equals the top-of-book
    imbalance, as the kernel defines for instruments without a book).
    """
    path = Path(catalog)
    quotes = _read(
        path,
        "quote_tick",
        instrument_id,
        ["bid_price", "ask_price", "bid_size", "ask_size", "ts_event"],
    )
    if quotes is None:
        raise FileNotFoundError(f"{path}: no quotes for {instrument_id} in this catalog")
    parts = [
        batch.quote_events(
            quotes["ts_event"].astype(np.int64),
            quotes["bid_price"],
            quotes["ask_price"],
            quotes["bid_size"],
            quotes["ask_size"],
        )
    ]
    trades = _read(
        path, "trade_tick", instrument_id, ["price", "size", "aggressor_side", "ts_event"]
    )
    if trades is not None:
        side = np.select(
            [trades["aggressor_side"] == 1, trades["aggressor_side"] == 2], [1.0, -1.0], 0.0
        )
        parts.append(
            batch.trade_events(
                trades["ts_event"].astype(np.int64), trades["price"], trades["size"], side
            )
        )
    events = batch.merge(*parts)
    keep = (events.ts >= start_ns) & ((events.ts < end_ns) if end_ns else True)
    return batch.EventArrays(
        events.kind[keep], events.ts[keep], np.ascontiguousarray(events.values[keep])
    )


def label_rows(
    ts: np.ndarray, mid: np.ndarray, spread: np.ndarray, spec: LabelSpec
) -> tuple[np.ndarray, np.ndarray]:
    """Labels (int8, -1 undefined) and label end times of consecutive rows."""
    n = len(ts)
    if spec.horizon_ns > 0:
        j = np.searchsorted(ts, ts + spec.horizon_ns, side="left")
    else:
        j = np.arange(n) + spec.horizon_events
    defined = j < n
    j = np.minimum(j, n - 1)
    move = mid[j] / mid - 1.0
    dead = spec.cost_multiplier * (spread + 2.0 * spec.fee_rate)
    labels = np.where(move > dead, UP, np.where(move < -dead, DOWN, FLAT)).astype(np.int8)
    t_end = ts[j]
    defined &= (t_end - ts) <= spec.max_span_ns
    labels[~defined] = -1
    return labels, t_end


def build_dataset(
    catalog: str | Path,
    instrument_id: str,
    *,
    label: LabelSpec = LabelSpec(),
    window: int = 16,
    stride: int = 1,
    start_ns: int = 0,
    end_ns: int = 0,
) -> Dataset:
    """Features and labels for one instrument; ``stride`` keeps every n-th sample row."""
    events = catalog_events(catalog, instrument_id, start_ns, end_ns)
    frame = batch.compute(events)
    closes = events.kind != k.KIND_TRADE
    finite = np.isfinite(frame.features).all(axis=1)
    keep = frame.ready & closes & finite
    rows = frame.features[keep].astype(np.float32)
    ts = events.ts[keep]
    mid = (events.values[keep, 0] + events.values[keep, 1]) / 2.0
    spread = frame.column("spread_rel")[keep]
    labels, t_end = label_rows(ts, mid, spread, label)
    candidates = np.arange(window - 1, len(rows))
    samples = candidates[labels[candidates] >= 0][::stride]
    params: dict[str, float | int | str] = {
        "instrument_id": instrument_id,
        "window": window,
        "stride": stride,
        "start_ns": start_ns,
        "end_ns": end_ns,
        "events": len(events),
        "rows": len(rows),
        "rows_dropped_non_finite": int((frame.ready & closes & ~finite).sum()),
        "samples": len(samples),
        "feature_spec_hash": SPEC.hash,
        **{f"label_{key}": value for key, value in asdict(label).items()},
    }
    return Dataset(instrument_id, rows, ts, mid, labels, t_end, samples, window, label, params)
