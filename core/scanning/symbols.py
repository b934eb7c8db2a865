"""Top-level statements as units: what each one binds, reads and mutates at module level.

Name resolution follows Python's scoping rules on the ``ast``: a name is local to a
function if the function binds it anywhere (and does not declare it ``global``), class
bodies do not enclose their methods, comprehensions have their own scope. Every read that
is not local to an enclosing function is a read of a module-level name; which of the
module's bindings it gets is decided by :mod:`tapereader.core.scanning.ownership`.
"""

import ast
import builtins
from dataclasses import dataclass, field
from typing import Literal

from tapereader.core.scanning.parse import ParsedModule

UnitKind = Literal["import", "assign", "def", "class", "main", "docstring", "other"]
_BUILTINS = frozenset(dir(builtins))
_MUTATORS = frozenset(
    {
        "append",
        "extend",
        "update",
        "insert",
        "pop",
        "remove",
        "clear",
        "add",
        "discard",
        "setdefault",
        "popitem",
        "sort",
        "reverse",
        "__setitem__",
    }
)
_FUNC = ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda


@dataclass(slots=True)
class Read:
    """One read of a module-level (or undefined) name."""

    name: str
    line: int
    column: int
    in_function: bool
    keys: tuple[str, ...] = ()
    mutates: bool = False


@dataclass(slots=True)
class Unit:
    """One top-level statement (or one statement of the ``__main__`` block)."""

    index: int
    node: ast.stmt
    kind: UnitKind
    start: int
    end: int
    binds: tuple[str, ...]
    in_main: bool = False
    reads: list[Read] = field(default_factory=list)
    global_writes: set[str] = field(default_factory=set)
    is_async: bool = False
    _names: set[str] | None = None

    @property
    def read_names(self) -> set[str]:
        """Every module-level name this unit reads."""
        if self._names is None:
            self._names = {r.name for r in self.reads}
        return self._names

    @property
    def mutated(self) -> set[str]:
        """Module-level names whose object this unit mutates in place."""
        return {r.name for r in self.reads if r.mutates}


def is_main_guard(node: ast.stmt) -> bool:
    """``if __name__ == "__main__":``."""
    if not isinstance(node, ast.If) or not isinstance(node.test, ast.Compare):
        return False
    t = node.test
    sides = [t.left, *t.comparators]
    return (
        len(sides) == 2
        and isinstance(t.ops[0], ast.Eq)
        and any(isinstance(s, ast.Name) and s.id == "__name__" for s in sides)
        and any(isinstance(s, ast.Constant) and s.value == "__main__" for s in sides)
    )


def _target_names(t: ast.expr) -> list[str]:
    if isinstance(t, ast.Name):
        return [t.id]
    if isinstance(t, ast.Tuple | ast.List):
        return [n for el in t.elts for n in _target_names(el)]
    if isinstance(t, ast.Starred):
        return _target_names(t.value)
    return []


def _binds(node: ast.stmt) -> tuple[UnitKind, tuple[str, ...], bool]:
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
        return "def", (node.name,), isinstance(node, ast.AsyncFunctionDef)
    if isinstance(node, ast.ClassDef):
        return "class", (node.name,), False
    if isinstance(node, ast.Import):
        return "import", tuple(a.asname or a.name.split(".")[0] for a in node.names), False
    if isinstance(node, ast.ImportFrom):
        return "import", tuple(a.asname or a.name for a in node.names), False
    if isinstance(node, ast.Assign):
        return "assign", tuple(n for t in node.targets for n in _target_names(t)), False
    if isinstance(node, ast.AnnAssign | ast.AugAssign):
        return "assign", tuple(_target_names(node.target)), False
    if (
        isinstance(node, ast.Expr)
        and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, str)
    ):
        return "docstring", (), False
    names = [
        n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)
    ]
    return "other", tuple(dict.fromkeys(names)), False


def _start(node: ast.stmt) -> int:
    decos = getattr(node, "decorator_list", [])
    return min([node.lineno, *(d.lineno for d in decos)])


