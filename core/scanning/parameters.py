"""Each scanner's parameters, in every shape traders write them, and the shared config.

A parameter has a name, its value as source text, a type, the line it is on and how it
was expressed: a module constant, a dict entry, a nested per-scanner dict, a class
attribute, a dataclass field, a ``params`` tuple, a method returning a list of dicts, a
function default, a function-local dict (and its ``__main__`` override), a keyword literal
in a call, or a bare literal in a comparison.
"""

import ast

from msgspec.structs import replace

from tapereader.core.scanning.boundaries import Detected
from tapereader.core.scanning.ownership import Ownership
from tapereader.core.scanning.parse import split_lines
from tapereader.core.scanning.report import Parameter
from tapereader.core.scanning.security import Secret
from tapereader.core.scanning.slicing import Slice

REDACTED = "<redacted>"
_STRUCTURAL_KW = frozenset(
    {
        "axis",
        "ddof",
        "level",
        "decimals",
        "ndigits",
        "verbose",
        "indent",
        "max_workers",
        "timeout",
        "n_jobs",
    }
)


def _type_of(node: ast.expr) -> str:
    try:
        v = ast.literal_eval(node)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return "expression"
    return type(v).__name__


class Segments:
    """Exact source text of ``ast`` nodes, with the line table computed once."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.raw = split_lines(text, keepends=True)
        self.starts = [0]
        for ln in self.raw:
            self.starts.append(self.starts[-1] + len(ln))

    def _at(self, line: int, col: int) -> int:
        raw = self.raw[line - 1]
        if raw.isascii():
            return self.starts[line - 1] + col
        return self.starts[line - 1] + len(raw.encode()[:col].decode(errors="replace"))

    def of(self, node: ast.expr) -> str:
        """The node's source text."""
        return self.text[
            self._at(node.lineno, node.col_offset) : self._at(node.end_lineno, node.end_col_offset)
        ]  # type: ignore[arg-type]


def _param(
    name: str, node: ast.expr, src: Segments, expressed: str, secrets: set[str]
) -> Parameter:
    if isinstance(node, ast.Constant) and node.value in secrets:
        return Parameter(name, REDACTED, "str", node.lineno, expressed)
    return Parameter(name, src.of(node), _type_of(node), node.lineno, expressed)


def _is_env_lookup(node: ast.expr) -> bool:
    """``os.environ["X"]``: what a hard-coded secret becomes in an isolated file."""
    return isinstance(node, ast.Subscript) and ast.unparse(node.value) == "os.environ"


def _is_literal(node: ast.expr) -> bool:
    try:
        ast.literal_eval(node)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return False
    return True


