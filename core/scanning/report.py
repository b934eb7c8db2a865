"""What an analysis found, as plain msgspec structs, and the table the command prints."""

import msgspec


class Parameter(msgspec.Struct, frozen=True):
    """A parameter of a scanner (or of the shared configuration): value as source text
    (secrets redacted), type, line, how it was written."""

    name: str
    value: str
    type: str
    line: int
    expressed: str
    container: str = ""  # the class, or the function whose default it is


class FindingRecord(msgspec.Struct, frozen=True, kw_only=True):
    """A security finding, attributed to the scanner that owns the line (if any)."""

    rule: str
    severity: str
    line: int
    column: int
    message: str
    scanner: str | None = None


class ContaminationRecord(msgspec.Struct, frozen=True, kw_only=True):
    """A read of a name whose value, with the whole file run as one module, is someone else's."""

    scanner: str
    name: str
    owner: str
    line: int
    detail: str


class ScannerReport(msgspec.Struct, kw_only=True):
    """One scanner: where it is, how sure we are, what it takes, and its isolated file."""

    name: str
    kind: str
    start_line: int
    end_line: int
    confidence: float
    votes: dict[str, bool]
    needs_review: bool
    parameters: list[Parameter]
    helpers: list[str]
    globals: list[str]
    imports: list[str]
    overrides: list[str] = []
    unresolved: list[str] = []
    findings: int = 0
    isolated: bool = False
    isolation_problems: list[str] = []
    output_file: str = ""
    output_sha256: str = ""
    output_lines: int = 0


class FileReport(msgspec.Struct, kw_only=True):
    """The whole analysis of one file."""

    path: str
    sha256: str
    size_bytes: int
    line_count: int
    scanners: list[ScannerReport]
    global_config: list[Parameter]
    findings: list[FindingRecord]
    contamination: list[ContaminationRecord]
    secrets: list[str]
    seconds: float = 0.0


def table(report: FileReport) -> str:
    """A fixed-width table, one row per scanner, then contamination and critical findings."""
    head = ("scanner", "kind", "lines", "params", "helpers", "findings", "confidence", "isolated")
    rows = [head]
    for s in report.scanners:
        conf = f"{s.confidence:.2f}" + (" review" if s.needs_review else "")
        rows.append(
            (
                s.name,
                s.kind,
                f"{s.start_line}-{s.end_line}",
                str(len(s.parameters)),
                str(len(s.helpers)),
                str(s.findings),
                conf,
                "yes" if s.isolated else "NO",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    out = [
        f"{report.path}: {len(report.scanners)} scanners, {report.line_count} lines, "
        f"sha256 {report.sha256[:16]}",
        *lines,
    ]
    if report.global_config:
        out.append("shared configuration: " + ", ".join(p.name for p in report.global_config))
    if report.contamination:
        out.append(f"contamination in the original file ({len(report.contamination)}):")
        out += [
            f"  {c.scanner} reads {c.name} (line {c.line}) from {c.owner}: {c.detail}"
            for c in report.contamination
        ]
    serious = [f for f in report.findings if f.severity != "info"]
    if serious:
        out.append(
            f"security findings ({len(serious)} warning or critical, "
            f"{len(report.findings) - len(serious)} info):"
        )
        out += [f"  line {f.line}: [{f.severity}] {f.rule}: {f.message}" for f in serious]
    for s in report.scanners:
        for problem in s.isolation_problems:
            out.append(f"  NOT ISOLATED {s.name}: {problem}")
        for o in s.overrides:
            out.append(f"  two sources of truth in {s.name}: {o}")
    return "\n".join(out)
