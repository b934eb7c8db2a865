"""Contamination: where a scanner, run inside the whole file, reads another scanner's value.

For every name a scanner's code reads, the binding its isolated file keeps is compared with
the binding Python really uses when the file runs as one module. A different owner is
contamination; for a dict read with a constant key the detail says whether the scanner
silently gets another value or a ``KeyError``. ``global`` rebinds and in-place mutation of
shared objects by another scanner count too.
"""

import ast
from dataclasses import dataclass

from tapereader.core.scanning.boundaries import Detected
from tapereader.core.scanning.ownership import MAIN, SHARED, Ownership
from tapereader.core.scanning.slicing import Slice
from tapereader.core.scanning.symbols import Unit


@dataclass(frozen=True, slots=True)
class Contamination:
    """One name a scanner reads whose value belongs to someone else."""

    scanner: str
    name: str
    owner: str
    line: int
    detail: str


def _dict_literal(node: ast.stmt | None) -> dict[str, str] | None:
    if isinstance(node, ast.Assign | ast.AnnAssign) and isinstance(node.value, ast.Dict):
        out = {}
        for k, v in zip(node.value.keys, node.value.values, strict=True):
            if isinstance(k, ast.Constant):
                out[str(k.value)] = ast.unparse(v)
        return out
    return None


def _signature(node: ast.stmt | None) -> str:
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
        prefix = "async " if isinstance(node, ast.AsyncFunctionDef) else ""
        return f"{prefix}{node.name}({ast.unparse(node.args)})"
    return ""


def _detail(
    r_keys: tuple[str, ...],
    name: str,
    mine: Unit,
    run: Unit,
    owner: str,
    ast_of: dict[int, ast.stmt],
) -> str:
    a, b = ast_of.get(mine.index), ast_of.get(run.index)
    own_d, run_d = _dict_literal(a), _dict_literal(b)
    if r_keys and own_d is not None and run_d is not None:
        key = r_keys[0]
        if key not in run_d:
            return f"{name}[{key!r}] raises KeyError: {owner}'s {name} (line {run.start}) lacks it"
        if own_d.get(key) != run_d[key]:
            return (
                f"{name}[{key!r}] silently takes {owner}'s value {run_d[key]} "
                f"instead of {own_d.get(key)} (line {run.start} wins over {mine.start})"
            )
        return f"{name}[{key!r}] comes from {owner}'s {name} (line {run.start}); same value today"
    sa, sb = _signature(a), _signature(b)
    if sa or sb:
        return f"calls {owner}'s {sb or name} (line {run.start}) instead of its own {sa or name}"
    return f"{name} is rebound by {owner} at line {run.start}; its own binding is line {mine.start}"


def _owner_of(u: Unit, own: Ownership) -> str:
    """The unit's owner; shared code defined in a scanner's section is named after it."""
    who = own.owner.get(u.index, MAIN)
    if who == SHARED:
        for name, sec in own.sections.items():
            if sec.start <= u.start <= sec.end:
                return name
    return who


def find_contamination(
    scanners: list[Detected], slices: dict[str, Slice], own: Ownership, ast_of: dict[int, ast.stmt]
) -> list[Contamination]:
    """Every contaminated read in the original file, once per (scanner, name, owner)."""
    out: dict[tuple[str, str, str], Contamination] = {}

    def add(c: Contamination, key: str = "") -> None:
        out.setdefault((c.scanner, c.name, c.owner + key), c)

    mutators: dict[str, set[str]] = {}
    for d in scanners:
        for u in slices[d.name].units.values():
            for n in u.mutated:
                mutators.setdefault(n, set()).add(d.name)
    for d in scanners:
        if d.kind == "column":
            continue
        sl = slices[d.name]
        for u in sorted(sl.units.values(), key=lambda x: x.index):
            for r in u.reads:
                mine = own.resolve(d.name, r.name, u, r.in_function)
                run = own.runtime(r.name, u, r.in_function)
                if mine is not None and run is not None and mine is not run:
                    owner = _owner_of(run, own)
                    if owner != d.name:
                        add(
                            Contamination(
                                d.name,
                                r.name,
                                owner,
                                r.line,
                                _detail(r.keys, r.name, mine, run, owner, ast_of),
                            ),
                            "/" + (r.keys[0] if r.keys else ""),
                        )
                for w in own.global_writers(r.name):
                    wo = own.owner.get(w.index, SHARED)
                    if wo != d.name and w.index not in sl.units:
                        add(
                            Contamination(
                                d.name,
                                r.name,
                                wo,
                                r.line,
                                f"{w.binds[0]} (line {w.start}) rebinds {r.name} "
                                "with a global statement",
                            ),
                            "/",
                        )
                if mine is not None and own.owner.get(mine.index) == SHARED:
                    for other in sorted(mutators.get(r.name, set()) - {d.name}):
                        add(
                            Contamination(
                                d.name,
                                r.name,
                                other,
                                r.line,
                                f"shared {r.name} (line {mine.start}) is mutated in "
                                f"place by {other}",
                            )
                        )
    return sorted(out.values(), key=lambda c: (c.scanner, c.line, c.name))
