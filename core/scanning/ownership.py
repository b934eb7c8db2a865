"""Who owns each top-level binding, and which binding a scanner reads.

Scope analysis (ours, or libcst's) lists every binding a name may refer to, in no order.
Python's rule decides which one runs: inside a function called after import, the last module-level
binding in the file (including ``__main__`` and ``global`` rebinds) wins; at module level,
the last binding before the read wins. In the isolated file each scanner instead keeps the
binding from its own section, which is exactly what contamination is measured against.
"""

from dataclasses import dataclass

from tapereader.core.scanning.boundaries import Detected, Section
from tapereader.core.scanning.symbols import Unit

SHARED = "shared"
MAIN = "__main__"
UNUSED = "unused"


@dataclass(slots=True)
class Ownership:
    """Owner of every unit, and per-scanner sections."""

    owner: dict[int, str]
    sections: dict[str, Section]
    by_name: dict[str, list[Unit]]
    units: list[Unit]

    def resolve(self, scanner: str, name: str, at: Unit | None, in_function: bool) -> Unit | None:
        """The binding of ``name`` that ``scanner``'s isolated file keeps."""
        cands = self.by_name.get(name, [])
        if at is not None and not in_function and not at.in_main:
            cands = [u for u in cands if u.start < at.start]
        for wanted in (scanner, SHARED, UNUSED):
            mine = [u for u in cands if not u.in_main and self.owner.get(u.index) == wanted]
            if mine:
                return mine[-1]
        main = [u for u in cands if u.in_main]
        if main:
            return main[-1]
        return cands[-1] if cands else None

    def runtime(self, name: str, at: Unit | None, in_function: bool) -> Unit | None:
        """The binding Python actually uses when the whole file runs as one module."""
        cands = self.by_name.get(name, [])
        if at is not None and not in_function:
            cands = [u for u in cands if u.start < at.start]
        return cands[-1] if cands else None

    def global_writers(self, name: str) -> list[Unit]:
        """Functions that rebind ``name`` through a ``global`` statement."""
        return [u for u in self.units if name in u.global_writes]


def assign_owners(
    units: list[Unit], scanners: list[Detected], sections: list[Section], n_lines: int
) -> Ownership:
    """Decide the owner of every top-level unit from sections and what each scanner reaches."""
    by_name: dict[str, list[Unit]] = {}
    for u in units:
        if u.kind == "main":
            continue
        for n in u.binds:
            by_name.setdefault(n, []).append(u)
    entries = {d.entry.index: d.name for d in scanners if d.kind != "column"}
    own_sections = _scanner_sections(scanners, sections, units, n_lines)
    readers = _readers(units, scanners, by_name)
    owner: dict[int, str] = {}
    for u in units:
        if u.kind == "main":
            continue
        if u.in_main:
            owner[u.index] = MAIN
            continue
        if u.index in entries:
            owner[u.index] = entries[u.index]
            continue
        if u.kind == "import":
            owner[u.index] = SHARED
            continue
        sec_owner = next(
            (s for s, sec in own_sections.items() if sec.start <= u.start <= sec.end), None
        )
        # With banners, the top of the file before the first one is the shared preamble.
        banner_shared = any(
            sec.kind == "shared" and sec.start <= u.start <= sec.end for sec in sections
        ) or (bool(sections) and u.start < sections[0].start)
        who = readers.get(u.index, set())
        duplicated = any(len(by_name.get(n, [])) > 1 for n in u.binds)
        if banner_shared:
            owner[u.index] = SHARED if who else UNUSED
        elif sec_owner and (who == {sec_owner} or (sec_owner in who and duplicated)):
            owner[u.index] = sec_owner
        elif len(who) == 1 and u.kind == "assign":
            owner[u.index] = next(iter(who))  # a constant only one scanner reads is its own
        elif who:
            owner[u.index] = SHARED
        elif sec_owner and u.kind == "assign":
            owner[u.index] = sec_owner  # an unused parameter still belongs to its scanner
        else:
            owner[u.index] = UNUSED
    return Ownership(owner, own_sections, by_name, units)


def _scanner_sections(
    scanners: list[Detected], sections: list[Section], units: list[Unit], n_lines: int
) -> dict[str, Section]:
    """Each top-level scanner's section: its banner section, or the span since the last one."""
    out: dict[str, Section] = {}
    tops = [d for d in scanners if d.kind != "column"]
    prev_end = 0
    for d in sorted(tops, key=lambda d: d.entry.start):
        if d.section is not None:
            sec = d.section
            out[d.name] = Section(sec.start, sec.end, sec.title, "scanner", d.name)
        else:
            out[d.name] = Section(prev_end + 1, d.entry.end, d.name, "derived", d.name)
        prev_end = d.entry.end
    return out


def _readers(
    units: list[Unit], scanners: list[Detected], by_name: dict[str, list[Unit]]
) -> dict[int, set[str]]:
    """For each unit, the scanners that may reach it (by name, transitively)."""
    out: dict[int, set[str]] = {}
    for d in scanners:
        todo = [d.entry]
        seen = {d.entry.index}
        while todo:
            u = todo.pop()
            for name in u.read_names:
                for t in by_name.get(name, []):
                    if t.index not in seen and not t.in_main:
                        seen.add(t.index)
                        todo.append(t)
        for i in seen:
            out.setdefault(i, set()).add(d.name)
    return out