class Extractor:
    """Extracts parameters from one file's ``ast`` tree."""

    def __init__(self, tree: ast.Module, text: str, secrets: list[Secret]) -> None:
        self.src = Segments(text)
        self.secret_lines = {s.value for s in secrets}

    def assignment(self, node: ast.stmt, keep: set[str] | None, expressed: str) -> list[Parameter]:
        """Parameters bound by a module-level assignment."""
        if not isinstance(node, ast.Assign | ast.AnnAssign) or node.value is None:
            return []
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        names = [t.id for t in targets if isinstance(t, ast.Name)]
        if not names:
            return []
        return self._value(names[0], node.value, keep, expressed)

    def _value(
        self, name: str, value: ast.expr, keep: set[str] | None, expressed: str
    ) -> list[Parameter]:
        if isinstance(value, ast.Dict):
            out: list[Parameter] = []
            for k, v in zip(value.keys, value.values, strict=True):
                if not (isinstance(k, ast.Constant) and isinstance(k.value, str | int)):
                    continue
                if keep is not None and str(k.value) not in keep:
                    continue
                key = f"{name}.{k.value}"
                if isinstance(v, ast.Dict):
                    out.extend(self._value(key, v, None, "nested-dict"))
                else:
                    out.append(
                        _param(
                            key,
                            v,
                            self.src,
                            "dict-entry" if expressed == "module-constant" else expressed,
                            self.secret_lines,
                        )
                    )
            return out
        if _is_literal(value) or isinstance(value, ast.Constant) or _is_env_lookup(value):
            return [_param(name, value, self.src, expressed, self.secret_lines)]
        return []

    def class_params(self, node: ast.ClassDef) -> list[Parameter]:
        """Class attributes, dataclass fields, ``params`` tuples and parameter methods."""
        out: list[Parameter] = []
        is_dataclass = any(
            (isinstance(d, ast.Name) and d.id == "dataclass")
            or (
                isinstance(d, ast.Call)
                and getattr(d.func, "id", getattr(d.func, "attr", "")) == "dataclass"
            )
            or (isinstance(d, ast.Attribute) and d.attr == "dataclass")
            for d in node.decorator_list
        )
        for item in node.body:
            if (
                isinstance(item, ast.AnnAssign)
                and isinstance(item.target, ast.Name)
                and item.value is not None
                and _is_literal(item.value)
            ):
                kind = "dataclass-field" if is_dataclass else "class-attribute"
                out.append(_param(item.target.id, item.value, self.src, kind, self.secret_lines))
            elif (
                isinstance(item, ast.Assign)
                and len(item.targets) == 1
                and isinstance(item.targets[0], ast.Name)
            ):
                tname = item.targets[0].id
                if tname == "params" and isinstance(item.value, ast.Tuple | ast.List):
                    out.extend(self._params_tuple(item.value))
                elif isinstance(item.value, ast.Dict):
                    out.extend(self._value(tname, item.value, None, "class-attribute"))
                elif _is_literal(item.value):
                    out.append(
                        _param(tname, item.value, self.src, "class-attribute", self.secret_lines)
                    )
            elif isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef):
                out.extend(self._method_list(item))
                out.extend(self.defaults(item, f"{node.name}."))
                out.extend(self.body_params(item))
        return [p if p.container else replace(p, container=node.name) for p in out]

    def _params_tuple(self, value: ast.Tuple | ast.List) -> list[Parameter]:
        out = []
        for el in value.elts:
            if (
                isinstance(el, ast.Tuple)
                and len(el.elts) == 2
                and isinstance(el.elts[0], ast.Constant)
                and _is_literal(el.elts[1])
            ):
                out.append(
                    _param(
                        str(el.elts[0].value),
                        el.elts[1],
                        self.src,
                        "params-tuple",
                        self.secret_lines,
                    )
                )
        return out

    def _method_list(self, fn: ast.FunctionDef | ast.AsyncFunctionDef) -> list[Parameter]:
        out = []
        for node in ast.walk(fn):
            if isinstance(node, ast.Return) and isinstance(node.value, ast.List):
                for el in node.value.elts:
                    if not isinstance(el, ast.Dict):
                        continue
                    entry = {
                        k.value: v
                        for k, v in zip(el.keys, el.values, strict=True)
                        if isinstance(k, ast.Constant)
                    }
                    name = entry.get("name")
                    value = entry.get("default", entry.get("value"))
                    if isinstance(name, ast.Constant) and value is not None:
                        out.append(
                            _param(
                                str(name.value), value, self.src, "method-list", self.secret_lines
                            )
                        )
        return out

    def defaults(
        self, fn: ast.FunctionDef | ast.AsyncFunctionDef, prefix: str = ""
    ) -> list[Parameter]:
        """Literal default arguments (``prefix`` names the class of a method)."""
        a = fn.args
        pos = [*a.posonlyargs, *a.args]
        pairs = list(zip(pos[len(pos) - len(a.defaults) :], a.defaults, strict=True))
        pairs += [(k, d) for k, d in zip(a.kwonlyargs, a.kw_defaults, strict=True) if d is not None]
        return [
            replace(
                _param(arg.arg, d, self.src, "default-argument", self.secret_lines),
                container=prefix + fn.name,
            )
            for arg, d in pairs
            if _is_number(d)
        ]

    def body_params(self, fn: ast.AST) -> list[Parameter]:
        """Local dicts and constants, keyword literals and bare literals in comparisons."""
        out: list[Parameter] = []
        for node in ast.walk(fn):
            if (
                isinstance(node, ast.Assign)
                and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name)
            ):
                name = node.targets[0].id
                if (
                    isinstance(node.value, ast.Dict)
                    and node.value.keys
                    and all(_is_literal(v) for v in node.value.values)
                ):
                    out.extend(self._value(name, node.value, None, "local-dict"))
                elif (
                    isinstance(node.value, ast.Constant)
                    and isinstance(node.value.value, int | float)
                    and not isinstance(node.value.value, bool)
                ):
                    out.append(
                        _param(name, node.value, self.src, "local-constant", self.secret_lines)
                    )
            elif isinstance(node, ast.Call):
                callee = (
                    node.func.attr
                    if isinstance(node.func, ast.Attribute)
                    else getattr(node.func, "id", "call")
                )
                for kw in node.keywords:
                    if (
                        kw.arg
                        and kw.arg not in _STRUCTURAL_KW
                        and isinstance(kw.value, ast.Constant)
                        and isinstance(kw.value.value, int | float)
                        and not isinstance(kw.value.value, bool)
                    ):
                        out.append(
                            _param(
                                f"{callee}.{kw.arg}",
                                kw.value,
                                self.src,
                                "keyword-literal",
                                self.secret_lines,
                            )
                        )
            elif isinstance(node, ast.Compare):
                out.extend(self._comparison(node))
        return out

    def _comparison(self, node: ast.Compare) -> list[Parameter]:
        out = []
        sides = [node.left, *node.comparators]
        for i, op in enumerate(node.ops):
            left, right = sides[i], sides[i + 1]
            if _is_number(right) and not _is_number(left):
                out.append(
                    _param(
                        f"{_label(left)} {_OPS[type(op)]}",
                        right,
                        self.src,
                        "bare-literal",
                        self.secret_lines,
                    )
                )
            elif _is_number(left) and not _is_number(right):
                flipped = _FLIP[type(op)]
                out.append(
                    _param(
                        f"{_label(right)} {flipped}",
                        left,
                        self.src,
                        "bare-literal",
                        self.secret_lines,
                    )
                )
        return out


