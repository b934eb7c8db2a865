"""All-or-nothing writes into a Nautilus ``ParquetDataCatalog`` folder.

Files are first written to a staging folder beside the catalog (same filesystem, so the
final move is a rename). :meth:`CatalogWriter.commit` checks every staged file against the
catalog before moving any: a file already present under the same name (the same rows from
an earlier ingest of the same source) is skipped, an overlapping time range is an error.
If anything fails, files moved so far are removed again and the catalog is as before.
"""

import contextlib
import filecmp
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow.parquet as pq
from nautilus_trader.model.data import Bar, OrderBookDelta, QuoteTick, TradeTick
from nautilus_trader.model.instruments import Instrument
from nautilus_trader.persistence.catalog import ParquetDataCatalog
from nautilus_trader.persistence.catalog.parquet import (
    _parse_filename_timestamps,
    _timestamps_to_filename,
)
from nautilus_trader.persistence.funcs import class_to_filename, urisafe_identifier

from tapereader.ingest.nautilus_arrow import build_table
from tapereader.ingest.options import IngestOptions
from tapereader.ingest.report import IngestError, KindReport

_CLASSES = {"quotes": QuoteTick, "trades": TradeTick, "bars": Bar, "book_deltas": OrderBookDelta}


@dataclass
class _Pending:
    kind: str
    identifier: str
    instrument_id: str
    price_prec: int
    size_prec: int
    report: KindReport
    frames: list[pl.DataFrame] = field(default_factory=list)
    rows: int = 0


@dataclass
class _Staged:
    rel: Path
    rows: int
    report: KindReport | None
    interval: tuple[int, int]


def chunk_bounds(ts_init: np.ndarray, chunk_rows: int) -> list[tuple[int, int]]:
    """Row ranges of at most about ``chunk_rows`` that never split equal ``ts_init`` values.

    Catalog files must have disjoint closed time ranges, so rows sharing a ``ts_init``
    (for example all deltas of one book update) go into one file.
    """
    n = len(ts_init)
    bounds, start = [], 0
    while start < n:
        end = min(start + chunk_rows, n)
        if end < n:
            end = int(np.searchsorted(ts_init, ts_init[end - 1], side="right"))
        bounds.append((start, end))
        start = end
    return bounds


