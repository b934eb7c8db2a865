"""``tapereader ingest``: load market data files into a Nautilus catalog, all or nothing."""

import argparse
import sys
from pathlib import Path

import msgspec

from tapereader.ingest.context import LoadContext
from tapereader.ingest.detect import LOADERS
from tapereader.ingest.generic import ColumnMapping
from tapereader.ingest.instruments import default_registry
from tapereader.ingest.options import IngestOptions
from tapereader.ingest.pipeline import DEFAULT_EVENTS_NAME, ingest
from tapereader.ingest.report import IngestError, IngestReport


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``ingest`` subcommand."""
    p = subparsers.add_parser(
        "ingest",
        help="load tick/bar files into a Nautilus ParquetDataCatalog",
        description=(
            "Load market data files (or folders of them) into a Nautilus ParquetDataCatalog. "
            "Every file is validated first; if any fails, nothing is written. Each ingested "
            "file is recorded as a DataIngested event "
            f"(default store: CATALOG/{DEFAULT_EVENTS_NAME})."
        ),
    )
    p.add_argument("paths", nargs="+", metavar="PATH", help="files or folders to ingest")
    p.add_argument("--catalog", required=True, type=Path, help="catalog folder (created if absent)")
    p.add_argument(
        "--format",
        dest="data_format",
        choices=sorted(LOADERS),
        help="source format (default: detected from name and first line)",
    )
    p.add_argument(
        "--instruments",
        action="append",
        default=[],
        metavar="TOML",
        help="extra instrument declarations ([[instrument]] tables); repeatable",
    )
    p.add_argument("--venue", help="venue when the path does not tell (Lean, Tardis)")
    p.add_argument(
        "--instrument",
        dest="instrument_id",
        metavar="ID",
        help="instrument id for files that do not name one (bar CSVs)",
    )
    p.add_argument(
        "--mapping", type=Path, metavar="TOML", help="column mapping for --format generic"
    )
    p.add_argument("--bar-step", metavar="STEP", help="bar length such as 1-MINUTE (bar CSVs)")
    p.add_argument(
        "--crossed",
        choices=["drop", "keep"],
        default="drop",
        help="quotes with bid > ask: drop (count as rejected) or keep and flag",
    )
    p.add_argument(
        "--excess-precision",
        choices=["error", "reject", "round"],
        default="error",
        help="values with more decimals than the instrument allows",
    )
    p.add_argument(
        "--batch-mb",
        type=float,
        default=8.0,
        metavar="MB",
        help="read large files this many MB of text at a time (bounds memory)",
    )
    p.add_argument(
        "--gap-threshold",
        type=float,
        default=300.0,
        metavar="SECONDS",
        help="report tick gaps longer than this (bars: any missing bar)",
    )
    p.add_argument(
        "--chunk-rows", type=int, default=1_000_000, metavar="N", help="rows per catalog file"
    )
    p.add_argument(
        "--events",
        metavar="PATH_OR_URL",
        help=f"event store (default: CATALOG/{DEFAULT_EVENTS_NAME})",
    )
    p.add_argument("--no-events", action="store_true", help="do not record DataIngested events")
    p.add_argument("--report-json", type=Path, metavar="FILE", help="write the full report as JSON")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Run an ingest from parsed arguments; returns the exit status."""
    try:
        registry = default_registry(args.instruments)
        mapping = ColumnMapping.from_toml(args.mapping) if args.mapping else None
        options = IngestOptions(
            crossed=args.crossed,
            excess_precision=args.excess_precision,
            gap_threshold_s=args.gap_threshold,
            chunk_rows=args.chunk_rows,
            batch_bytes=max(1, int(args.batch_mb * 2**20)),
            progress=not args.no_progress and sys.stderr.isatty(),
        )
    except ValueError as exc:
        print(f"tapereader ingest: {exc}", file=sys.stderr)
        return 2
    extra: dict[str, object] = {}
    if mapping:
        extra["mapping"] = mapping
    if args.bar_step:
        extra["bar_step"] = args.bar_step
    ctx = LoadContext(
        registry, options, venue=args.venue, instrument_id=args.instrument_id, extra=extra
    )
    try:
        report = ingest(
            args.paths,
            args.catalog,
            ctx,
            data_format=args.data_format or ("generic" if mapping else None),
            events=args.events,
            record_events=not args.no_events,
        )
    except IngestError as exc:
        print(f"tapereader ingest: failed: {exc}", file=sys.stderr)
        print(f"tapereader ingest: nothing was written to {args.catalog}", file=sys.stderr)
        return 1
    print(summary_table(report))
    if args.report_json:
        args.report_json.write_bytes(msgspec.json.format(msgspec.json.encode(report)))
    return 0


def summary_table(report: IngestReport) -> str:
    """A plain-text table: one row per file and data type."""
    head = (
        "file",
        "format",
        "type",
        "identifier",
        "read",
        "written",
        "present",
        "rejected",
        "crossed",
        "locked",
        "gaps",
    )
    rows = [head]
    for f in report.files:
        for k in f.kinds:
            rejected = ", ".join(f"{r}={n}" for r, n in sorted(k.rows_rejected.items())) or "0"
            rows.append(
                (
                    Path(f.path).name,
                    f.data_format,
                    k.kind,
                    k.identifier,
                    f"{k.rows_read:,}",
                    f"{k.rows_written:,}",
                    f"{k.rows_already_in_catalog:,}",
                    rejected,
                    f"{k.crossed:,}",
                    f"{k.locked:,}",
                    f"{k.gaps:,}",
                )
            )
        if f.book is not None and f.book.reason:
            rows.append((Path(f.path).name, "", "book", "", "", "", "", f.book.reason, "", "", ""))
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    notes = dict.fromkeys([n for f in report.files for n in f.notes] + report.notes)
    lines.extend(f"note: {n}" for n in notes)
    total_w = sum(k.rows_written for f in report.files for k in f.kinds)
    lines.append(
        f"{len(report.files)} file(s), {total_w:,} rows written to {report.catalog} "
        f"in {report.seconds:.2f} s"
        + (f"; events in {report.event_store}" if report.event_store else "")
    )
    return "\n".join(lines)
