"""Writing one standalone module per scanner from its slice.

Statements are copied from the original source text, so formatting and comments survive
byte for byte; only what must change is edited in place: another column scanner's
assignment is cut out of a shared function, a shared dict of per-scanner sub-dicts keeps
only this scanner's entries, an import keeps only the names used, and every hard-coded
secret becomes an environment-variable lookup. Section banners are dropped.
"""

import ast

from tapereader.core.scanning.banners import is_banner_line
from tapereader.core.scanning.boundaries import Detected
from tapereader.core.scanning.parse import ParsedModule
from tapereader.core.scanning.security import Secret
from tapereader.core.scanning.slicing import Slice, dict_value
from tapereader.core.scanning.symbols import Unit


def _comments_above(parsed: ParsedModule, line: int) -> tuple[int, list[str]]:
    """The run of comment lines right above ``line``, without banners and box titles."""
    first = line
    while first > 1 and parsed.lines[first - 2].strip().startswith("#"):
        first -= 1
    block = parsed.lines[first - 1 : line - 1]
    rule = [is_banner_line(t) for t in block]
    boxed = [
        not rule[i] and ((i > 0 and rule[i - 1]) or (i + 1 < len(block) and rule[i + 1]))
        for i in range(len(block))
    ]
    return first, [t + "\n" for i, t in enumerate(block) if not (rule[i] or boxed[i])]


def _edits_for(parsed: ParsedModule, u: Unit, d: Detected, sl: Slice) -> list[tuple[int, int, str]]:
    edits: list[tuple[int, int, str]] = []
    for stmt in sl.drop_statements:
        if u.start <= stmt.lineno <= u.end:
            first, _ = _comments_above(parsed, stmt.lineno)
            edits.append(
                (
                    parsed.line_offset(first),
                    parsed.line_offset((stmt.end_lineno or stmt.lineno) + 1),
                    "",
                )
            )
    keep = sl.dict_keep.get(u.index)
    value = dict_value(u) if keep is not None else None
    if value is not None and keep is not None:
        entries = [
            parsed.text[
                parsed.offset(k.lineno, k.col_offset) : parsed.offset(
                    v.end_lineno, v.end_col_offset
                )
            ]  # type: ignore[arg-type]
            for k, v in zip(value.keys, value.values, strict=True)
            if isinstance(k, ast.Constant) and k.value in keep
        ]
        if value.lineno == value.end_lineno or not value.keys or value.keys[0] is None:
            text = "{" + ", ".join(entries) + "}"
        else:
            first_key = value.keys[0]
            indent = parsed.lines[first_key.lineno - 1][
                : len(parsed.lines[first_key.lineno - 1])
                - len(parsed.lines[first_key.lineno - 1].lstrip())
            ]
            last = parsed.lines[(value.end_lineno or value.lineno) - 1]
            closing = last[: len(last) - len(last.lstrip())]
            text = "{\n" + "".join(f"{indent}{e},\n" for e in entries) + closing + "}"
        edits.append(
            (
                parsed.offset(value.lineno, value.col_offset),
                parsed.offset(value.end_lineno, value.end_col_offset),
                text,
            )
        )  # type: ignore[arg-type]
    return edits


def _unit_text(
    parsed: ParsedModule, u: Unit, edits: list[tuple[int, int, str]], dedent: bool = False
) -> str:
    _, comments = _comments_above(parsed, u.start)
    a = parsed.line_offset(u.start)
    b = parsed.line_offset(u.end + 1) if u.end < len(parsed.raw_lines) else len(parsed.text)
    text = parsed.text[a:b]
    for s, e, rep in sorted(edits, reverse=True):
        if a <= s <= e <= b:
            text = text[: s - a] + rep + text[e - a :]
    if not text.endswith("\n"):
        text += "\n"
    body = "".join(comments) + text
    if dedent:
        indent = parsed.lines[u.start - 1][
            : len(parsed.lines[u.start - 1]) - len(parsed.lines[u.start - 1].lstrip())
        ]
        body = "".join(
            ln[len(indent) :] if ln.startswith(indent) else ln
            for ln in body.splitlines(keepends=True)
        )
    return body


