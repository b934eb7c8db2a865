"""An analysis as domain events, in the order they happened, with checksums for replay.

Every event of one analysis shares a ``correlation_id`` (the submission's ``event_id``) and
is caused by the submission, so a reader can regroup them. Values are source text with
secrets already redacted by the analysis; nothing here sees a secret's value.
"""

import hashlib
import time
import uuid

from tapereader.core.events import (
    DomainEvent,
    ScannerBoundariesDetected,
    ScannerBoundary,
    ScannerContaminationFound,
    ScannerFileRejected,
    ScannerFileSubmitted,
    ScannerGenerated,
    ScannerIsolationProven,
    ScannerParametersIsolated,
    ScannerSecurityFinding,
    Source,
)
from tapereader.core.scanning.analysis import Analysis
from tapereader.core.scanning.parse import ScannerInputError
from tapereader.core.scanning.proof import ProofResult


def submitted_event(
    analysis: Analysis, source: Source, ts_ns: int | None = None
) -> ScannerFileSubmitted:
    """The event that opens an analysis."""
    r = analysis.report
    ts = ts_ns if ts_ns is not None else time.time_ns()
    return ScannerFileSubmitted(
        ts_event=ts,
        ts_init=ts,
        source=source,
        file_sha256=r.sha256,
        path=r.path,
        size_bytes=r.size_bytes,
        line_count=r.line_count,
    )


def analysis_events(
    analysis: Analysis,
    source: Source,
    *,
    outputs: dict[str, str] | None = None,
    ts_ns: int | None = None,
    submitted: ScannerFileSubmitted | None = None,
    proofs: list[ProofResult] | None = None,
) -> list[DomainEvent]:
    """All events of one analysis; ``outputs`` maps scanner name to the written path."""
    r = analysis.report
    ts = ts_ns if ts_ns is not None else time.time_ns()
    first = submitted or submitted_event(analysis, source, ts)
    cause: uuid.UUID = first.event_id
    env = {
        "ts_event": ts,
        "ts_init": ts,
        "source": source,
        "file_sha256": r.sha256,
        "causation_id": cause,
        "correlation_id": cause,
    }
    events: list[DomainEvent] = [first] if submitted is None else []
    events.append(
        ScannerBoundariesDetected(
            **env,
            scanners=[
                ScannerBoundary(
                    name=s.name,
                    kind=s.kind,
                    start_line=s.start_line,
                    end_line=s.end_line,
                    confidence=s.confidence,
                    needs_review=s.needs_review,
                )
                for s in r.scanners
            ],
        )
    )
    for s in r.scanners:
        events.append(
            ScannerParametersIsolated(
                **env, scanner=s.name, parameters={p.name: p.value for p in s.parameters}
            )
        )
    for c in r.contamination:
        events.append(
            ScannerContaminationFound(
                **env, scanner=c.scanner, name=c.name, owner=c.owner, line=c.line, detail=c.detail
            )
        )
    for f in r.findings:
        events.append(
            ScannerSecurityFinding(
                **env,
                rule=f.rule,
                severity=f.severity,  # type: ignore[arg-type]
                line=f.line,
                column=f.column,
                message=f.message,
                scanner=f.scanner,
            )
        )
    for s in r.scanners:
        if outputs is None or s.name in outputs:
            events.append(
                ScannerGenerated(
                    **env,
                    scanner=s.name,
                    output_path=(outputs or {}).get(s.name, s.output_file),
                    output_sha256=s.output_sha256,
                )
            )
    for p in proofs or ():
        events.append(
            ScannerIsolationProven(
                **env,
                scanner=p.scanner,
                status=p.status,
                values_checked=p.values_checked,
                reason=p.reason,
                values_mismatched=list(p.values_mismatched),
            )
        )
    return events


def rejected_event(
    error: ScannerInputError, data: bytes, source: Source, ts_ns: int | None = None
) -> ScannerFileRejected:
    """The event for a file refused before analysis (its bytes identify it)."""
    ts = ts_ns if ts_ns is not None else time.time_ns()
    return ScannerFileRejected(
        ts_event=ts,
        ts_init=ts,
        source=source,
        file_sha256=hashlib.sha256(data).hexdigest(),
        path=error.path,
        message=error.reason,
        line=error.line,
    )