def build_units(parsed: ParsedModule) -> list[Unit]:
    """Split the module into units and attach every module-level read to its unit."""
    units: list[Unit] = []
    for node in parsed.tree.body:
        if is_main_guard(node):
            units.append(Unit(len(units), node, "main", node.lineno, node.lineno, ()))
            for inner in node.body:
                kind, names, is_async = _binds(inner)
                units.append(
                    Unit(
                        len(units),
                        inner,
                        kind,
                        _start(inner),
                        inner.end_lineno or inner.lineno,
                        names,
                        True,
                        is_async=is_async,
                    )
                )
            continue
        kind, names, is_async = _binds(node)
        units.append(
            Unit(
                len(units),
                node,
                kind,
                _start(node),
                node.end_lineno or node.lineno,
                names,
                is_async=is_async,
            )
        )
    for u in units:
        if u.kind != "main":
            _Reads(u, parsed).run()
    return units


class _Reads:
    """Collects one unit's module-level reads, by Python's scoping rules."""

    def __init__(self, unit: Unit, parsed: ParsedModule) -> None:
        self.unit = unit
        self.parsed = parsed
        self.parents: dict[int, ast.AST] = {}

    def run(self) -> None:
        self._visit(self.unit.node, [])
        self.unit.reads.sort(key=lambda r: (r.line, r.column))

    def _locals(self, fn: ast.AST) -> tuple[set[str], set[str]]:
        """Names a function (or comprehension) binds, and those it declares global."""
        bound: set[str] = set()
        glob: set[str] = set()
        if isinstance(fn, _FUNC):
            a = fn.args
            bound.update(x.arg for x in [*a.posonlyargs, *a.args, *a.kwonlyargs])
            bound.update(x.arg for x in (a.vararg, a.kwarg) if x is not None)
        if isinstance(
            fn, ast.comprehension | ast.ListComp | ast.SetComp | ast.DictComp | ast.GeneratorExp
        ):
            for gen in fn.generators:  # type: ignore[union-attr]
                bound.update(_target_names(gen.target))
            return bound, glob
        body = fn.body if isinstance(fn.body, list) else [fn.body]  # type: ignore[union-attr]
        stack = list(body)
        while stack:
            n = stack.pop()
            if isinstance(n, ast.Global | ast.Nonlocal):
                if isinstance(n, ast.Global):
                    glob.update(n.names)
                else:
                    bound.update(n.names)
            elif isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                bound.add(n.name)
                stack.extend(getattr(n, "decorator_list", []))
                continue  # its body is its own scope
            elif isinstance(
                n, ast.Lambda | ast.ListComp | ast.SetComp | ast.DictComp | ast.GeneratorExp
            ):
                continue
            elif isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store | ast.Del):
                bound.add(n.id)
            elif isinstance(n, ast.alias):
                bound.add(n.asname or n.name.split(".")[0])
            elif isinstance(n, ast.ExceptHandler) and n.name:
                bound.add(n.name)
            elif isinstance(n, ast.NamedExpr):
                bound.update(_target_names(n.target))
            stack.extend(ast.iter_child_nodes(n))
        return bound - glob, glob

    def _visit(self, node: ast.AST, scopes: list[tuple[set[str], set[str], bool]]) -> None:
        """``scopes``: (locals, globals-declared, is_class) from outermost to innermost."""
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            for d in node.decorator_list:
                self._visit(d, scopes)
            if isinstance(node, ast.ClassDef):
                for b in [*node.bases, *node.keywords]:
                    self._visit(b, scopes)
                own = {n for stmt in node.body for n in _class_binds(stmt)}
                for stmt in node.body:
                    self._visit(stmt, [*scopes, (own, set(), True)])
                return
            a = node.args
            for d in [*a.defaults, *(k for k in a.kw_defaults if k is not None)]:
                self._visit(d, scopes)
            for arg in [*a.posonlyargs, *a.args, *a.kwonlyargs, a.vararg, a.kwarg]:
                if arg is not None and arg.annotation is not None:
                    self._visit(arg.annotation, scopes)
            if node.returns is not None:
                self._visit(node.returns, scopes)
            loc, glob = self._locals(node)
            inner = [*scopes, (loc, glob, False)]
            for stmt in node.body:
                self._visit(stmt, inner)
            return
        if isinstance(node, ast.Lambda):
            for d in [*node.args.defaults, *(k for k in node.args.kw_defaults if k)]:
                self._visit(d, scopes)
            loc, glob = self._locals(node)
            self._visit(node.body, [*scopes, (loc, glob, False)])
            return
        if isinstance(node, ast.ListComp | ast.SetComp | ast.DictComp | ast.GeneratorExp):
            # The first iterable is evaluated in the enclosing scope.
            self._visit(node.generators[0].iter, scopes)
            loc, _ = self._locals(node)
            inner = [*scopes, (loc, set(), False)]
            for i, gen in enumerate(node.generators):
                if i:
                    self._visit(gen.iter, inner)
                for cond in gen.ifs:
                    self._visit(cond, inner)
            for part in ("elt", "key", "value"):
                if hasattr(node, part):
                    self._visit(getattr(node, part), inner)
            return
        if isinstance(node, ast.Name):
            self._name(node, scopes)
            return
        parents = self.parents
        for child in ast.iter_child_nodes(node):
            parents[id(child)] = node  # only the chains around a Name are ever asked for
            self._visit(child, scopes)

    def _name(self, node: ast.Name, scopes: list[tuple[set[str], set[str], bool]]) -> None:
        name = node.id
        in_function = any(not is_class for _, _, is_class in scopes)
        for i in range(len(scopes) - 1, -1, -1):
            loc, glob, is_class = scopes[i]
            if name in glob:
                break
            if is_class and i != len(scopes) - 1:
                continue  # a class body does not enclose nested functions
            if name in loc:
                return
        store = isinstance(node.ctx, ast.Store | ast.Del)
        if store:
            if in_function:  # declared global: rebinds the module's name
                self.unit.global_writes.add(name)
                parent = self.parents.get(id(node))
                if not isinstance(parent, ast.AugAssign):
                    return
            else:
                parent = self.parents.get(id(node))
                if not isinstance(parent, ast.AugAssign):
                    return
        if name in _BUILTINS and not store:
            return
        keys, mutates = self._context(node)
        col = self.parsed.offset(node.lineno, node.col_offset) - self.parsed.line_offset(
            node.lineno
        )
        self.unit.reads.append(Read(name, node.lineno, col, in_function, keys, mutates))

    def _context(self, node: ast.Name) -> tuple[tuple[str, ...], bool]:
        keys: list[str] = []
        cur: ast.AST = node
        parent = self.parents.get(id(cur))
        while isinstance(parent, ast.Subscript) and parent.value is cur:
            sl = parent.slice
            if isinstance(sl, ast.Constant) and isinstance(sl.value, str | int):
                keys.append(str(sl.value))
            else:
                break
            cur, parent = parent, self.parents.get(id(parent))
        mutates = False
        top = cur
        if isinstance(parent, ast.Attribute) and parent.value is top:
            grand = self.parents.get(id(parent))
            mutates = (
                parent.attr in _MUTATORS and isinstance(grand, ast.Call) and grand.func is parent
            )
            mutates = mutates or isinstance(parent.ctx, ast.Store | ast.Del)
        else:
            stores = (ast.Store, ast.Del)
            mutates = (isinstance(top, ast.Subscript) and isinstance(top.ctx, stores)) or (
                isinstance(parent, ast.Subscript) and isinstance(parent.ctx, stores)
            )
        return tuple(keys), mutates


def _class_binds(stmt: ast.stmt) -> set[str]:
    if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return {stmt.name}
    out = set()
    for n in ast.walk(stmt):
        if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store):
            out.add(n.id)
    return out
