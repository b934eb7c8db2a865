"""A scanner's dependencies: exactly the imports, globals and helpers it reaches, transitively.

The slice follows the bindings chosen by :meth:`Ownership.resolve`, so a scanner takes its
own parameter block, the shared configuration it reads, and nothing another scanner owns.
A shared config dict holding one sub-dict per scanner is cut down to the sub-dicts the
scanner reads; a function holding several column-assignment scanners keeps only this
scanner's assignment; ``__main__`` is cut to the statements that run this scanner.
"""

import ast
from collections.abc import Callable
from dataclasses import dataclass, field

from tapereader.core.scanning.boundaries import Detected
from tapereader.core.scanning.ownership import SHARED, Ownership
from tapereader.core.scanning.symbols import Unit


@dataclass(slots=True)
class Slice:
    """What one scanner's isolated file is made of."""

    scanner: str
    units: dict[int, Unit] = field(default_factory=dict)
    import_names: dict[int, set[str]] = field(default_factory=dict)
    hoisted: dict[int, Unit] = field(default_factory=dict)
    main: dict[int, Unit] = field(default_factory=dict)
    dict_keep: dict[int, set[str]] = field(default_factory=dict)
    drop_statements: list[ast.stmt] = field(default_factory=list)
    unresolved: set[str] = field(default_factory=set)
    star_imports: set[int] = field(default_factory=set)

    @property
    def helpers(self) -> list[Unit]:
        """Functions and classes the scanner calls, besides its entry."""
        return [u for u in self.units.values() if u.kind in ("def", "class")]


def slice_scanner(
    d: Detected,
    all_scanners: list[Detected],
    own: Ownership,
    code_of: Callable[[Unit], str] = lambda u: "",
) -> Slice:
    """Compute ``d``'s slice (``code_of`` gives a unit's source, to spot column names)."""
    s = Slice(d.name)
    units = own.units
    entry_names = {x.entry.binds[0] for x in all_scanners if x.kind != "column"}
    other_entries = entry_names - ({d.entry.binds[0]} if d.kind != "column" else set())
    drop_spans: list[tuple[int, int]] = []
    if d.kind == "column":
        others = [
            x
            for x in all_scanners
            if x.kind == "column"
            and x.entry.index == d.entry.index
            and x.name != d.name
            and x.column_stmt is not None
        ]
        s.drop_statements = [x.column_stmt for x in others if x.column_stmt is not None]
        drop_spans = [(x.start_line, x.end_line) for x in others]
    todo: list[Unit] = [d.entry]
    s.units[d.entry.index] = d.entry

    def need(name: str, at: Unit | None, in_function: bool) -> None:
        b = own.resolve(d.name, name, at, in_function)
        if b is None:
            s.unresolved.add(name)
            return
        if b.kind == "import":
            s.import_names.setdefault(b.index, set()).add(name)
            return
        if b.in_main:
            if at is not None and at.in_main:
                return  # the __main__ slice carries its own bindings
            if b.index not in s.hoisted:
                s.hoisted[b.index] = b
                todo.append(b)
            return
        if b.index not in s.units:
            s.units[b.index] = b
            todo.append(b)

    target = d.entry.binds[0]
    runner = _runner(d, units, other_entries) if d.kind != "column" else None
    if runner is not None:  # main() runs every scanner: keep a main() that runs this one
        unit, dropped = runner
        s.drop_statements += dropped
        drop_spans += [(st.lineno, st.end_lineno or st.lineno) for st in dropped]
        s.units[unit.index] = unit
        todo.append(unit)
        target = unit.binds[0]
    while todo:
        u = todo.pop()
        for r in u.reads:
            if any(a <= r.line <= b for a, b in drop_spans):
                continue  # in a statement cut out of this scanner's copy
            need(r.name, u, r.in_function and not u.in_main)
    _main_slice(d, s, units, all_scanners, other_entries, code_of, todo, target)
    while todo:  # what the __main__ slice needs
        u = todo.pop()
        for r in u.reads:
            need(r.name, u, r.in_function and not u.in_main)
    if s.unresolved:
        s.star_imports = {u.index for u in units if u.kind == "import" and "*" in u.binds}
    _split_dicts(s, own)
    return s


