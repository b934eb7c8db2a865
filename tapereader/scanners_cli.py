"""``tapereader scanners``: split a multi-scanner file, or check it without writing.

Exit status: 0 when every scanner came out isolated (and, with ``--prove``, proven or
skipped for a stated reason), 1 when one did not, 2 when the file was refused.
"""

import argparse
import sys
from pathlib import Path

import msgspec

from tapereader.core.events import DomainEvent, Source
from tapereader.core.scanning.analysis import Analysis, analyse, write_outputs
from tapereader.core.scanning.parse import ScannerInputError
from tapereader.core.scanning.proof import ProofResult, prove
from tapereader.core.scanning.report import table
from tapereader.core.scanning.scanner_events import analysis_events, rejected_event
from tapereader.core.store import EventStore

_SOURCE = Source(component="tapereader.scanners", run_id="cli")


def register(subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Add the ``scanners`` subcommand with ``split`` and ``check``."""
    p = subparsers.add_parser("scanners", help="split multi-scanner files into isolated scanners")
    sub = p.add_subparsers(dest="scanners_command", required=True, metavar="ACTION")
    split = sub.add_parser("split", help="analyse FILE and write one isolated scanner per file")
    split.add_argument("-o", "--output", metavar="DIR", required=True, help="output folder")
    split.set_defaults(run=_split)
    check = sub.add_parser("check", help="analyse FILE without writing anything")
    check.set_defaults(run=_check)
    for action in (split, check):
        action.add_argument("file", metavar="FILE")
        action.add_argument("--no-bandit", action="store_true", help="skip bandit's opinion")
        action.add_argument(
            "--prove", action="store_true", help="also run the runtime proof in the sandbox"
        )
        action.add_argument(
            "--bars", metavar="CSV", help="real OHLCV bars for --prove (default: a random walk)"
        )
        action.add_argument(
            "--json", action="store_true", help="print the full report as JSON, not a table"
        )
        action.add_argument(
            "--events", metavar="STORE", help="also record the analysis in this event store"
        )


def _analyse(args: argparse.Namespace) -> Analysis | None:
    try:
        return analyse(args.file, second_opinion=not args.no_bandit)
    except ScannerInputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        if args.events:
            data = Path(args.file).read_bytes() if Path(args.file).is_file() else b""
            _record(args, [rejected_event(exc, data, _SOURCE)])
        return None


def _prove(args: argparse.Namespace, analysis: Analysis) -> list[ProofResult]:
    bars = Path(args.bars) if args.bars else None
    results = prove(analysis, Path(args.file).read_text(encoding="utf-8"), bars=bars, rows=3000)
    if not args.json:
        for r in results:
            print(f"proof {r.scanner}: {r.status}" + (f" ({r.reason})" if r.reason else ""))
    return results


def _show(args: argparse.Namespace, analysis: Analysis) -> tuple[bool, list[ProofResult]]:
    if args.json:
        print(msgspec.json.encode(analysis.report).decode())
    else:
        print(table(analysis.report))
    proofs = _prove(args, analysis) if args.prove else []
    proven = all(r.status in ("proven", "skipped") for r in proofs)
    return proven and all(s.isolated for s in analysis.report.scanners), proofs


def _record(args: argparse.Namespace, events: list[DomainEvent]) -> None:
    with EventStore.open(args.events) as store:
        store.append(events)
    if not args.json:
        print(f"recorded {len(events)} events in {store.description}")


def _check(args: argparse.Namespace) -> int:
    analysis = _analyse(args)
    if analysis is None:
        return 2
    ok, proofs = _show(args, analysis)
    if args.events:
        _record(args, analysis_events(analysis, _SOURCE, outputs={}, proofs=proofs))
    return 0 if ok else 1


def _split(args: argparse.Namespace) -> int:
    analysis = _analyse(args)
    if analysis is None:
        return 2
    ok, proofs = _show(args, analysis)
    written = write_outputs(analysis, args.output)
    if not args.json:
        for name, path in written.items():
            print(f"wrote {path} ({name})")
    if args.events:
        outputs = {name: str(path) for name, path in written.items()}
        _record(args, analysis_events(analysis, _SOURCE, outputs=outputs, proofs=proofs))
    return 0 if ok else 1
