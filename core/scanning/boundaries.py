"""Where the scanners are: independent detectors reconciled by consensus.

Four detectors vote on each candidate definition: its name, the file's banners, the
structure of the code (an un-called root that reads thresholds) and its use (called from
``__main__``, a runner or a registry). Confidence is the share of applicable detectors that
agree; a scanner accepted with low confidence is flagged for review rather than trusted.
Scanners written as column assignments inside one shared function are found the same way.
"""

import ast
import re
from dataclasses import dataclass, field

from tapereader.core.scanning.banners import Banner, find_banners, is_banner_line
from tapereader.core.scanning.parse import ParsedModule
from tapereader.core.scanning.symbols import Unit

ACCEPT = 0.5  # at least half of the applicable detectors agree
REVIEW_BELOW = 0.75  # accepted, but a person should look at it

_NAME = re.compile(
    r"(^|_)(scan|scanner|screen|screener|setup|setups)(_|$|s_|s$)|^scan[A-Z]|(Scanner|Screener)$"
)
_COLUMN_NAME = re.compile(r"(?i)(scan|screen|setup|signal|^sig_|^alert_)")
_RUNNER_NAMES = frozenset(
    {
        "main",
        "run",
        "run_all",
        "cli",
        "runner",
        "run_scanners",
        "scan_all",
        "run_all_scanners",
        "scan_universe",
        "dispatch",
    }
)


@dataclass(slots=True)
class Section:
    """A run of lines under one banner (or derived from scanner positions)."""

    start: int
    end: int
    title: str
    kind: str
    scanner: str | None = None


@dataclass(slots=True)
class Detected:
    """One scanner found in the file, with the detectors that agreed."""

    name: str
    kind: str  # "function", "class" or "column"
    entry: Unit
    start_line: int
    end_line: int
    confidence: float
    votes: dict[str, bool]
    column: str | None = None  # for kind "column": the column key
    column_stmt: ast.stmt | None = None
    section: Section | None = None
    needs_review: bool = field(init=False, default=False)

    def __post_init__(self) -> None:
        self.needs_review = self.confidence < REVIEW_BELOW


def _docstring_headers(units: list[Unit], parsed: ParsedModule) -> dict[int, str]:
    out: dict[int, str] = {}
    for u in units:
        if u.kind == "docstring" and u.index > 0 and not u.in_main:
            text = u.node.value.value  # type: ignore[attr-defined]
            title = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
            if title:
                out[u.start] = title.strip("=-─# ")
    return out


def _has_thresholds(fn: ast.AST) -> bool:
    """Numeric comparisons, numeric defaults or a literal parameter dict inside."""
    for node in ast.walk(fn):
        if isinstance(node, ast.Compare):
            for side in [node.left, *node.comparators]:
                if isinstance(side, ast.Constant) and isinstance(side.value, int | float):
                    return True
        if isinstance(node, ast.Dict) and any(
            isinstance(v, ast.Constant)
            and isinstance(v.value, int | float)
            and not isinstance(v.value, bool)
            for v in node.values
        ):
            return True  # a parameter block written as a local dict
        if isinstance(node, ast.arguments):
            for d in [*node.defaults, *node.kw_defaults]:
                if isinstance(d, ast.Constant) and isinstance(d.value, int | float):
                    return True
    return False


def detect(parsed: ParsedModule, units: list[Unit]) -> tuple[list[Detected], list[Section]]:
    """Find the scanners and the sections of the file."""
    top = [u for u in units if not u.in_main and u.kind != "main"]
    defs = [u for u in top if u.kind in ("def", "class")]
    banners = find_banners(parsed.lines, _docstring_headers(units, parsed))
    by_name: dict[str, list[Unit]] = {}
    for u in top:
        for n in u.binds:
            by_name.setdefault(n, []).append(u)

    columns = {u.index: _column_candidates(u, parsed) for u in defs if u.kind == "def"}
    # Several scanner-like columns in one function, or one whose name says it is a scanner
    # (what an isolated column scanner looks like): the function only holds them.
    containers = {i for i, c in columns.items() if len(c) >= 2 or (len(c) == 1 and c[0][2]["name"])}
    named = {u.index for u in defs if _NAME.search(u.binds[0])}
    referenced_by: dict[int, set[int]] = {u.index: set() for u in defs}
    for u in defs:
        for name in u.read_names:
            for target in by_name.get(name, []):
                if target.index in referenced_by and target.index != u.index:
                    referenced_by[target.index].add(u.index)
    runners = {
        u.index
        for u in defs
        if u.binds[0] in _RUNNER_NAMES
        or sum(1 for t in referenced_by if u.index in referenced_by[t] and t in named) >= 2
    }
    used = set()
    for u in units:
        # Run from __main__, a runner, a registry, or composed into another named scanner.
        if u.in_main or u.index in runners or u.kind == "assign" or u.index in named:
            for name in u.read_names:
                used.update(t.index for t in by_name.get(name, []) if t.kind in ("def", "class"))
    for u in defs:
        node = u.node
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) and any(
            isinstance(d, ast.Call) for d in node.decorator_list
        ):
            used.add(u.index)  # a registering decorator, e.g. @register("gap")
    roots = {i for i, refs in referenced_by.items() if not (refs - runners)}
    structural = {
        u.index
        for u in defs
        if u.index in roots
        and u.index not in runners
        and u.index not in containers
        and (
            _reads_keyed_config(u, by_name) or _reads_number(u, by_name) or _has_thresholds(u.node)
        )
    }
    sections = _banner_sections(banners, len(parsed.lines))
    principal = _principals(sections, defs, named, used, roots - runners - containers)

    found: list[Detected] = []
    for u in defs:
        if u.index in runners or u.index in containers:
            continue
        votes = {
            "name": u.index in named,
            "structure": u.index in structural,
            "use": u.index in used,
        }
        if banners:
            votes["banner"] = u.index in principal
        score = sum(votes.values()) / len(votes)
        in_shared = any(
            sec.kind == "shared" and sec.start <= u.start <= sec.end for sec in sections
        )
        if score < ACCEPT or (in_shared and not votes["name"]):
            continue
        if banners and not (votes["name"] or votes["banner"]):
            continue  # structure and use alone describe helpers as well as scanners
        kind = "class" if u.kind == "class" else "function"
        sec = principal.get(u.index)
        start, end = u.start, u.end
        if sec is not None:
            start, end = sec.start, _section_end(sec, units, parsed.lines)
        found.append(Detected(u.binds[0], kind, u, start, end, round(score, 2), votes, section=sec))
    for idx in containers:
        for col, stmt, votes in columns[idx]:
            score = sum(votes.values()) / len(votes)
            if score >= ACCEPT:
                s, e = stmt.lineno, stmt.end_lineno or stmt.lineno
                found.append(
                    Detected(
                        col,
                        "column",
                        units[idx],
                        s,
                        e,
                        round(score, 2),
                        votes,
                        column=col,
                        column_stmt=stmt,
                    )
                )
    found.sort(key=lambda d: d.start_line)
    # Two scanners defined under one name (the later one is what the file runs): keep both,
    # told apart by the line of their definition.
    counts: dict[str, int] = {}
    for d in found:
        counts[d.name] = counts.get(d.name, 0) + 1
    for d in found:
        if counts[d.name] > 1:
            d.name = f"{d.name}@{d.entry.start}"
    return found, sections


