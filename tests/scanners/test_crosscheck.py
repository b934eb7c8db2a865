"""Our name resolution agrees with libcst's scope analysis, including Python's odd corners."""

import textwrap

import pytest

from tapereader.core.scanning.crosscheck import disagreements, our_global_reads, round_trips
from tapereader.core.scanning.parse import ParsedModule, source_from_bytes

from .scanner_corpus import corpus_files

TRICKY = textwrap.dedent("""\
    import numpy as np
    LIMIT = 3
    SCALE = 2.0
    names = ["a", "b"]

    class Scanner:
        LIMIT = 10
        doubled = [LIMIT * SCALE for _ in range(2)]  # comprehension sees the module LIMIT
        def scan(self, df):
            return df > LIMIT  # a method does not see the class body: module LIMIT

    def outer(df):
        window = 5
        def inner():
            nonlocal window
            window += 1
            return df.rolling(window).mean() * SCALE
        total = [x for x in names if (y := len(x)) > LIMIT]
        f = lambda v, k=LIMIT: v * k + SCALE
        try:
            pass
        except ValueError as err:
            print(err)
        return inner(), total, f, y, np.nan

    def counter():
        global CALLS
        CALLS += 1
        return CALLS

    CALLS = 0
""")


def _parsed(text: str) -> ParsedModule:
    return ParsedModule(source_from_bytes("tricky.py", text.encode()))


def test_tricky_scoping_agrees_with_libcst() -> None:
    parsed = _parsed(TRICKY)
    assert disagreements(parsed) == []
    reads = {(n, line) for n, line, _ in our_global_reads(parsed)}
    assert ("LIMIT", 10) in reads and ("SCALE", 8) in reads and ("LIMIT", 8) in reads
    assert ("window", 16) not in reads and ("y", 23) not in reads and ("err", 22) not in reads


@pytest.mark.parametrize("path", corpus_files(), ids=lambda p: p.name)
def test_corpus_resolution_agrees_with_libcst_and_round_trips(path) -> None:
    parsed = _parsed(path.read_text())
    assert disagreements(parsed) == []
    assert round_trips(parsed.text)
