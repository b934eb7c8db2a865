"""What an ingest found and did: per-file, per-data-type counts and quality findings."""

import msgspec


class IngestError(Exception):
    """A source cannot be ingested; the message names the file, line (when known) and problem."""

    def __init__(self, path: str, problem: str, line: int | None = None) -> None:
        self.path = path
        self.line = line
        self.problem = problem
        where = f"{path}: line {line}" if line is not None else path
        super().__init__(f"{where}: {problem}")


class Gap(msgspec.Struct, frozen=True):
    """A stretch with no rows longer than the gap threshold (``ts_event`` ns)."""

    after_ns: int
    before_ns: int


class ChainBreak(msgspec.Struct, frozen=True):
    """A depth diff whose ``pu`` is not the previous diff's ``u``."""

    line: int
    expected_pu: int
    found_pu: int


class KindReport(msgspec.Struct, kw_only=True):
    """Counts and findings for one data type of one instrument (or bar type).

    ``rows_read`` = ``rows_written`` + ``rows_already_in_catalog`` + rejected rows.
    """

    kind: str
    identifier: str
    rows_read: int = 0
    rows_written: int = 0
    rows_already_in_catalog: int = 0
    rows_rejected: dict[str, int] = {}
    start_ns: int | None = None
    end_ns: int | None = None
    rounded: int = 0
    crossed: int = 0
    locked: int = 0
    non_monotonic_ts_event: int = 0
    non_monotonic_ts_init: int = 0
    duplicates: int = 0
    gaps: int = 0
    longest_gap_ns: int = 0
    gap_examples: list[Gap] = []


class BookReport(msgspec.Struct, kw_only=True):
    """Whether an L2 book could be rebuilt from a depth snapshot and diffs."""

    rebuilt: bool
    reason: str = ""
    snapshot_line: int | None = None
    snapshot_update_id: int | None = None
    diffs_total: int = 0
    diffs_applied: int = 0
    diffs_before_snapshot: int = 0
    diffs_after_break: int = 0
    later_snapshots: int = 0
    chain_breaks: list[ChainBreak] = []


class FileReport(msgspec.Struct, kw_only=True):
    """One source file's ingest."""

    path: str
    data_format: str
    sha256: str
    instrument_ids: list[str] = []
    kinds: list[KindReport] = []
    book: BookReport | None = None
    notes: list[str] = []

    def rows(self, field: str) -> dict[str, int]:
        """Sum of a ``KindReport`` count field per data type, e.g. ``rows("rows_read")``."""
        out: dict[str, int] = {}
        for k in self.kinds:
            out[k.kind] = out.get(k.kind, 0) + getattr(k, field)
        return out

    def rejected(self) -> dict[str, int]:
        """Rejected rows per ``<data type>.<reason>``."""
        out: dict[str, int] = {}
        for k in self.kinds:
            for reason, n in k.rows_rejected.items():
                key = f"{k.kind}.{reason}"
                out[key] = out.get(key, 0) + n
        return out

    def span(self) -> tuple[int | None, int | None]:
        """Earliest and latest ``ts_event`` over every data type."""
        starts = [k.start_ns for k in self.kinds if k.start_ns is not None]
        ends = [k.end_ns for k in self.kinds if k.end_ns is not None]
        return (min(starts) if starts else None, max(ends) if ends else None)


class IngestReport(msgspec.Struct, kw_only=True):
    """The outcome of one ingest run over one or more files (all committed, or none)."""

    catalog: str
    ok: bool
    files: list[FileReport] = []
    notes: list[str] = []
    seconds: float = 0.0
    event_store: str | None = None
