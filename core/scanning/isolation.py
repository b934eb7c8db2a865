"""Proving an isolated scanner is isolated, from its generated text alone.

The generated module is compiled, parsed again and every value it binds is extracted the
same way as from the original: for each of the scanner's parameters it must bind exactly
the scanner's own values, and no value that only another scanner defines may appear.
The runtime half of the proof (values bound at import, identical output on the same
data) runs in the sandbox; see :mod:`tapereader.core.scanning.proof`.
"""

import ast
import re
from dataclasses import dataclass, field

from tapereader.core.scanning.parameters import REDACTED, Extractor, Parameter
from tapereader.core.scanning.parse import split_lines

_ENV = re.compile(r"^os\.environ\[['\"]\w+['\"]\]$")


@dataclass(slots=True)
class IsolationCheck:
    """The static proof for one generated scanner."""

    compiles: bool
    parameters_equal: bool
    mismatched: list[str] = field(default_factory=list)
    foreign: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every part of the proof holds."""
        return self.compiles and self.parameters_equal and not self.foreign


def _same(a: Parameter, b: Parameter) -> bool:
    if a.value == b.value:
        return True
    return REDACTED in (a.value, b.value) and bool(_ENV.match(a.value) or _ENV.match(b.value))


def statement_key(lines: list[str], node: ast.stmt) -> str:
    """A statement's whole lines (decorators included): equal text, equal parameters."""
    start = min([node.lineno, *(d.lineno for d in getattr(node, "decorator_list", []))])
    return "\n".join(lines[start - 1 : node.end_lineno])


def bound_values(
    text: str, tree: ast.Module, cache: dict[str, set[tuple[str, str]]] | None = None
) -> dict[str, set[str]]:
    """Every value the generated module binds to each parameter name, in any shape.

    ``cache`` maps statement text to its pairs, filled from the original file: statements
    copied unchanged are not extracted twice (their text, hence their pairs, are equal).
    """
    ex = Extractor(tree, text, [])
    lines = split_lines(text)
    out: dict[str, set[str]] = {}
    for node in tree.body:
        stmts = node.body if isinstance(node, ast.If) else [node]
        for stmt in stmts:
            key = statement_key(lines, stmt)
            pairs = cache.get(key) if cache is not None else None
            if pairs is None:
                pairs = all_pairs(ex, stmt)
            for name, value in pairs:
                out.setdefault(name, set()).add(value)
    return out


def _base(name: str) -> str:
    return name.split("@", 1)[0]


def check_isolated(
    text: str,
    own_params: list[Parameter],
    shared: dict[str, set[str]],
    foreign_pairs: dict[str, set[tuple[str, str]]],
    other_entries: set[str],
    other_columns: set[str],
    cache: dict[str, set[tuple[str, str]]] | None = None,
) -> IsolationCheck:
    """Compile ``text``; its values for the scanner's parameters must be the scanner's own.

    ``shared`` holds the values shared code binds (a shared helper may reuse a parameter
    name); ``foreign_pairs`` the (name, value) pairs only another scanner's code binds.
    """
    try:
        tree = ast.parse(text)
        compile(tree, "<isolated>", "exec")
    except SyntaxError as exc:
        return IsolationCheck(False, False, [f"does not compile: {exc.msg} (line {exc.lineno})"])
    bound = bound_values(text, tree, cache)
    want: dict[str, set[str]] = {}
    for p in own_params:
        want.setdefault(_base(p.name), set()).add(p.value)
    mismatched = []
    for name, values in sorted(want.items()):
        got = bound.get(name, set())
        env_bound = any(_ENV.match(g) for g in got)
        missing = {v for v in values - got if not (v == REDACTED and env_bound)}
        extra = {
            g
            for g in got - values - shared.get(name, set())
            if not (_ENV.match(g) and REDACTED in values)
        }
        if missing or extra:
            mismatched.append(f"{name}: own {sorted(values)}, isolated file binds {sorted(got)}")
    mine = {(_base(p.name), p.value) for p in own_params}
    foreign = sorted(
        f"{owner}: {name} = {value}"
        for owner, pairs in foreign_pairs.items()
        for name, value in pairs
        if (name, value) not in mine and value in bound.get(name, set())
    )
    defined = {
        n.name
        for n in tree.body
        if isinstance(n, ast.FunctionDef | ast.ClassDef | ast.AsyncFunctionDef)
    }
    foreign += sorted(f"entry {e} of another scanner" for e in other_entries & defined)
    assigned = {
        n.slice.value
        for n in ast.walk(tree)
        if isinstance(n, ast.Subscript)
        and isinstance(n.ctx, ast.Store)
        and isinstance(n.slice, ast.Constant)
    }
    foreign += sorted(f"column {c} of another scanner" for c in other_columns & assigned)
    return IsolationCheck(True, not mismatched, mismatched, foreign)


def all_pairs(ex: Extractor, node: ast.stmt) -> set[tuple[str, str]]:
    """Every (parameter name, value) a statement binds, in any of the shapes."""
    pairs = {(p.name, p.value) for p in [*ex.assignment(node, None, "x"), *ex.body_params(node)]}
    if isinstance(node, ast.ClassDef):
        pairs.update((p.name, p.value) for p in ex.class_params(node))
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
        pairs.update((p.name, p.value) for p in ex.defaults(node))
    return pairs


def unit_ast(units: list) -> dict[int, ast.stmt]:
    """Map each unit's index to its ``ast`` statement."""
    return {u.index: u.node for u in units if u.kind != "main"}