def _section_end(sec: Section, units: list[Unit], lines: list[str]) -> int:
    """Last code line of a section, stopping before ``__main__`` and trailing blank lines."""
    end = sec.end
    for u in units:
        if u.kind == "main" and sec.start <= u.start <= end:
            end = u.start - 1
    while end > sec.start and not lines[end - 1].strip():
        end -= 1
    sec.end = end
    return end


def _reads_number(u: Unit, by_name: dict[str, list[Unit]]) -> bool:
    """Reads a module constant bound to a number, e.g. ``THRESHOLD = 0.012``."""
    for name in u.read_names:
        for t in by_name.get(name, []):
            value = getattr(t.node, "value", None)
            if isinstance(value, ast.UnaryOp):
                value = value.operand
            if (
                t.kind == "assign"
                and isinstance(value, ast.Constant)
                and isinstance(value.value, int | float)
                and not isinstance(value.value, bool)
            ):
                return True
    return False


def _reads_keyed_config(u: Unit, by_name: dict[str, list[Unit]]) -> bool:
    """Reads a module-level dict by constant key, the usual shape of a parameter block."""
    return any(r.keys and any(t.kind == "assign" for t in by_name.get(r.name, [])) for r in u.reads)


def _banner_sections(banners: list[Banner], n_lines: int) -> list[Section]:
    out: list[Section] = []
    for i, b in enumerate(banners):
        end = banners[i + 1].line - 1 if i + 1 < len(banners) else n_lines
        out.append(Section(b.line, end, b.title, b.kind))
    return out


def _principals(
    sections: list[Section], defs: list[Unit], named: set[int], used: set[int], roots: set[int]
) -> dict[int, Section]:
    """The one definition each scanner section is about."""
    out: dict[int, Section] = {}
    for sec in sections:
        if sec.kind == "shared":
            continue
        inside = [u for u in defs if sec.start <= u.start <= sec.end and u.index in roots]
        if not inside:
            continue
        ranked = sorted(inside, key=lambda u: ((u.index in named) + (u.index in used), u.start))
        out[ranked[-1].index] = sec
    return out


def _column_candidates(
    u: Unit, parsed: ParsedModule
) -> list[tuple[str, ast.stmt, dict[str, bool]]]:
    """Column assignments in a function's body that look like scanners."""
    node = u.node
    if not isinstance(node, ast.FunctionDef):
        return []
    out = []
    for stmt in node.body:
        if not (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1):
            continue
        target = stmt.targets[0]
        if not (
            isinstance(target, ast.Subscript)
            and isinstance(target.slice, ast.Constant)
            and isinstance(target.slice.value, str)
        ):
            continue
        col = target.slice.value
        comparisons = _numeric_comparisons(stmt.value)
        votes = {"name": bool(_COLUMN_NAME.search(col)), "structure": comparisons >= 2}
        above = stmt.lineno - 2
        if (
            above >= 0
            and parsed.lines[above].strip().startswith("#")
            and is_banner_line(parsed.lines[above])
        ):
            votes["banner"] = True
        if comparisons and (votes["name"] or votes["structure"]):
            out.append((col, stmt, votes))
    return out


def _is_number(node: ast.expr) -> bool:
    if isinstance(node, ast.UnaryOp):
        node = node.operand
    return (
        isinstance(node, ast.Constant)
        and isinstance(node.value, int | float)
        and not isinstance(node.value, bool)
    )


def _numeric_comparisons(expr: ast.expr) -> int:
    return sum(
        1
        for n in ast.walk(expr)
        if isinstance(n, ast.Compare) and any(_is_number(s) for s in [n.left, *n.comparators])
    )
