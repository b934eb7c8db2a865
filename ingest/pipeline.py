"""One ingest run: load every file, validate, stage, then commit all and record events.

Nothing reaches the catalog unless every file loaded and validated; the ``DataIngested``
events are appended after the commit, and a failed append removes the committed files,
so the catalog and the event store agree.
"""

import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

from tqdm import tqdm

from tapereader.core.events import DataIngested, Source
from tapereader.core.store import EventStore
from tapereader.ingest.catalog_writer import CatalogWriter
from tapereader.ingest.checks import FrameState, check_frame
from tapereader.ingest.context import LoadContext
from tapereader.ingest.detect import LOADERS, detect_format
from tapereader.ingest.readers import sha256_file
from tapereader.ingest.report import FileReport, IngestError, IngestReport, KindReport

DEFAULT_EVENTS_NAME = "events.db"


def expand_paths(paths: Sequence[str | Path]) -> list[Path]:
    """Files named, and the non-hidden files directly inside named folders, sorted."""
    out: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            out.extend(
                sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
            )
        elif path.is_file():
            out.append(path)
        else:
            raise IngestError(str(path), "no such file or folder")
    return out


def ingest(
    paths: Sequence[str | Path],
    catalog: str | Path,
    ctx: LoadContext,
    *,
    data_format: str | None = None,
    events: str | Path | None = None,
    record_events: bool = True,
    on_file: Callable[[FileReport], None] | None = None,
) -> IngestReport:
    """Ingest ``paths`` into ``catalog``, all or nothing; raises :class:`IngestError`.

    ``events`` is the event store (path or URL); by default ``<catalog>/events.db``.
    ``record_events=False`` skips the event (benchmarks only).
    """
    started = time.perf_counter()
    catalog = Path(catalog)
    files = expand_paths(paths)
    if not files:
        raise IngestError(" ".join(map(str, paths)), "no files to ingest")
    report = IngestReport(catalog=str(catalog), ok=False)
    with CatalogWriter(catalog, ctx.options) as writer:
        staged_instruments: set[str] = set()
        rows_bar = tqdm(desc="ingest", unit="rows", disable=not ctx.options.progress)
        for path in files:
            fmt = data_format or detect_format(path)
            if fmt not in LOADERS:
                raise IngestError(str(path), f"unknown format {fmt!r}; known: {sorted(LOADERS)}")
            rows_bar.set_postfix_str(path.name)
            file_report = FileReport(path=str(path), data_format=fmt, sha256=sha256_file(path))
            states: dict[tuple[str, str], FrameState] = {}
            for loaded in LOADERS[fmt](path, ctx):
                file_report.data_format = loaded.data_format
                file_report.book = loaded.book or file_report.book
                file_report.notes.extend(n for n in loaded.notes if n not in file_report.notes)
                for frame in loaded.frames:
                    spec = ctx.registry.get(frame.instrument_id)
                    if spec is None:
                        raise IngestError(
                            frame.source, f"unknown instrument {frame.instrument_id!r}"
                        )
                    key = (frame.kind, frame.identifier)
                    if key not in states:
                        states[key] = FrameState(
                            KindReport(kind=frame.kind, identifier=frame.identifier)
                        )
                        file_report.kinds.append(states[key].report)
                    df = check_frame(frame, spec, ctx.options, states[key])
                    writer.stage_frame(
                        frame.kind,
                        df,
                        frame.identifier,
                        spec.id,
                        spec.price_precision,
                        spec.size_precision,
                        states[key].report,
                    )
                    rows_bar.update(len(frame.df))
                    if spec.id not in file_report.instrument_ids:
                        file_report.instrument_ids.append(spec.id)
                    if spec.id not in staged_instruments:
                        writer.stage_instrument(ctx.registry.nautilus(spec.id))
                        staged_instruments.add(spec.id)
            writer.flush()
            report.files.append(file_report)
            if on_file:
                on_file(file_report)
        rows_bar.close()
        writer.commit()
        report.notes.extend(writer.notes)
        if record_events:
            store_path = events or catalog / DEFAULT_EVENTS_NAME
            try:
                _record(store_path, report)
            except Exception as exc:
                writer.rollback()
                raise IngestError(
                    str(store_path),
                    f"cannot record the ingest events ({exc}); catalog changes rolled back",
                ) from exc
            report.event_store = str(store_path)
    report.ok = True
    report.seconds = time.perf_counter() - started
    return report


def _record(store_path: str | Path, report: IngestReport) -> None:
    run_id = str(uuid.uuid4())
    now = time.time_ns()
    events = []
    for f in report.files:
        start, end = f.span()
        events.append(
            DataIngested(
                ts_event=now,
                ts_init=now,
                source=Source(component="ingest", run_id=run_id),
                path=f.path,
                data_format=f.data_format,
                sha256=f.sha256,
                instrument_ids=f.instrument_ids,
                rows_read=f.rows("rows_read"),
                rows_written=f.rows("rows_written"),
                rows_rejected=f.rejected(),
                start_ns=start,
                end_ns=end,
            )
        )
    store = EventStore.open(store_path)
    try:
        store.append(events)
    finally:
        store.close()
