"""The runtime half of the isolation proof, run in the sandbox.

For each scanner that is a pure function of data (no network, process, file or eval
finding in what it reaches; not async), one sandboxed process imports the isolated module,
checks that the parameter values it binds at run time equal the scanner's own source
values, then calls the isolated entry and the original one on the same synthetic OHLCV
frame and compares the outputs. "The original" is the whole original file imported as a
module, then the scanner's own section executed again (so its own bindings win, as its
author meant), then any ``__main__`` statements its isolated file hoists.
"""

import ast
import tempfile
from pathlib import Path
from typing import Literal

import msgspec

from tapereader.core.scanning.analysis import Analysis
from tapereader.core.scanning.parameters import REDACTED
from tapereader.core.scanning.parse import ParsedModule, source_from_bytes, split_lines
from tapereader.core.scanning.sandbox import SandboxLimits, run_sandboxed
from tapereader.core.scanning.security import analyse_security

_RUNTIME_KINDS = (
    "module-constant",
    "dict-entry",
    "nested-dict",
    "default-argument",
    "class-attribute",
    "dataclass-field",
    "params-tuple",
)
_UNSAFE_RULES = (
    "process",
    "eval",
    "dynamic-import",
    "deserialize",
    "socket",
    "http",
    "webbrowser",
    "file-delete",
    "file-write",
    "ctypes",
)


class ProofResult(msgspec.Struct, kw_only=True):
    """Whether one scanner's isolated module behaves as its original code."""

    scanner: str
    status: Literal["proven", "differs", "skipped", "error"]
    reason: str = ""
    values_checked: int = 0
    values_mismatched: list[str] = []


def _columns(tree: ast.Module) -> list[str]:
    out: set[str] = set()
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Subscript)
            and isinstance(node.slice, ast.Constant)
            and isinstance(node.slice.value, str)
        ):
            out.add(node.slice.value)
        elif (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in ("df", "data", "frame", "bars")
        ):
            out.add(node.attr)
    return sorted(out)


def _entry_shape(tree: ast.Module, name: str, kind: str) -> tuple[str | None, dict]:
    """Why the scanner cannot be called on a frame, or how to call it."""
    for node in tree.body:
        if isinstance(node, ast.AsyncFunctionDef) and node.name == name:
            return "async entry: not a pure function of data", {}
        if isinstance(node, ast.FunctionDef) and node.name == name:
            args = node.args.args
            if not args:
                return "entry takes no data argument", {}
            required = len(args) - len(node.args.defaults)
            if required > 1:
                return "entry needs more than one argument", {}
            return None, {"list_input": args[0].arg in ("frames", "dfs", "data_frames")}
        if isinstance(node, ast.ClassDef) and node.name == name and kind == "class":
            methods = {n.name for n in node.body if isinstance(n, ast.FunctionDef)}
            for m in ("scan", "run", "__call__"):
                if m in methods:
                    return None, {"method": m}
            return "class has no scan/run/__call__ method", {}
    return "entry not found", {}