def _alias(a: ast.alias) -> str:
    return a.name + (f" as {a.asname}" if a.asname else "")


def _import_text(parsed: ParsedModule, u: Unit, wanted: set[str] | None) -> str | None:
    node = u.node
    assert isinstance(node, ast.Import | ast.ImportFrom)
    names = node.names
    kept = (
        names
        if wanted is None
        else [
            a
            for a in names
            if (a.asname or (a.name.split(".")[0] if isinstance(node, ast.Import) else a.name))
            in wanted
        ]
    )
    if not kept:
        return None
    if len(kept) == len(names):
        return _unit_text(parsed, u, [], dedent=u.in_main)
    if isinstance(node, ast.Import):
        return "import " + ", ".join(_alias(a) for a in kept) + "\n"
    module = "." * node.level + (node.module or "")
    return f"from {module} import " + ", ".join(_alias(a) for a in kept) + "\n"


def render(
    parsed: ParsedModule,
    units: list[Unit],
    d: Detected,
    sl: Slice,
    secrets: list[Secret],
    header: str,
) -> str:
    """The isolated module's source text."""
    header = header.replace('"""', "'''")
    future = [
        u
        for u in units
        if isinstance(u.node, ast.ImportFrom) and u.node.module == "__future__" and not u.in_main
    ]
    imports: list[str] = []
    bound: set[str] = set()
    for idx in sorted(set(sl.import_names) | sl.star_imports):
        u = units[idx]
        if u in future:
            continue
        text = _import_text(parsed, u, None if idx in sl.star_imports else sl.import_names[idx])
        if text:
            imports.append(text)
            bound.update(sl.import_names.get(idx, set()))
    body: list[tuple[bool, str]] = []
    for idx in sorted(sl.units):
        u = sl.units[idx]
        body.append(
            (u.kind in ("def", "class"), _unit_text(parsed, u, _edits_for(parsed, u, d, sl)))
        )
    for idx in sorted(sl.hoisted):
        body.append((False, _unit_text(parsed, sl.hoisted[idx], [], dedent=True)))
    main = ""
    if sl.main:
        guard = next(u for u in units if u.kind == "main")
        main = (
            parsed.lines[guard.start - 1]
            + "\n"
            + "".join(_unit_text(parsed, sl.main[i], []) for i in sorted(sl.main))
        )
    literal = {_literal_text(parsed, s): s.env_var for s in secrets}
    code = "".join(t for _, t in body) + main
    if any(lit in code for lit in literal) and "os" not in bound:
        imports.insert(0, "import os\n")
    out = [f'"""{header}"""\n']
    out += [_unit_text(parsed, u, []) for u in future]
    if imports:
        out.append("\n" + "".join(imports))
    for i, (is_def, text) in enumerate(body):
        prev_def = i > 0 and body[i - 1][0]
        if i == 0:
            gap = "\n\n" if is_def else "\n"
        else:
            gap = "\n\n" if (is_def or prev_def) else ("\n" if text.startswith("#") else "")
        out.append(gap + text)
    if main:
        out.append("\n\n" + main)
    result = "".join(out)
    for lit, env in literal.items():
        result = result.replace(lit, f'os.environ["{env}"]')
    return result


def _literal_text(parsed: ParsedModule, s: Secret) -> str:
    """The secret's string literal exactly as written in the source."""
    for node in ast.walk(parsed.tree):
        if isinstance(node, ast.Constant) and node.value == s.value and node.lineno == s.line:
            return parsed.segment(node)
    return repr(s.value)


def header_text(d: Detected, file_name: str, sha256: str, n_params: int) -> str:
    """The docstring that says where an isolated scanner came from."""
    return (
        f"Scanner {d.name!r} ({d.kind}), isolated by tapereader from {file_name}\n"
        f"(sha256 {sha256[:16]}), lines {d.start_line}-{d.end_line}; "
        f"{n_params} parameters; detection confidence {d.confidence:.2f}.\n"
    )