_OPS = {
    ast.Gt: ">",
    ast.GtE: ">=",
    ast.Lt: "<",
    ast.LtE: "<=",
    ast.Eq: "==",
    ast.NotEq: "!=",
    ast.Is: "is",
    ast.IsNot: "is not",
    ast.In: "in",
    ast.NotIn: "not in",
}
_FLIP = {
    ast.Gt: "<",
    ast.GtE: "<=",
    ast.Lt: ">",
    ast.LtE: ">=",
    ast.Eq: "==",
    ast.NotEq: "!=",
    ast.Is: "is",
    ast.IsNot: "is not",
    ast.In: "in",
    ast.NotIn: "not in",
}


def _is_number(node: ast.expr) -> bool:
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        node = node.operand
    return (
        isinstance(node, ast.Constant)
        and isinstance(node.value, int | float)
        and not isinstance(node.value, bool)
    )


def _label(node: ast.expr) -> str:
    """A short name for the operand of a comparison: ``df['rsi']`` and ``df.rsi`` give ``rsi``."""
    if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant):
        return str(node.slice.value)
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Name):
        return node.id
    return ast.unparse(node)


def scanner_parameters(
    d: Detected,
    sl: Slice,
    own: Ownership,
    ex: Extractor,
    ast_of: dict[int, ast.stmt],
) -> list[Parameter]:
    """Everything ``d`` is parameterised by, from its own code and its own bindings."""
    out: list[Parameter] = []
    entry_ast = ast_of.get(d.entry.index)
    if d.kind == "column":
        col_ast = _column_ast(entry_ast, d.start_line)
        if col_ast is not None:
            out.extend(ex.body_params(col_ast))
        return _dedupe(out)
    for idx, u in sorted(sl.units.items()):
        node = ast_of.get(idx)
        if node is None:
            continue
        mine = own.owner.get(idx) == d.name
        if u.kind == "assign" and (mine or idx in sl.dict_keep):
            expressed = "nested-dict" if idx in sl.dict_keep else "module-constant"
            out.extend(ex.assignment(node, sl.dict_keep.get(idx), expressed))
        elif u.kind == "class" and mine and isinstance(node, ast.ClassDef):
            out.extend(ex.class_params(node))
        elif u.kind == "def" and mine and isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            out.extend(ex.defaults(node))
            out.extend(ex.body_params(node))
    return _dedupe(out)


def main_overrides(
    d: Detected, sl: Slice, ex: Extractor, ast_of: dict[int, ast.stmt], params: list[Parameter]
) -> list[tuple[Parameter, Parameter]]:
    """Pairs (scanner's own value, ``__main__`` value) for one parameter set in two places."""
    local = {p.name.split(".", 1)[1]: p for p in params if p.expressed == "local-dict"}
    out = []
    for idx in sorted(sl.main):
        node = ast_of.get(idx)
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Dict):
            for p in ex.assignment(node, None, "main-override"):
                key = p.name.split(".", 1)[1] if "." in p.name else p.name
                if key in local and local[key].value != p.value:
                    out.append((local[key], p))
    return out


def _column_ast(fn: ast.stmt | None, line: int) -> ast.stmt | None:
    if fn is None:
        return None
    for node in ast.walk(fn):
        if isinstance(node, ast.Assign) and node.lineno == line:
            return node
    return None


def _dedupe(params: list[Parameter]) -> list[Parameter]:
    seen: dict[str, int] = {}
    out = []
    for p in params:
        n = seen.get(p.name, 0)
        seen[p.name] = n + 1
        out.append(p if n == 0 else replace(p, name=f"{p.name}@{p.line}"))
    return out


def global_config(
    sl_units: set[int], own: Ownership, ex: Extractor, ast_of: dict[int, ast.stmt]
) -> list[Parameter]:
    """The shared configuration some scanner reads: module constants owned by no scanner."""
    out: list[Parameter] = []
    for idx in sorted(sl_units):
        u = own.units[idx]
        node = ast_of.get(idx)
        if u.kind == "assign" and own.owner.get(idx) == "shared" and node is not None:
            out.extend(ex.assignment(node, None, "global"))
    return out
