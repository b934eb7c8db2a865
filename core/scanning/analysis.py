"""The analysis pipeline: parse, find scanners, resolve, slice, extract, generate, prove.

:func:`analyse` does everything without writing; :func:`write_outputs` writes the isolated
files. Both are pure functions of the input bytes (plus, for writing, the output folder),
so replaying the recorded input reproduces the same report and the same output checksums.
"""

import ast
import hashlib
import re
import textwrap
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tapereader.core.scanning.boundaries import Detected, detect
from tapereader.core.scanning.contamination import find_contamination
from tapereader.core.scanning.generate import header_text, render
from tapereader.core.scanning.isolation import all_pairs, check_isolated, statement_key, unit_ast
from tapereader.core.scanning.ownership import MAIN, SHARED, Ownership, assign_owners
from tapereader.core.scanning.parameters import (
    REDACTED,
    Extractor,
    Parameter,
    global_config,
    main_overrides,
    scanner_parameters,
)
from tapereader.core.scanning.parse import ParsedModule, ScannerInputError, SourceFile, read_source
from tapereader.core.scanning.report import (
    ContaminationRecord,
    FileReport,
    FindingRecord,
    ScannerReport,
)
from tapereader.core.scanning.second_opinion import bandit_in_background, merge_findings
from tapereader.core.scanning.security import Finding, analyse_security
from tapereader.core.scanning.slicing import Slice, slice_scanner
from tapereader.core.scanning.symbols import build_units


@dataclass(slots=True)
class Analysis:
    """A finished analysis: the report and each scanner's generated source."""

    report: FileReport
    sources: dict[str, str]  # scanner name -> generated module text
    file_names: dict[str, str]  # scanner name -> output file name
    hoisted: dict[str, list[str]]  # scanner name -> __main__ statements lifted to module level


