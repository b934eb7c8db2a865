"""libcst as a second opinion on name resolution, and on byte-for-byte round trips.

The pipeline resolves names with its own reading of Python's scoping rules on the ``ast``
(fast enough for the 1-second budget). This module runs libcst's scope analysis on the same
file and lists every place the two disagree about which module-level names are read, where;
the tests require no disagreement on the corpus. It is slow (seconds on 1,500 lines), so it
is a check, not part of :func:`tapereader.core.scanning.analysis.analyse`.
"""

import builtins

import libcst as cst
from libcst.metadata import MetadataWrapper, PositionProvider, ScopeProvider

from tapereader.core.scanning.parse import ParsedModule
from tapereader.core.scanning.symbols import build_units

_BUILTINS = frozenset(dir(builtins))


def libcst_global_reads(text: str) -> set[tuple[str, int, int]]:
    """(name, line, column) of every read libcst resolves to module level or to nothing."""
    wrapper = MetadataWrapper(cst.parse_module(text), unsafe_skip_copy=True)
    scopes = wrapper.resolve(ScopeProvider)
    positions = wrapper.resolve(PositionProvider)
    module_scope = scopes[wrapper.module]
    out: set[tuple[str, int, int]] = set()
    for scope in {s for s in scopes.values() if s is not None}:
        for access in scope.accesses:
            node = access.node
            if not isinstance(node, cst.Name):
                continue
            refs = access.referents
            if refs and not all(a.scope is module_scope for a in refs):
                continue
            if not refs and node.value in _BUILTINS:
                continue
            pos = positions[node].start
            out.add((node.value, pos.line, pos.column))
    return out


def our_global_reads(parsed: ParsedModule) -> set[tuple[str, int, int]]:
    """The same, from the pipeline's own analysis (augmented-assignment targets aside)."""
    out = set()
    for u in build_units(parsed):
        for r in u.reads:
            out.add((r.name, r.line, r.column))
    return out


def disagreements(parsed: ParsedModule) -> list[str]:
    """Where our resolution and libcst's differ; an empty list means they agree."""
    theirs = libcst_global_reads(parsed.text)
    ours = our_global_reads(parsed)
    only_ours = ours - theirs
    # A ``global X; X += 1`` or module-level ``X += 1`` target is a read to us (the binding
    # must exist) and an assignment to libcst: not a disagreement about resolution.
    aug = _augmented_targets(parsed)
    only_ours = {r for r in only_ours if (r[0], r[1]) not in aug}
    return sorted(
        [f"only libcst: {n} at {ln}:{c}" for n, ln, c in theirs - ours]
        + [f"only ours: {n} at {ln}:{c}" for n, ln, c in only_ours]
    )


def _augmented_targets(parsed: ParsedModule) -> set[tuple[str, int]]:
    import ast

    return {
        (n.target.id, n.lineno)
        for n in ast.walk(parsed.tree)
        if isinstance(n, ast.AugAssign) and isinstance(n.target, ast.Name)
    }


def round_trips(text: str) -> bool:
    """libcst reproduces the file byte for byte (formatting and comments intact)."""
    return cst.parse_module(text).code == text