class CatalogWriter:
    """Stage catalog files, then commit them all or none; use as a context manager."""

    def __init__(self, catalog: str | Path, opts: IngestOptions) -> None:
        self.catalog = Path(catalog).resolve()
        self.opts = opts
        self.catalog.parent.mkdir(parents=True, exist_ok=True)
        self._staging = Path(
            tempfile.mkdtemp(prefix=f".{self.catalog.name}.staging-", dir=self.catalog.parent)
        )
        self._staged: list[_Staged] = []
        self._moved: list[Path] = []
        self._made_dirs: list[Path] = []
        self._pending: dict[tuple[str, str], _Pending] = {}
        self.notes: list[str] = []
        """Things the commit decided that the report should mention."""

    def __enter__(self) -> "CatalogWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Remove the staging folder (committed files have left it already)."""
        shutil.rmtree(self._staging, ignore_errors=True)

    def stage_frame(
        self,
        kind: str,
        df: pl.DataFrame,
        identifier: str,
        instrument_id: str,
        price_prec: int,
        size_prec: int,
        report: KindReport,
    ) -> None:
        """Queue one batch of a data type's rows (sorted by ``ts_init``, after any earlier
        batch); whole files of ``chunk_rows`` are written as soon as they are complete."""
        if not len(df):
            return
        key = (kind, identifier)
        if key not in self._pending:
            self._pending[key] = _Pending(
                kind, identifier, instrument_id, price_prec, size_prec, report
            )
        pending = self._pending[key]
        pending.frames.append(df)
        pending.rows += len(df)
        limit = self.opts.chunk_rows
        while pending.rows > limit:
            data = pl.concat(pending.frames)
            ts = data["ts_init"].cast(pl.UInt64).to_numpy()
            cut = int(np.searchsorted(ts, ts[limit - 1], side="right"))
            if cut >= len(data):  # one timestamp runs to the end: wait for more rows
                pending.frames = [data]
                break
            self._write(pending, data.slice(0, cut), ts[0], ts[cut - 1])
            pending.frames, pending.rows = [data.slice(cut)], len(data) - cut

    def flush(self) -> None:
        """Write every queued row (call when a source file is done)."""
        for pending in self._pending.values():
            if not pending.frames:
                continue
            data = pl.concat(pending.frames)
            ts = data["ts_init"].cast(pl.UInt64).to_numpy()
            for start, end in chunk_bounds(ts, self.opts.chunk_rows):
                self._write(pending, data.slice(start, end - start), ts[start], ts[end - 1])
        self._pending.clear()

    def _write(self, p: "_Pending", chunk: pl.DataFrame, first: int, last: int) -> None:
        folder = (
            Path("data") / class_to_filename(_CLASSES[p.kind]) / urisafe_identifier(p.identifier)
        )
        (self._staging / folder).mkdir(parents=True, exist_ok=True)
        interval = (int(first), int(last))
        rel = folder / _timestamps_to_filename(*interval)
        if (self._staging / rel).exists():
            raise IngestError(str(rel), "two staged files would share this name")
        table = build_table(p.kind, chunk, p.identifier, p.instrument_id, p.price_prec, p.size_prec)
        pq.write_table(table, self._staging / rel, row_group_size=self.opts.row_group_rows)
        self._staged.append(_Staged(rel, len(chunk), p.report, interval))

    def stage_instrument(self, instrument: Instrument) -> None:
        """Stage an instrument definition, written by Nautilus itself."""
        before = set(self._staging.rglob("*.parquet"))
        ParquetDataCatalog(str(self._staging)).write_data([instrument])
        for path in set(self._staging.rglob("*.parquet")) - before:
            rel = path.relative_to(self._staging)
            self._staged.append(_Staged(rel, 1, None, (0, 0)))

    def commit(self) -> list[str]:
        """Move every staged file into the catalog; return the paths written."""
        plan = self._plan()
        try:
            for item in plan:
                dest = self.catalog / item.rel
                self._mkdirs(dest.parent)
                os.replace(self._staging / item.rel, dest)
                self._moved.append(dest)
                if item.report is not None:
                    item.report.rows_written += item.rows
        except BaseException:
            self.rollback()
            raise
        return [str(p.relative_to(self.catalog)) for p in self._moved]

    def rollback(self) -> None:
        """Remove what :meth:`commit` moved in, and the folders it created."""
        for path in reversed(self._moved):
            path.unlink(missing_ok=True)
        for folder in reversed(self._made_dirs):
            with contextlib.suppress(OSError):  # not empty: something else wrote there
                folder.rmdir()
        self._moved.clear()
        self._made_dirs.clear()

    def _plan(self) -> list[_Staged]:
        plan: list[_Staged] = []
        by_dir: dict[Path, list[tuple[int, int, str]]] = {}
        for item in self._staged:
            dest = self.catalog / item.rel
            if dest.exists():
                same = filecmp.cmp(self._staging / item.rel, dest, shallow=False)
                if item.report is None:  # an instrument definition
                    if not same:
                        self.notes.append(
                            f"{item.rel.parent.name}: the catalog's instrument definition "
                            "differs from the one used here; the catalog's was kept"
                        )
                    continue
                if not same:
                    raise IngestError(
                        str(dest),
                        "already in the catalog with different content (the same time range "
                        "ingested from another source or with other options); remove it first",
                    )
                item.report.rows_already_in_catalog += item.rows
                continue
            folder = dest.parent
            if folder not in by_dir:
                by_dir[folder] = [
                    (*iv, p.name)
                    for p in (folder.glob("*.parquet") if folder.is_dir() else [])
                    if (iv := _parse_filename_timestamps(p.name))
                ]
            lo, hi = item.interval
            for a, b, name in by_dir[folder]:
                if lo <= b and a <= hi:
                    raise IngestError(
                        str(item.rel),
                        f"time range overlaps catalog file {name} in {folder}; "
                        "the catalog keeps disjoint files per instrument and data type",
                    )
            by_dir[folder].append((lo, hi, item.rel.name))
            plan.append(item)
        return plan

    def _mkdirs(self, folder: Path) -> None:
        missing = []
        while not folder.exists():
            missing.append(folder)
            folder = folder.parent
        for path in reversed(missing):
            path.mkdir()
            self._made_dirs.append(path)