def output_name(scanner: str, taken: set[str]) -> str:
    """A safe, unique module file name for a scanner."""
    base = re.sub(r"\W+", "_", re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", scanner)).strip("_").lower()
    base = base or "scanner"
    if base[0].isdigit():
        base = f"scanner_{base}"
    name, n = f"{base}.py", 2
    while name in taken:
        name, n = f"{base}_{n}.py", n + 1
    taken.add(name)
    return name


def analyse(source: SourceFile | str | Path, *, second_opinion: bool = True) -> Analysis:
    """Analyse a multi-scanner file; raises :class:`ScannerInputError` on bad input."""
    src = source if isinstance(source, SourceFile) else read_source(source)
    try:
        return _analyse(src, second_opinion)
    except RecursionError as exc:
        raise ScannerInputError(src.path, "code nested too deeply to analyse") from exc


def _analyse(src: SourceFile, second_opinion: bool) -> Analysis:
    t0 = time.perf_counter()
    parsed = ParsedModule(src)
    bandit = bandit_in_background(src.text) if second_opinion else None
    units = build_units(parsed)
    scanners, sections = detect(parsed, units)
    if not scanners:
        raise ScannerInputError(
            src.path,
            "no scanners found (no function, class or column "
            "assignment that the detectors agree is a scanner)",
        )
    own = assign_owners(units, scanners, sections, len(parsed.lines))
    slices = {
        d.name: slice_scanner(d, scanners, own, lambda u: parsed.line_span_text(u.start, u.end))
        for d in scanners
    }
    ast_of = unit_ast(units)
    raw_findings, secrets = analyse_security(parsed.tree)
    ex = Extractor(parsed.tree, src.text, secrets)

    def hide(text: str) -> str:
        """Every message may quote source; no message may quote a secret."""
        for s in secrets:
            text = text.replace(s.value, REDACTED)
        return text

    params = {d.name: scanner_parameters(d, slices[d.name], own, ex, ast_of) for d in scanners}
    contamination = find_contamination(scanners, slices, own, ast_of)
    cache: dict[str, set[tuple[str, str]]] = {}
    foreign, shared_values = _exclusive_pairs(
        scanners, own, ex, ast_of, params, cache, parsed.lines
    )
    names: set[str] = set()
    file_names = {d.name: output_name(d.name, names) for d in scanners}
    reports, sources = [], {}
    file_name = Path(src.path).name
    for d in scanners:
        sl = slices[d.name]
        text = render(
            parsed,
            units,
            d,
            sl,
            secrets,
            header_text(d, file_name, src.sha256, len(params[d.name])),
        )
        sources[d.name] = text
        others = {t.name for t in scanners if t.name != d.name and t.kind != "column"}
        # Another scanner may be in the file only as a real dependency (composition).
        deps = {t.name for t in scanners if t.name in others and t.entry.index in sl.units}
        check = check_isolated(
            text,
            params[d.name],
            shared_values,
            {k: v for k, v in foreign.items() if k != d.name and k not in deps},
            {t.entry.binds[0] for t in scanners if t.name in others - deps} - {d.entry.binds[0]},
            {t.name for t in scanners if t.kind == "column" and t.name != d.name},
            cache,
        )
        overrides = [
            hide(
                f"{a.name} = {a.value} (line {a.line}) but __main__ passes {b.value} "
                f"(line {b.line})"
            )
            for a, b in main_overrides(d, sl, ex, ast_of, params[d.name])
        ]
        reports.append(
            ScannerReport(
                name=d.name,
                kind=d.kind,
                start_line=d.start_line,
                end_line=d.end_line,
                confidence=d.confidence,
                votes=d.votes,
                needs_review=d.needs_review,
                parameters=list(params[d.name]),
                helpers=sorted(u.binds[0] for u in sl.helpers if u is not d.entry),
                globals=sorted(
                    {n for u in sl.units.values() if u.kind == "assign" for n in u.binds}
                    | {n for u in sl.hoisted.values() for n in u.binds}
                ),
                imports=sorted({n for names_ in sl.import_names.values() for n in names_}),
                overrides=overrides,
                unresolved=sorted(sl.unresolved),
                isolated=check.ok,
                isolation_problems=[hide(t) for t in check.mismatched + check.foreign],
                output_file=file_names[d.name],
                output_sha256=hashlib.sha256(text.encode()).hexdigest(),
                output_lines=text.count("\n"),
            )
        )
    if bandit is not None:  # collected last: it ran beside everything above
        raw_findings = merge_findings(raw_findings, bandit.result())
    for r, d in zip(reports, scanners, strict=True):
        r.findings = sum(1 for f in raw_findings if _in_slice(f.line, slices[d.name], d))
    used = set().union(*(sl.units for sl in slices.values()))
    report = FileReport(
        path=src.path,
        sha256=src.sha256,
        size_bytes=src.size_bytes,
        line_count=src.line_count,
        scanners=reports,
        global_config=global_config(used, own, ex, ast_of),
        findings=[_finding(f, scanners, slices, own, hide) for f in raw_findings],
        contamination=[
            ContaminationRecord(
                scanner=c.scanner, name=c.name, owner=c.owner, line=c.line, detail=hide(c.detail)
            )
            for c in contamination
        ],
        secrets=sorted({s.env_var for s in secrets}),
        seconds=round(time.perf_counter() - t0, 4),
    )
    hoisted = {
        d.name: [
            textwrap.dedent(parsed.line_span_text(u.start, u.end))
            for _, u in sorted(slices[d.name].hoisted.items())
        ]
        for d in scanners
    }
    return Analysis(report, sources, file_names, hoisted)


def _in_slice(line: int, sl: Slice, d: Detected) -> bool:
    if d.kind == "column" and d.start_line <= line <= d.end_line:
        return True
    return any(
        u.start <= line <= u.end
        for u in (*sl.units.values(), *sl.main.values())
        if not (d.kind == "column" and u is d.entry)
    )


def _finding(
    f: Finding,
    scanners: list[Detected],
    slices: dict[str, Slice],
    own: Ownership,
    hide: Callable[[str], str],
) -> FindingRecord:
    owner = None
    for d in scanners:
        if d.kind == "column" and d.start_line <= f.line <= d.end_line:
            owner = d.name
            break
        for u in slices[d.name].units.values():
            if u.start <= f.line <= u.end and own.owner.get(u.index) == d.name:
                owner = d.name
    return FindingRecord(
        rule=f.rule,
        severity=f.severity,
        line=f.line,
        column=f.column,
        message=hide(f.message),
        scanner=owner,
    )


def _exclusive_pairs(
    scanners: list[Detected],
    own: Ownership,
    ex: Extractor,
    ast_of: dict[int, ast.stmt],
    params: dict[str, list[Parameter]],
    cache: dict[str, set[tuple[str, str]]],
    lines: list[str],
) -> tuple[dict[str, set[tuple[str, str]]], dict[str, set[str]]]:
    """(name, value) pairs only one scanner's own code binds, and values shared code binds."""
    by_owner: dict[str, set[tuple[str, str]]] = {}
    containers = {d.entry.index for d in scanners if d.kind == "column"}
    for u in own.units:
        node = ast_of.get(u.index)
        if node is None or u.index in containers:
            continue
        who = own.owner.get(u.index, MAIN)
        pairs = all_pairs(ex, node)
        if not any(v == REDACTED for _, v in pairs):
            cache[statement_key(lines, node)] = pairs
        by_owner.setdefault(who if who in params else SHARED, set()).update(pairs)
    for d in scanners:
        if d.kind == "column":
            by_owner.setdefault(d.name, set()).update((p.name, p.value) for p in params[d.name])
    out = {}
    for name in params:
        rest = set().union(*(v for k, v in by_owner.items() if k != name))
        out[name] = by_owner.get(name, set()) - rest
    shared: dict[str, set[str]] = {}
    for who, pairs in by_owner.items():
        if who not in params:
            for n, v in pairs:
                shared.setdefault(n, set()).add(v)
    return out, shared


def write_outputs(analysis: Analysis, out_dir: str | Path) -> dict[str, Path]:
    """Write each isolated scanner to ``out_dir``; returns scanner name -> written path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = {}
    for name, text in analysis.sources.items():
        path = out / analysis.file_names[name]
        path.write_text(text, encoding="utf-8")
        written[name] = path
    return written