def _main_slice(
    d: Detected,
    s: Slice,
    units: list[Unit],
    all_scanners: list[Detected],
    other_entries: set[str],
    own_code: Callable[[Unit], str],
    todo: list[Unit],
    target: str,
) -> None:
    main_units = [u for u in units if u.in_main]
    other_columns = {f'"{x.name}"' for x in all_scanners if x.kind == "column" and x is not d}
    other_columns |= {f"'{x.name}'" for x in all_scanners if x.kind == "column" and x is not d}

    def foreign(u: Unit) -> bool:
        code = own_code(u)
        return bool(u.read_names & other_entries) or any(c in code for c in other_columns)

    keep = {u.index for u in main_units if target in u.read_names and not foreign(u)}
    if not keep:
        return
    bound: set[str] = set()
    for u in main_units:  # forward: what uses the results, e.g. printing them
        if u.index in keep or (u.read_names & bound and not foreign(u)):
            keep.add(u.index)
            bound.update(u.binds)
    # Backward slice: earlier __main__ statements that bind what the kept ones read.
    for u in reversed(main_units):
        if u.index in keep:
            continue
        later = [k for k in main_units if k.index in keep and k.start > u.start]
        wanted = set().union(*(k.read_names for k in later)) if later else set()
        if set(u.binds) & wanted and not foreign(u):
            keep.add(u.index)
    for u in main_units:
        if u.index in keep and u.index not in s.hoisted:
            s.main[u.index] = u
            todo.append(u)


def _loads(st: ast.stmt) -> set[str]:
    return {n.id for n in ast.walk(st) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}


def _stores(st: ast.stmt) -> set[str]:
    out = {n.id for n in ast.walk(st) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    # parser.add_argument(...) changes parser: later readers of parser depend on it.
    if isinstance(st, ast.Expr) and isinstance(st.value, ast.Call):
        f = st.value.func
        if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name):
            out.add(f.value.id)
    return out


def _runner(
    d: Detected, units: list[Unit], other_entries: set[str]
) -> tuple[Unit, list[ast.stmt]] | None:
    """A function called from ``__main__`` that runs this scanner among others, and the
    statements of its body to cut: those that run another scanner, and what depends on them."""
    target = d.entry.binds[0]
    called = set().union(*(u.read_names for u in units if u.in_main)) if units else set()
    for u in units:
        node = u.node
        if u.in_main or not isinstance(node, ast.FunctionDef) or node.name not in called:
            continue
        body = node.body
        if not any(target in _loads(st) for st in body):
            continue
        dropped: set[int] = {i for i, st in enumerate(body) if _loads(st) & other_entries}
        changed = True
        while changed:  # also cut what reads a name only cut statements bound
            changed = False
            for i, st in enumerate(body):
                if i in dropped:
                    continue
                kept_binds = (
                    set().union(
                        *(_stores(b) for j, b in enumerate(body) if j < i and j not in dropped)
                    )
                    if i
                    else set()
                )
                lost = (
                    set().union(*(_stores(b) for j, b in enumerate(body) if j < i and j in dropped))
                    if i
                    else set()
                )
                if _loads(st) & (lost - kept_binds):
                    dropped.add(i)
                    changed = True
        kept = [st for i, st in enumerate(body) if i not in dropped]
        if not dropped or not any(target in _loads(st) for st in kept):
            return None
        return u, [st for i, st in enumerate(body) if i in dropped]
    return None


def _split_dicts(s: Slice, own: Ownership) -> None:
    """Cut a shared dict of per-scanner sub-dicts down to the keys this scanner reads."""
    for idx, u in list(s.units.items()):
        if u.kind != "assign" or own.owner.get(idx) != SHARED or len(u.binds) != 1:
            continue
        name = u.binds[0]
        value = dict_value(u)
        if value is None:
            continue
        reads = [
            r
            for k in list(s.units.values()) + list(s.main.values())
            for r in k.reads
            if r.name == name and k is not u
        ]
        if not reads or any(not r.keys for r in reads):
            continue
        keys = {r.keys[0] for r in reads}
        subdicts = {
            k.value
            for k, v in zip(value.keys, value.values, strict=True)
            if isinstance(k, ast.Constant) and isinstance(k.value, str) and isinstance(v, ast.Dict)
        }
        if keys <= subdicts and len(subdicts) > len(keys):
            s.dict_keep[idx] = keys


def dict_value(u: Unit) -> ast.Dict | None:
    """The dict literal a unit assigns, if that is what it does."""
    node = u.node
    if isinstance(node, ast.Assign | ast.AnnAssign) and isinstance(node.value, ast.Dict):
        return node.value
    return None