def prove(
    analysis: Analysis,
    original_text: str,
    limits: SandboxLimits | None = None,
    bars: Path | None = None,
    rows: int = 300,
) -> list[ProofResult]:
    """Run the runtime proof for every scanner of ``analysis`` in one sandboxed process.

    ``bars``: a CSV of real OHLCV bars (``timestamp,open,high,low,close,volume``) to feed
    both versions instead of a seeded random walk; its first ``rows`` rows are used.
    """
    report = analysis.report
    parsed = ParsedModule(source_from_bytes(report.path, original_text.encode()))
    tree = parsed.tree
    unsafe_lines = {
        f.line
        for f in report.findings
        if f.rule.split(":")[0] in _UNSAFE_RULES
        or (f.severity == "critical" and f.rule != "hard-coded-secret")
    }
    results: dict[str, ProofResult] = {}
    tasks = []
    with tempfile.TemporaryDirectory(prefix="tr-proof-") as tmp:
        work = Path(tmp)
        original = work / "original.py"
        original.write_text(original_text, encoding="utf-8")
        for s in report.scanners:
            entry = s.name if s.kind != "column" else None
            text = analysis.sources[s.name]
            iso_tree = ast.parse(text)
            if s.kind == "column":
                entry = next(
                    (
                        n.name
                        for n in iso_tree.body
                        if isinstance(n, ast.FunctionDef) and s.name in ast.unparse(n)
                    ),
                    None,
                )
            if entry is None:
                results[s.name] = ProofResult(
                    scanner=s.name, status="skipped", reason="container function not found"
                )
                continue
            reason, shape = _entry_shape(tree, entry, s.kind)
            touched = [ln for ln in unsafe_lines if _reaches(text, original_text, ln)]
            if reason is None and touched:
                reason = f"reaches unsafe code (line {min(touched)}): not a pure function"
            if reason is not None:
                results[s.name] = ProofResult(scanner=s.name, status="skipped", reason=reason)
                continue
            iso = work / analysis.file_names[s.name]
            iso.write_text(text, encoding="utf-8")
            values = {
                p.name: [p.expressed, p.container]
                for p in s.parameters
                if p.expressed in _RUNTIME_KINDS and "@" not in p.name and p.value != REDACTED
            }
            section = [s.start_line, s.end_line] if s.kind != "column" else None
            tasks.append(
                {
                    "scanner": s.name,
                    "entry": entry,
                    "isolated": str(iso),
                    "original": str(original),
                    "section": section,
                    "values": values,
                    "hoisted": analysis.hoisted.get(s.name, []),
                    "column": s.name if s.kind == "column" else None,
                    **shape,
                }
            )
        if tasks:
            env = {v: "sandbox-placeholder" for v in report.secrets}
            imports = sorted(
                {
                    a.name.split(".")[0]
                    for n in ast.walk(tree)
                    if isinstance(n, ast.Import)
                    for a in n.names
                }
                | {
                    n.module.split(".")[0]
                    for n in ast.walk(tree)
                    if isinstance(n, ast.ImportFrom) and n.module and not n.level
                }
            )
            run = run_sandboxed(
                {
                    "mode": "proof",
                    "tasks": tasks,
                    "columns": _columns(tree),
                    "imports": imports,
                    "bars": str(Path(bars).resolve()) if bars else None,
                    "rows": rows,
                },
                limits or SandboxLimits(),
                work,
                env,
            )
            by_name = {t["scanner"]: t for t in run.payload.get("tasks", [])}
            for task in tasks:
                results[task["scanner"]] = _judge(
                    task,
                    by_name.get(task["scanner"]),
                    run.status,
                    run.error or run.stderr[-300:],
                    report,
                )
    # A traceback from the sandbox may quote a source line holding a hard-coded secret.
    _, secrets = analyse_security(tree)
    for r in results.values():
        for s in secrets:
            r.reason = r.reason.replace(s.value, REDACTED)
    return [results[s.name] for s in report.scanners]


def _reaches(isolated_text: str, original_text: str, line: int) -> bool:
    """Whether the original line's statement made it into the isolated module."""
    lines = split_lines(original_text)
    if not 0 < line <= len(lines):
        return False
    code = lines[line - 1].strip()
    body = isolated_text.split('if __name__ == "__main__":')[0]
    return bool(code) and code in body


def _judge(task: dict, got: dict | None, status: str, error: str, report) -> ProofResult:
    name = task["scanner"]
    if got is None:
        return ProofResult(scanner=name, status="error", reason=f"sandbox {status}: {error}")
    if "error" in got:
        return ProofResult(scanner=name, status="error", reason=got["error"])
    own = {p.name: p.value for s in report.scanners if s.name == name for p in s.parameters}
    bad = []
    for pname, runtime in got.get("values", {}).items():
        if repr(ast.literal_eval(own[pname])) != runtime:
            bad.append(f"{pname}: source {own[pname]} but bound {runtime}")
    if bad:
        return ProofResult(
            scanner=name,
            status="differs",
            reason="parameter values differ",
            values_checked=len(got["values"]),
            values_mismatched=bad,
        )
    if got.get("isolated") != got.get("original"):
        return ProofResult(
            scanner=name,
            status="differs",
            values_checked=len(got["values"]),
            reason="isolated and original outputs differ on the same frame",
        )
    return ProofResult(scanner=name, status="proven", values_checked=len(got["values"]))
