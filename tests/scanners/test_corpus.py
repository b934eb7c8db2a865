"""The corpus: every boundary right, every parameter found, no contamination left."""

import ast
import json
from pathlib import Path

import msgspec
import pytest

from tapereader.core.scanning.analysis import analyse
from tapereader.core.scanning.parse import source_from_bytes
from tapereader.core.scanning.security import analyse_security

from .scanner_corpus import CORPUS, corpus_files, truth

FILES = [p.name for p in corpus_files()]


@pytest.fixture(scope="module")
def analyses() -> dict:
    return {name: analyse(CORPUS / name, second_opinion=False) for name in FILES}


def test_corpus_and_truth_cover_the_same_files() -> None:
    assert sorted(truth()) == FILES
    assert len(FILES) >= 5


@pytest.mark.parametrize("name", FILES)
def test_boundaries_are_right(name: str, analyses: dict) -> None:
    want = [
        (s["name"], s["kind"], s["start"], s["end"], s["review"]) for s in truth()[name]["scanner"]
    ]
    got = [
        (s.name, s.kind, s.start_line, s.end_line, s.needs_review)
        for s in analyses[name].report.scanners
    ]
    assert got == want


@pytest.mark.parametrize("name", FILES)
def test_every_parameter_found_with_its_value(name: str, analyses: dict) -> None:
    for want, got in zip(truth()[name]["scanner"], analyses[name].report.scanners, strict=True):
        assert {p.name: p.value for p in got.parameters} == want["parameters"], got.name


@pytest.mark.parametrize("name", FILES)
def test_contamination_in_the_original_is_found(name: str, analyses: dict) -> None:
    got = sorted({(c.scanner, c.name, c.owner) for c in analyses[name].report.contamination})
    assert got == sorted(tuple(c) for c in truth()[name]["contamination"])


@pytest.mark.parametrize("name", FILES)
def test_isolated_files_compile_and_carry_no_other_scanners_parameters(
    name: str, analyses: dict
) -> None:
    a = analyses[name]
    for s in a.report.scanners:
        assert s.isolated, (s.name, s.isolation_problems)
        compile(a.sources[s.name], s.output_file, "exec")
        others = [o for o in a.report.scanners if o.name != s.name]
        tree = ast.parse(a.sources[s.name])
        defined = {n.name for n in tree.body if isinstance(n, ast.FunctionDef | ast.ClassDef)}
        assert not any(o.name in defined for o in others if o.kind != "column")


def test_shared_param_dict_isolated_per_scanner(analyses: dict) -> None:
    a = analyses["momentum_trio.py"]
    texts = a.sources
    assert '"vol_mult": 2.5' in texts["scan_volume_breakout"]
    assert '"atr_mult"' not in texts["scan_volume_breakout"]
    assert '"price_min": 10.0' in texts["scan_a_plus"]
    # The async trend_ok is shadowed by the sync one defined after it: only that one runs.
    assert "async def trend_ok" not in texts["scan_a_plus"]
    assert "def trend_ok(df):" in texts["scan_a_plus"]
    details = [c.detail for c in a.report.contamination if c.scanner == "scan_a_plus"]
    assert any("KeyError" in d for d in details)
    assert any("silently takes" in d and "2.0 instead of 10.0" in d for d in details)


def test_nested_config_dict_is_split(analyses: dict) -> None:
    texts = analyses["config_zoo.py"].sources
    gap = texts["scan_gap"]
    assert '"gap": {"close_pct": 0.03' in gap and '"reversal"' not in gap
    assert '"breadth"' in texts["scan_breadth"] and '"gap"' not in texts["scan_breadth"]
    assert "def mean(" not in "".join(texts.values())  # the dead helper goes nowhere


def test_column_scanners_keep_only_their_own_assignment(analyses: dict) -> None:
    texts = analyses["column_signals.py"].sources
    for col in ("scanner_a", "scanner_b", "scanner_c"):
        others = {"scanner_a", "scanner_b", "scanner_c"} - {col}
        assert f'df["{col}"] =' in texts[col]
        assert not any(f'df["{o}"] =' in texts[col] for o in others)
        assert "from math import *" in texts[col]  # sqrt comes from the star import


def test_main_only_globals_are_hoisted_and_two_truths_reported(analyses: dict) -> None:
    a = analyses["two_truths.py"]
    text = a.sources["momentum_scan"]
    head = text.split('if __name__ == "__main__":')[0]
    assert 'MIN_PRICE = float(os.environ.get("MIN_PRICE", "5"))' in head
    (s,) = [s for s in a.report.scanners if s.name == "momentum_scan"]
    assert s.overrides and "rsi_min = 55" in s.overrides[0] and "60" in s.overrides[0]


def test_secrets_never_travel(analyses: dict) -> None:
    for name in FILES:
        text = (CORPUS / name).read_text()
        _, secrets = analyse_security(ast.parse(text))
        a = analyses[name]
        blob = json.dumps(msgspec.to_builtins(a.report)) + "".join(a.sources.values())
        for secret in secrets:
            assert secret.value not in blob
    assert analyses["momentum_trio.py"].report.secrets == ["API_KEY"]
    stream = analyses["two_truths.py"].sources["stream_alerts"]
    assert '"token": os.environ["FEED_TOKEN"]' in stream and stream.count("import os") == 1


@pytest.mark.parametrize("name", FILES)
def test_isolated_files_reanalysed_show_their_scanner_and_no_contamination(
    name: str, analyses: dict
) -> None:
    a = analyses[name]
    for s in a.report.scanners:
        again = analyse(
            source_from_bytes(s.output_file, a.sources[s.name].encode()), second_opinion=False
        )
        assert s.name in [x.name for x in again.report.scanners]
        assert again.report.contamination == []
        (same,) = [x for x in again.report.scanners if x.name == s.name]
        got = {(p.name.split("@")[0], p.value) for p in same.parameters}
        for p in s.parameters:  # line suffixes (name@line) move with the code
            value = p.value
            if value == "<redacted>":
                assert any(n == p.name and v.startswith("os.environ[") for n, v in got)
            else:
                assert (p.name.split("@")[0], value) in got, p.name


def test_a_scanner_may_call_another_and_stays_isolated(tmp_path: Path) -> None:
    src = (
        "LIMIT = 3\n\n"
        "def scan_base(df, n=5):\n"
        "    return df['close'].rolling(n).mean() > LIMIT\n\n"
        "# ==== Scanner 2: combo ====\n"
        "P = {'boost': 2}\n\n"
        "def scan_combo(df):\n"
        "    return scan_base(df) & (df['volume'] > P['boost'] * 1000)\n"
    )
    p = tmp_path / "combo.py"
    p.write_text(src)
    a = analyse(p, second_opinion=False)
    assert [s.name for s in a.report.scanners] == ["scan_base", "scan_combo"]
    combo = next(s for s in a.report.scanners if s.name == "scan_combo")
    assert combo.isolated and "scan_base" in combo.helpers
    assert "def scan_base" in a.sources["scan_combo"]
    assert "def scan_combo" not in a.sources["scan_base"]
